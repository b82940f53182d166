#!/bin/sh
# Tracing cost: the same run untraced, traced with --record none, activity
# and spikes — on the SpikingBrain-7B-shaped layer and on CUBA — with spikes
# stored per second and bytes per stored spike. Goal (issue 15): a traced
# run <= 1.2x the untraced one (the writer's own speed: bench/trace_write).
# BENCH_QUICK=1 shortens.
set -e
cd "$(dirname "$0")/.."
NESIM=build/rel/nesim
q=0; [ -n "$BENCH_QUICK" ] && [ "$BENCH_QUICK" != 0 ] && q=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
samples=16; secs=10
[ $q = 1 ] && samples=4 && secs=2
bench() { # label, args...
  label=$1; shift
  for rec in untraced none activity spikes; do
    rm -f "$tmp/t.db"*
    if [ $rec = untraced ]; then
      out=$($NESIM run "$@" --chip none --json --quiet)
    else
      out=$($NESIM run "$@" --chip none --json --quiet --trace "$tmp/t.db" --record $rec)
    fi
    size=0; [ -f "$tmp/t.db" ] && size=$(stat -c %s "$tmp/t.db")
    /usr/bin/env python3 - "$label" "$rec" "$size" "$out" "$base" <<'PY'
import json, sys
label, rec, size, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
base = float(sys.argv[5]) if sys.argv[5] else None
spikes = d["totals"]["spikes"] if "totals" in d else d["spikes"]
wall = d["wall_s"] + d.get("trace_close_s", 0)  # the run plus committing the trace
ratio = f"{wall / base:6.2f}x" if base else "     -"
rate = f"{spikes / wall / 1e6:8.2f}" if rec == "spikes" else "       -"
bps = f"{size / spikes:8.1f}" if rec == "spikes" and spikes else "       -"
print(f"{label:<26} {rec:<9} {spikes:>12,} {wall:>8.3f} {ratio} {rate} {size / 2**20:9.1f} {bps}")
PY
    [ $rec = untraced ] && base=$(echo "$out" | /usr/bin/env python3 -c "import json,sys; print(json.load(sys.stdin)['wall_s'])")
  done
  base=
}
echo "tracing cost (wall: the run plus committing the trace; SQLite, WAL, one writer thread)"
printf '%-26s %-9s %12s %8s %7s %8s %9s %8s\n' run record spikes wall_s ratio Mspk/s file_MiB B/spike
base=
bench "7B layer, $samples samples" examples/spikingbrain-7b-layer/model.json --random-input $samples
bench "CUBA 4000, $secs s" examples/cuba/model.json --seconds $secs
