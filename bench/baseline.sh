#!/bin/sh
# baseline.sh — this tree against the tree before the redesign (issue 9), side
# by side in one session: b4 and CUBA (nesim example, 4000 neurons, 5 s of
# virtual time: wall s of the run) and the coded 3584 -> 18944 layer
# (bench/coded_linear, bitwise-bidirectional, f32 and int8 weights: SOP/s).
# Old and new run in alternating pairs (old first in odd pairs, new first in
# even ones, so drift hits both); the table gives min and median of each and
# new / old of the medians (wall: < 1 is faster; SOP/s: > 1 is faster).
#
#   sh bench/baseline.sh                 # 5 pairs (about 2.5 minutes)
#   BENCH_QUICK=1 sh bench/baseline.sh   # 1 pair
#
# Environment:
#   BASELINE_REF  the old tree (default d69a9b8: the last commit before the
#                 redesign, whose spikes tests/pinned holds)
#   BASELINE_DIR  where it is unpacked and built (default build/baseline)
#   PAIRS         pairs per row (default 5; BENCH_QUICK: 1)
# The old tree is taken with `git archive` from this repository's history and
# built with its own Makefile once (kept while BASELINE_REF stays); without
# the history (a shallow clone) the benchmark says so and skips.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
ref=${BASELINE_REF:-d69a9b8}
dir=${BASELINE_DIR:-build/baseline}
pairs=${PAIRS:-5}
case ${BENCH_QUICK:-0} in 0 | '') ;; *) pairs=1 ;; esac
new_nesim=build/rel/nesim
new_coded=build/rel/bench/coded_linear
if [ ! -x "$new_nesim" ] || [ ! -x "$new_coded" ]; then
    echo "baseline.sh: $new_nesim or $new_coded missing (run: make bench)" >&2
    exit 1
fi
if ! commit=$(git rev-parse --verify -q "$ref^{commit}" 2>/dev/null); then
    echo "baseline.sh: skipped: commit $ref is not in this repository's history (a shallow clone?)"
    exit 0
fi
old_nesim=$dir/src/build/rel/nesim
old_coded=$dir/src/build/rel/bench/coded_linear
if [ "$(cat "$dir/commit" 2>/dev/null)" != "$commit" ] || [ ! -x "$old_nesim" ] || [ ! -x "$old_coded" ]; then
    echo "baseline.sh: building $ref into $dir/src (once)" >&2
    rm -rf "$dir" && mkdir -p "$dir/src" &&
        git archive "$commit" | tar -x -C "$dir/src" &&
        make -C "$dir/src" -j"$(nproc 2>/dev/null || echo 2)" build/rel/nesim build/rel/bench/coded_linear \
            >"$dir/build.log" 2>&1 || {
        echo "baseline.sh: building $ref failed (see $dir/build.log)" >&2
        exit 1
    }
    echo "$commit" >"$dir/commit"
fi

tmp=$(mktemp -d /tmp/nesim-baseline.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# field KEY JSON: a number from nesim example --json
field() { printf '%s\n' "$2" | sed -n "s/.*\"$1\": *\([-+0-9.eE]*\).*/\1/p"; }
# sops CODING W OUTPUT: the SOP/s column of a coded_linear row
sops() { awk -v c="$1" -v w="$2" '$1 == c && $2 == w { print $8 }' "$3"; }

# one measurement: WHICH (old|new) ROW -> appends to $tmp/ROW.WHICH
measure() {
    which=$1 row=$2
    if [ "$which" = old ]; then n=$old_nesim c=$old_coded; else n=$new_nesim c=$new_coded; fi
    case $row in
        b4 | cuba)
            j=$("$n" example "$row" --neurons 4000 --seconds 5 --seed 1 --json --quiet) || return 1
            field wall_s "$j" >>"$tmp/$row.$which"
            ;;
        coded)
            "$c" >"$tmp/out" || return 1
            sops bitwise-bidirectional f32 "$tmp/out" >>"$tmp/f32.$which"
            sops bitwise-bidirectional i8 "$tmp/out" >>"$tmp/i8.$which"
            ;;
    esac
}

# stats FILE: "min median" of the numbers in FILE
stats() { sort -g "$1" | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%g %g", v[1], m }'; }

echo "baseline: this tree vs $ref (before the redesign), $pairs alternating pairs per row, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc 2>/dev/null || echo '?') cpus"
status=0
for row in b4 cuba coded; do
    p=1
    while [ "$p" -le "$pairs" ]; do
        echo "baseline.sh: $row pair $p/$pairs" >&2
        if [ $((p % 2)) = 1 ]; then first=old second=new; else first=new second=old; fi
        measure "$first" "$row" && measure "$second" "$row" || status=1
        p=$((p + 1))
    done
done
fmt='%-44s %10s %10s %10s %10s %9s\n'
printf "$fmt" '' 'old min' 'old median' 'new min' 'new median' 'new/old'
for r in "b4:b4 4000 neurons, 5 s (wall s)" "cuba:cuba 4000 neurons, 5 s (wall s)" \
    "f32:coded 3584->18944 bitwise-bidir f32 (SOP/s)" "i8:coded 3584->18944 bitwise-bidir i8 (SOP/s)"; do
    key=${r%%:*} label=${r#*:}
    if [ ! -s "$tmp/$key.old" ] || [ ! -s "$tmp/$key.new" ]; then
        printf "$fmt" "$label" fail fail fail fail -
        continue
    fi
    set -- $(stats "$tmp/$key.old") $(stats "$tmp/$key.new")
    ratio=$(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.3f", b / a }')
    printf "$fmt" "$label" "$1" "$2" "$3" "$4" "$ratio"
done

# Instruction counts (valgrind's callgrind): deterministic, so the ratio holds
# on a noisy machine where wall time does not. The coded rows count only
# nesim_coded_linear_batch (weight generation excluded); the networks the
# whole process for 1 s of virtual time.
if command -v valgrind >/dev/null 2>&1; then
    instr() { valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
    printf '%-44s %21s %21s %9s\n' '' 'old instructions' 'new instructions' 'new/old'
    for row in b4 cuba coded; do
        if [ "$row" = coded ]; then
            label="coded --quick (nesim_coded_linear_batch)"
            o=$(instr --toggle-collect=nesim_coded_linear_batch "$old_coded" --quick)
            n=$(instr --toggle-collect=nesim_coded_linear_batch "$new_coded" --quick)
        else
            label="$row 4000 neurons, 1 s (whole process)"
            o=$(instr "$old_nesim" example "$row" --seconds 1 --quiet)
            n=$(instr "$new_nesim" example "$row" --seconds 1 --quiet)
        fi
        printf '%-44s %21s %21s %9s\n' "$label" "$o" "$n" "$(awk -v a="$o" -v b="$n" 'BEGIN { printf "%.3f", b / a }')"
    done
else
    echo "baseline.sh: valgrind not installed: no instruction counts"
fi
exit $status
