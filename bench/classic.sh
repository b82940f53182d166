#!/bin/sh
# classic.sh — benchmark table of the classic networks (nesim example b4|cuba)
# against Brian2 (cpp_standalone, single-threaded) with the same configuration.
#
#   sh bench/classic.sh                 # full table (a few minutes)
#   BENCH_QUICK=1 sh bench/classic.sh   # smoke run: 1 s of virtual time per row
#
# Environment:
#   NESIM        nesim binary (default build/rel/nesim; build it with make build/rel/nesim)
#   PYTHON       Python with Brian2 (default /usr/bin/python3); BRIAN2=0 skips Brian2
#   BRIAN2_DIR   where the Brian2 standalone projects are built (default /tmp/nesim-brian2)
#   BENCH_QUICK  set (not 0): every row simulates 1 s of virtual time, once
#   BENCH_REPS   runs of each side per row (default 5; 1 with BENCH_QUICK)
#
# Columns: nesim wall s is the run alone (no network build); Msyn events/s is synaptic
# events (spikes x outgoing synapses) per wall second, in millions (median run); Brian2
# wall s is the steady-clock time of network.run() inside the compiled binary (no code
# generation, compilation or synapse creation; repetitions rerun the compiled binary);
# wall columns are min / median over BENCH_REPS runs, nesim and Brian2 alternating;
# ratio = Brian2 wall / nesim wall by median (by min in parentheses; > 1: nesim is
# faster); per event = the median ratio scaled by nesim's synaptic events over
# Brian2's: the two simulators draw different random networks from seed 1, and a
# realisation that fires less is less work, so this is the ratio of the work
# rates (the fair comparison when the rates differ). Jobs run one after
# another, never in parallel.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
nesim=${NESIM:-build/rel/nesim}
py=${PYTHON:-/usr/bin/python3}
bdir=${BRIAN2_DIR:-/tmp/nesim-brian2}
quick=0
case ${BENCH_QUICK:-0} in 0 | '') ;; *) quick=1 ;; esac
reps=${BENCH_REPS:-5}
[ "$quick" = 1 ] && reps=${BENCH_REPS:-1}
log=$(mktemp /tmp/nesim-bench-classic.XXXXXX)
trap 'rm -f "$log"' EXIT

if [ ! -x "$nesim" ]; then
    echo "classic.sh: $nesim not found (run: make build/rel/nesim)" >&2
    exit 1
fi

brian=0
bver=
if [ "${BRIAN2:-1}" != 0 ] && [ -x "$py" ] &&
    bver=$("$py" -W ignore -c 'import brian2; print(brian2.__version__)' 2>/dev/null); then
    brian=1
fi

# network neurons tick_s seconds v_rest_mV
rows='cuba 4000 1e-4 10 -49
b4 4000 1e-4 10 -49
cuba 4000 1e-5 10 -49
b4 4000 1e-5 10 -49
cuba 20000 1e-4 2 -49
b4 20000 1e-4 2 -49
cuba 4000 1e-4 10 -49.9
b4 4000 1e-4 10 -49.9'

# field KEY JSON — a number from a flat JSON object ("key":1.5 or "key": 1.5)
field() {
    printf '%s\n' "$2" | sed -n "s/.*\"$1\": *\([-+0-9.eE]*\).*/\1/p"
}

fmt='%-5s %7s %7s %6s %6s | %13s %10s %7s %7s | %13s %7s | %12s %9s\n'
if [ "$brian" = 1 ]; then bdesc="Brian2 $bver (cpp_standalone, 1 thread)"; else bdesc="Brian2 n/a (not importable by $py)"; fi
echo "classic networks: nesim vs $bdesc, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc 2>/dev/null || echo '?') cpus, $reps runs each"
[ "$quick" = 1 ] && echo "BENCH_QUICK=1: 1 s virtual per row"
printf "$fmt" '' '' '' 'virt' 'E_L' 'nesim wall s' 'nesim Msyn' 'nesim' 'nesim' 'Brian2 wall s' 'Brian2' 'Brian2/nesim' 'per'
printf "$fmt" 'net' 'neurons' 'tick ms' 's' 'mV' 'min / median' 'events/s' 'RSS MiB' 'rate Hz' 'min / median' 'rate Hz' 'median (min)' 'event'
printf "$fmt" '-----' '-------' '-------' '------' '------' '-------------' '----------' '-------' '-------' '-------------' '-------' '------------' '---------'

