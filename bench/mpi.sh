#!/bin/sh
# bench/mpi.sh — scale-out with Open MPI on this machine (2 cores): strong
# scaling 1 -> 2 ranks (CUBA with 20 000 neurons; the SpikingBrain-7B-shaped
# layer batch, 128 samples; two decoder layers at 7B width), weak scaling 1 -> 2 ranks
# (CUBA, 10 000 neurons per rank at the same in-degree), bytes exchanged per
# spike and per step, the overlapped exchange (min delay 1 ms) against the
# blocking one, and a traced run on 2 ranks against the untraced one.
#
# Every rank runs one thread (--threads 1), so 2 ranks use the 2 cores the
# way 2 machines would each use one. Runs alternate A B A B ... and each
# speed-up is taken pair by pair (a drifting machine moves both); min and
# median over N pairs. "run" is the simulation phase the report times
# (phases_s.run: what the ranks split); "whole" is the process from start to
# exit (model building included: with --chip none, as here, each rank draws
# only its own targets' synapses). First, the machine's own ceiling for two
# cores (ceiling below).
set -e
cd "$(dirname "$0")/.."
NESIM=build/rel/nesim
N=${BENCH_QUICK:+2}
N=${N:-5}
if ! command -v mpirun >/dev/null 2>&1; then
  echo "skipped: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev, then rebuild)"; exit 0
fi
if ! $NESIM version | grep -q "mpi: Open MPI"; then
  echo "skipped: $NESIM was built without MPI (no mpicc at build time)"; exit 0
fi
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  echo "skipped: python3-numpy is not installed (apt-get install python3-numpy)"; exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
SECONDS_CUBA=${BENCH_QUICK:+2}
SECONDS_CUBA=${SECONDS_CUBA:-10}

# CUBA (examples/cuba) with n neurons (80 % excitatory) at connection probability p
cuba() { sed "s/\"n\": 3200/\"n\": $(($1 * 4 / 5))/; s/\"n\": 800/\"n\": $(($1 / 5))/; s/\"p\": 0.02/\"p\": $2/g" \
  examples/cuba/model.json > "$3"; }
cuba 20000 0.02 "$D/cuba20k.json"
# weak scaling: one CUBA of 10 000 neurons per rank (disjoint copies: the same
# work and activity per rank, every spike still exchanged)
cuba 10000 0.02 "$D/cuba10k.json"
/usr/bin/python3 - "$D/cuba10k.json" "$D/cuba10k-x2.json" <<'PY'
import copy, json, sys
m = json.load(open(sys.argv[1]))
pops, projs = [], []
for c in "ab":
    for p in m["populations"]:
        q = copy.deepcopy(p); q["name"] += "_" + c; pops.append(q)
    for j in m["projections"]:
        q = copy.deepcopy(j); q["pre"] += "_" + c; q["post"] += "_" + c; projs.append(q)
m["populations"], m["projections"], m["name"] = pops, projs, "cuba-10k-x2"
json.dump(m, open(sys.argv[2], "w"))
PY

# one timed run: prints "run_s whole_s", keeps the report in $D/last.json
timed() {
  k=$1; shift
  s=$(date +%s.%N)
  if [ "$k" = 0 ]; then $NESIM run "$@" --json --quiet > "$D/last.json"
  else mpirun --oversubscribe -np "$k" $NESIM run "$@" --json --quiet > "$D/last.json"; fi
  e=$(date +%s.%N)
  /usr/bin/python3 - "$D/last.json" "$s" "$e" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ph = r.get("phases_s", {})
print(ph.get("run", float("nan")), float(sys.argv[3]) - float(sys.argv[2]))
PY
}

# pairs A (k_a ranks, args_a) against B: min/median of each and of B/A
pairs() {
  label=$1; ka=$2; kb=$3; aa=$4; ab=$5
  : > "$D/p"
  for i in $(seq $N); do
    a=$(timed "$ka" $aa); cp "$D/last.json" "$D/a.json"
    b=$(timed "$kb" $ab); cp "$D/last.json" "$D/b.json"
    echo "$a $b" >> "$D/p"
  done
  /usr/bin/python3 - "$D/p" "$label" "$ka" "$kb" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
label, ka, kb = sys.argv[2], sys.argv[3], sys.argv[4]
def mm(v): return "min %6.3f s  median %6.3f s" % (min(v), st.median(v))
for j, name in ((0, "run"), (1, "whole")):
    a = [r[j] for r in rows]; b = [r[2 + j] for r in rows]
    if any(x != x for x in a + b):
        continue  # no phases in this report
    sp = [x / y for x, y in zip(a, b)]
    print("%-44s %-5s %s rank(s): %s | %s ranks: %s | speed-up min %.2f median %.2f" %
          (label, name, ka, mm(a), kb, mm(b), min(sp), st.median(sp)))
PY
}

