#!/bin/sh
# make bench: every benchmark program (build/rel/bench/*) and script
# (bench/*.sh other than this one), one after another, printing their tables.
# BENCH_QUICK=1 shortens every run for a smoke test.
set -e
cd "$(dirname "$0")/.."
for b in build/rel/bench/*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  if [ -n "$BENCH_QUICK" ]; then "$b" --quick; else "$b"; fi
  echo
done
for s in bench/*.sh; do
  [ "$s" = bench/run.sh ] && continue
  echo "== $(basename "$s")"
  sh "$s"
  echo
done