# minmed FILE — "min median" of the numbers in FILE, one per line
minmed() {
    sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) { print "fail fail"; exit }
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f %.3f\n", v[1], m }'
}

nt=$(mktemp /tmp/nesim-bench-classic-n.XXXXXX)
bt=$(mktemp /tmp/nesim-bench-classic-b.XXXXXX)
trap 'rm -f "$log" "$nt" "$bt"' EXIT
status=0
while read -r net n tick secs vrest; do
    [ "$quick" = 1 ] && secs=1
    tick_ms=$(awk -v t="$tick" 'BEGIN { printf "%g", t * 1e3 }')
    echo "classic.sh: $net N=$n tick=$tick ${secs}s E_L=$vrest, $reps runs each" >&2
    : >"$nt"
    : >"$bt"
    nsps=fail nrss=fail nrate=fail brate=n/a bdir_row="$bdir/bench-$net-$n-$tick_ms" bok=0 nsops=0 bsops=0
    r=1
    while [ "$r" -le "$reps" ]; do
        if nj=$("$nesim" example "$net" --neurons "$n" --seconds "$secs" --tick "$tick" \
            --v-rest "$vrest" --seed 1 --json --quiet 2>"$log"); then
            field wall_s "$nj" >>"$nt"
            if [ "$r" = 1 ]; then
                nsps=$(awk -v x="$(field sops_per_s "$nj")" 'BEGIN { printf "%.1f", x / 1e6 }')
                nrss=$(awk -v x="$(field peak_rss_mib "$nj")" 'BEGIN { printf "%.1f", x }')
                nrate=$(awk -v x="$(field mean_rate_hz "$nj")" 'BEGIN { printf "%.2f", x }')
                nsops=$(field sops "$nj")
            fi
        else
            sed 's/^/  nesim: /' "$log" >&2
            status=1
        fi
        if [ "$brian" = 1 ] && [ "$r" = 1 ]; then
            # generates, compiles and runs the standalone project once
            if bj=$("$py" -W ignore bench/brian2/classic.py --net "$net" --neurons "$n" \
                --seconds "$secs" --dt "$tick" --v-rest "$vrest" --seed 1 --device cpp_standalone \
                --build-dir "$bdir_row" 2>"$log"); then
                field wall_s "$bj" >>"$bt"
                brate=$(awk -v x="$(field mean_rate_hz "$bj")" 'BEGIN { printf "%.2f", x }')
                bsops=$(field sops "$bj")
                bok=1
            else
                tail -n 5 "$log" | sed 's/^/  brian2: /' >&2
                status=1
            fi
        elif [ "$bok" = 1 ]; then # the compiled binary again: network.run() timed inside it
            if (cd "$bdir_row" && ./main >/dev/null 2>"$log"); then
                cat "$bdir_row/results/nesim_run_wall.txt" >>"$bt"
            else
                tail -n 5 "$log" | sed 's/^/  brian2: /' >&2
                status=1
            fi
        fi
        r=$((r + 1))
    done
    set -- $(minmed "$nt")
    nmin=$1 nmed=$2
    bw=n/a ratio=n/a per=n/a
    if [ "$bok" = 1 ]; then
        set -- $(minmed "$bt")
        bw="$1 / $2"
        ratio=$(awk -v b="$2" -v s="$nmed" -v bm="$1" -v sm="$nmin" \
            'BEGIN { if (s > 0 && sm > 0) printf "%.2f (%.2f)", b / s, bm / sm; else print "n/a" }')
        per=$(awk -v b="$2" -v s="$nmed" -v ne="${nsops:-0}" -v be="${bsops:-0}" \
            'BEGIN { if (s > 0 && ne > 0 && be > 0) printf "%.2f", b / s * ne / be; else print "n/a" }')
    fi
    printf "$fmt" "$net" "$n" "$tick_ms" "$secs" "$vrest" "$nmin / $nmed" "$nsps" "$nrss" "$nrate" "$bw" "$brate" "$ratio" "$per"
done <<ROWS
$rows
ROWS
exit $status