# The machine's own ceiling for two-way work (as bench/threads.sh): the
# same one-process run alone, then two copies at once (no exchange, nothing
# shared); 2 x alone / the slower copy bounds any split of one run here.
ceiling() {
  label=$1; shift
  : > "$D/c"
  for i in $(seq $N); do
    a=$(timed 0 "$@" | cut -d' ' -f1)
    ($NESIM run "$@" --json --quiet > "$D/c1.json") &
    $NESIM run "$@" --json --quiet > "$D/c2.json"
    wait
    echo "$a" >> "$D/c"
    /usr/bin/python3 -c 'import json, sys; print(*(json.load(open(f))["phases_s"]["run"] for f in sys.argv[1:]))' \
      "$D/c1.json" "$D/c2.json" >> "$D/c"
  done
  /usr/bin/python3 - "$D/c" "$label" <<'PY'
import statistics as st, sys
v = [l.split() for l in open(sys.argv[1]) if l.strip()]
rows = [(float(v[i][0]), max(float(x) for x in v[i + 1])) for i in range(0, len(v), 2)]
c = [2 * a / b for a, b in rows]
print("%-44s run alone: median %.3f s | two at once, the slower: median %.3f s | ceiling for 2 min %.2f median %.2f" %
      (sys.argv[2], st.median(r[0] for r in rows), st.median(r[1] for r in rows), min(c), st.median(c)))
PY
}

ceiling "machine: CUBA 20000, two copies at once" "$D/cuba20k.json" --seconds "$SECONDS_CUBA" --chip none --threads 1
pairs "strong: CUBA 20000 neurons, ${SECONDS_CUBA} s" 1 2 \
  "$D/cuba20k.json --seconds $SECONDS_CUBA --chip none --threads 1" "$D/cuba20k.json --seconds $SECONDS_CUBA --chip none --threads 1"
/usr/bin/python3 - "$D/b.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); m = r["mpi"]; t = r["totals"]
steps = m["exchanges"]
print("  exchange on 2 ranks: %d spikes in %d exchanges (of %d ticks); %d bytes sent in all: %d per spike on the wire,"
      " %.0f bytes per exchange per rank (%.1f per spike, headers included); rank 0 waited %.3f s"
      % (m["spikes_exchanged"], steps, t["virtual_ticks"], m["bytes_sent"], m["bytes_per_spike"],
         m["bytes_sent"] / max(1, m["collectives"]) / m["ranks"], m["bytes_sent"] / max(1, m["spikes_exchanged"]),
         m["rank0_wait_s"]))
PY

# with a chip (Loihi): the ranks map the network together from their own
# parts of the graph (each its targets' synapses, destination cores merged),
# so a rank holds about half the synapses; the energy is one process's
timed 0 "$D/cuba20k.json" --seconds 1 --chip loihi --threads 1 > /dev/null; cp "$D/last.json" "$D/a.json"
timed 2 "$D/cuba20k.json" --seconds 1 --chip loihi --threads 1 > /dev/null; cp "$D/last.json" "$D/b.json"
/usr/bin/python3 - "$D/a.json" "$D/b.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
m = b["mpi"]
print("  with a chip (loihi), 1 s: one process holds %d synapses, peak %.0f MiB; on 2 ranks rank 0 holds %d, peak %.0f MiB"
      " (%s); energy %s (%.6g J both), %d cores" %
      (a["neurobench"]["footprint_bytes"] / 4, a["peak_rss_mib"], m["synapses_rank0"], b["peak_rss_mib"],
       m["graph"].split(":")[0], "the same" if a["energy"] == b["energy"] else "DIFFERS", b["energy"]["total_j"],
       b["chip_usage"]["cores"]))
PY

