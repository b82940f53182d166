#!/bin/sh
# bench/threads.sh — a recurrent network split over the threads of one
# process (--threads N: the split mpirun makes over ranks, through shared
# memory), 1 thread against 2 on this machine: CUBA with 20,000 neurons
# (8 M synapses: the default splits it), the random 4,096-neuron `if`
# network of bench/sanafe.sh (47 M synaptic events in 1,000 steps) bare and
# timed on Loihi, and the two 4,000-neuron classics (CUBA, Benchmark 4 at a
# 0.1 ms tick), whose epochs are too light to gain (the default keeps them on
# one thread).
#
# Runs alternate A B A B ... and each speed-up is taken pair by pair (a
# drifting machine moves both); min and median over N pairs. "run" is the
# simulation phase the report times (phases_s.run), "whole" the process from
# start to exit. The spikes are the same on both sides (checked here by the
# report's spike checksum; tests/test_threads.c checks every counter).
# Before each network's pairs, the machine's own ceiling: the same run on one
# thread alone, then two copies at once (ceiling below).
set -e
cd "$(dirname "$0")/.."
NESIM=build/rel/nesim
N=${BENCH_QUICK:+2}
N=${N:-5}
SECONDS_CUBA=${BENCH_QUICK:+1}
SECONDS_CUBA=${SECONDS_CUBA:-10}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
sed "s/\"n\": 3200/\"n\": 16000/; s/\"n\": 800/\"n\": 4000/" examples/cuba/model.json > "$D/cuba20k.json"

# one timed run: prints "run_s whole_s checksum" (LAST: its report's file)
timed() {
  last=${LAST:-$D/last.json}
  s=$(date +%s.%N)
  $NESIM run "$@" --json --quiet > "$last"
  e=$(date +%s.%N)
  /usr/bin/python3 - "$last" "$s" "$e" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["phases_s"]["run"], float(sys.argv[3]) - float(sys.argv[2]), r["spike_checksum"])
PY
}

# What two cores of this machine give two independent copies of the same
# one-thread run: each pair runs it alone, then twice at once (no exchange,
# nothing shared); the ceiling is 2 x alone / the slower of the two. On a
# machine whose cores slow each other (a VM's shared host, memory, turbo),
# no split of one run can scale past it.
ceiling() {
  label=$1; shift
  : > "$D/c"
  for i in $(seq $N); do
    a=$(timed "$@" --threads 1 | cut -d' ' -f1)
    (LAST=$D/c1.json timed "$@" --threads 1 > "$D/c1") &
    LAST=$D/c2.json timed "$@" --threads 1 > "$D/c2"
    wait
    echo "$a $(cut -d' ' -f1 "$D/c1") $(cut -d' ' -f1 "$D/c2")" >> "$D/c"
  done
  /usr/bin/python3 - "$D/c" "$label" <<'PY'
import statistics as st, sys
rows = [[float(x) for x in l.split()] for l in open(sys.argv[1]) if l.strip()]
c = [2 * a / max(b, d) for a, b, d in rows]
print("%-40s run alone: median %.3f s | two at once, the slower: median %.3f s | ceiling for 2 min %.2f median %.2f" %
      (sys.argv[2], st.median(r[0] for r in rows), st.median(max(r[1], r[2]) for r in rows), min(c), st.median(c)))
PY
}

# pairs: the same arguments on 1 thread and on 2
pairs() {
  label=$1; shift
  : > "$D/p"
  for i in $(seq $N); do
    a=$(timed "$@" --threads 1)
    b=$(timed "$@" --threads 2)
    echo "$a $b" >> "$D/p"
  done
  /usr/bin/python3 - "$D/p" "$label" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
label = sys.argv[2]
same = all(r[2] == r[5] for r in rows)
def mm(v): return "min %6.3f s  median %6.3f s" % (min(v), st.median(v))
for j, name in ((0, "run"), (1, "whole")):
    a = [float(r[j]) for r in rows]; b = [float(r[3 + j]) for r in rows]
    sp = [x / y for x, y in zip(a, b)]
    print("%-40s %-5s 1 thread: %s | 2 threads: %s | speed-up min %.2f median %.2f" %
          (label, name, mm(a), mm(b), min(sp), st.median(sp)))
print("  spike checksums: " + ("the same on 1 and 2 threads" if same else "DIFFER"))
PY
}

echo "threads: $(nproc) cores, $N pairs each"
ceiling "machine: CUBA 20000, two copies" "$D/cuba20k.json" --seconds "$SECONDS_CUBA" --chip none
pairs "CUBA 20000 neurons, ${SECONDS_CUBA} s" "$D/cuba20k.json" --seconds "$SECONDS_CUBA" --chip none
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  mkdir -p "$D/net" && /usr/bin/python3 bench/sanafe/make_net.py "$D/net" > /dev/null
  ceiling "machine: if 4096 x 80, two copies" "$D/net/model.json" --seconds 1000 --chip none
  pairs "if 4096 x 80, 1000 steps, no chip" "$D/net/model.json" --seconds 1000 --chip none
  pairs "same, Loihi chip time (simple)" "$D/net/model.json" --seconds 1000 --chip loihi-sanafe --timing simple
else
  echo "the random if network skipped: python3-numpy is not installed (apt-get install python3-numpy)"
fi
pairs "CUBA 4000 neurons, ${SECONDS_CUBA} s" examples/cuba/model.json --seconds "$SECONDS_CUBA" --chip none
pairs "Benchmark 4, 4000 neurons, ${SECONDS_CUBA} s" examples/b4/model.json --seconds "$SECONDS_CUBA" --chip none
