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
#   BENCH_QUICK  set (not 0): every row simulates 1 s of virtual time
#
# Columns: nesim wall s is the run alone (no network build); Msyn events/s is synaptic
# events (spikes x outgoing synapses) per wall second, in millions; Brian2 wall s is the
# steady-clock time of network.run() inside the compiled binary (no code
# generation, compilation or synapse creation); ratio = Brian2 wall / nesim wall
# (> 1: nesim is faster). Jobs run one after another, never in parallel.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
nesim=${NESIM:-build/rel/nesim}
py=${PYTHON:-/usr/bin/python3}
bdir=${BRIAN2_DIR:-/tmp/nesim-brian2}
quick=0
case ${BENCH_QUICK:-0} in 0 | '') ;; *) quick=1 ;; esac
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

fmt='%-5s %7s %7s %6s %6s | %8s %10s %7s %7s | %8s %7s | %7s\n'
if [ "$brian" = 1 ]; then bdesc="Brian2 $bver (cpp_standalone, 1 thread)"; else bdesc="Brian2 n/a (not importable by $py)"; fi
echo "classic networks: nesim vs $bdesc, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc 2>/dev/null || echo '?') cpus"
[ "$quick" = 1 ] && echo "BENCH_QUICK=1: 1 s virtual per row"
printf "$fmt" '' '' '' 'virt' 'E_L' 'nesim' 'nesim Msyn' 'nesim' 'nesim' 'Brian2' 'Brian2' 'Brian2/'
printf "$fmt" 'net' 'neurons' 'tick ms' 's' 'mV' 'wall s' 'events/s' 'RSS MiB' 'rate Hz' 'wall s' 'rate Hz' 'nesim'
printf "$fmt" '-----' '-------' '-------' '------' '------' '--------' '----------' '-------' '-------' '--------' '-------' '-------'

status=0
while read -r net n tick secs vrest; do
    [ "$quick" = 1 ] && secs=1
    tick_ms=$(awk -v t="$tick" 'BEGIN { printf "%g", t * 1e3 }')
    echo "classic.sh: nesim $net N=$n tick=$tick ${secs}s E_L=$vrest" >&2
    nw=fail nsps=fail nrss=fail nrate=fail bw=n/a brate=n/a ratio=n/a
    if nj=$("$nesim" example "$net" --neurons "$n" --seconds "$secs" --tick "$tick" \
        --v-rest "$vrest" --seed 1 --json --quiet 2>"$log"); then
        nw=$(field wall_s "$nj")
        nsps=$(awk -v x="$(field sops_per_s "$nj")" 'BEGIN { printf "%.1f", x / 1e6 }')
        nrss=$(awk -v x="$(field peak_rss_mib "$nj")" 'BEGIN { printf "%.1f", x }')
        nrate=$(awk -v x="$(field mean_rate_hz "$nj")" 'BEGIN { printf "%.2f", x }')
        nw=$(awk -v x="$nw" 'BEGIN { printf "%.3f", x }')
    else
        sed 's/^/  nesim: /' "$log" >&2
        status=1
    fi
    if [ "$brian" = 1 ]; then
        echo "classic.sh: Brian2 $net N=$n tick=$tick ${secs}s E_L=$vrest" >&2
        if bj=$("$py" -W ignore bench/brian2/classic.py --net "$net" --neurons "$n" \
            --seconds "$secs" --dt "$tick" --v-rest "$vrest" --seed 1 --device cpp_standalone \
            --build-dir "$bdir/bench-$net-$n-$tick_ms" 2>"$log"); then
            bw=$(awk -v x="$(field wall_s "$bj")" 'BEGIN { printf "%.3f", x }')
            brate=$(awk -v x="$(field mean_rate_hz "$bj")" 'BEGIN { printf "%.2f", x }')
            case $nw in
            fail) ;;
            *) ratio=$(awk -v b="$bw" -v s="$nw" 'BEGIN { if (s > 0) printf "%.2f", b / s; else print "n/a" }') ;;
            esac
        else
            tail -n 5 "$log" | sed 's/^/  brian2: /' >&2
            bw=fail brate=fail status=1
        fi
    fi
    printf "$fmt" "$net" "$n" "$tick_ms" "$secs" "$vrest" "$nw" "$nsps" "$nrss" "$nrate" "$bw" "$brate" "$ratio"
done <<ROWS
$rows
ROWS
exit $status