# the same timed on the chip (--timing simple): the ranks merge each
# source's messages from their parts; the chip time is one process's
timed 0 "$D/cuba20k.json" --seconds 1 --chip loihi --timing simple --threads 1 > /dev/null; cp "$D/last.json" "$D/a.json"
timed 2 "$D/cuba20k.json" --seconds 1 --chip loihi --timing simple --threads 1 > /dev/null; cp "$D/last.json" "$D/b.json"
/usr/bin/python3 - "$D/a.json" "$D/b.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
m = b["mpi"]
print("  timed (simple), 1 s: one process loads in %.2f s, peak %.0f MiB; on 2 ranks %.2f s, peak %.0f MiB (%s);"
      " chip time %s (%.6g s both)" %
      (a["phases_s"]["load"], a["peak_rss_mib"], b["phases_s"]["load"], b["peak_rss_mib"], m["graph"].split(":")[0],
       "the same" if a["chip_time"] == b["chip_time"] else "DIFFERS", b["chip_time"]["total_s"]))
PY

# the same network with a delay of 10 ticks (1 ms, NEST's usual min delay):
# windows of 5 ticks, each exchange travelling while the next window runs,
# against the blocking exchange after every 10 ticks, both on 2 ranks
sed 's/"delay": 1,/"delay": 10,/g' "$D/cuba20k.json" > "$D/cuba20k-d10.json"
pairs "overlap: CUBA 20000, delay 1 ms, blocking vs overlapped" 2 2 \
  "$D/cuba20k-d10.json --seconds $SECONDS_CUBA --chip none --threads 1 --no-overlap" \
  "$D/cuba20k-d10.json --seconds $SECONDS_CUBA --chip none --threads 1"
/usr/bin/python3 - "$D/a.json" "$D/b.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    m = json.load(open(f))["mpi"]
    print("  %s: %d exchanges (windows of %d ticks), rank 0 waited %.3f s"
          % (m["exchange"].split(":")[0], m["exchanges"], m["window_ticks"], m["rank0_wait_s"]))
PY
echo "  (here 'speed-up' is blocking/overlapped time)"

pairs "weak: one CUBA of 10000 per rank, ${SECONDS_CUBA} s" 1 2 \
  "$D/cuba10k.json --seconds $SECONDS_CUBA --chip none --threads 1" "$D/cuba10k-x2.json --seconds $SECONDS_CUBA --chip none --threads 1"
echo "  (weak scaling: 'speed-up' is the efficiency T(1 rank, N)/T(2 ranks, 2N); 1.00 is perfect)"

SAMPLES=${BENCH_QUICK:+16}
SAMPLES=${SAMPLES:-128}
pairs "strong: 7B layer batch, $SAMPLES samples" 1 2 \
  "examples/spikingbrain-7b-layer/model.json --random-input $SAMPLES --threads 1 --chip none" \
  "examples/spikingbrain-7b-layer/model.json --random-input $SAMPLES --threads 1 --chip none"
/usr/bin/python3 - "$D/b.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); m = r["mpi"]
print("  exchange on 2 ranks: %d bytes sent (per sample and coded layer its played counts and statistics, and its"
      " outputs), %d collectives; synthesis %.2f s per rank (every rank makes the layer's weights); observers: %s"
      % (m["bytes_sent"], m["collectives"], r["phases_s"].get("synthesis", 0), m.get("observed", "?")))
PY

# two decoder layers at 7B width, int8 (bench/lm7b.sh's checkpoint)
sed -n '/^\/usr\/bin\/python3 - "\$D\/\$dt" "\$dt" <<.PY.$/,/^PY$/p' bench/lm7b.sh | sed '1d;$d' > "$D/gen.py"
mkdir -p "$D/lm"
/usr/bin/python3 "$D/gen.py" "$D/lm" int8
pairs "strong: 2 layers at 7B width, 16 tokens" 1 2 \
  "$D/lm --tokens $D/lm/ids.npy --threads 1 --chip none" "$D/lm --tokens $D/lm/ids.npy --threads 1 --chip none"

# traced (rank 0 writes) against untraced, both on 2 ranks
pairs "trace on 2 ranks: untraced vs traced CUBA" 2 2 \
  "$D/cuba20k.json --seconds $SECONDS_CUBA --chip none" \
  "$D/cuba20k.json --seconds $SECONDS_CUBA --chip none --trace $D/t.db"
echo "  (here 'speed-up' is untraced/traced time: >= 0.83 meets traced <= 1.2x untraced)"
