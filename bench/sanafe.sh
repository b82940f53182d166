#!/bin/sh
# bench/sanafe.sh — nesim beside SANA-FE (SLAM-Lab/SANA-FE, a peer for
# checking, never a dependency) on one random network written in both
# formats by bench/sanafe/make_net.py: 4,096 Loihi LIF neurons without leak,
# 80 distinct random targets each (+1/32 excitatory, -1/8 inhibitory), bias
# on the 1/64 grid, 1,000 steps on Loihi (SANA-FE's arch/loihi.yaml; nesim's
# chips/loihi-sanafe.json, the same energies and latencies).
#
# Then SANA-FE's own DVS gesture example (its snn/dvs.yaml on its
# arch/loihi.yaml, read by nesim unchanged: net/sanafe.h), the same
# comparison on the same files.
#
# Prints: whether the spike lists are identical; energy per term and chip
# time (simple and detailed) side by side; wall time end to end (load, run,
# report; min and median of N runs) and peak memory of each, nesim on one
# thread and on two (--threads 2) for the random network.
#
# SANA-FE is found as $SANAFE (its `sim` binary) with $SANAFE_ARCH (its
# arch/loihi.yaml), by default ../peers/sanafe-build/sim and
# ../peers/sanafe/arch/loihi.yaml beside this checkout;
# bench/sanafe/build.sh builds it from a source checkout. Skipped with a line
# saying so when it is absent.
set -e
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SANAFE=${SANAFE:-$ROOT/../peers/sanafe-build/sim}
SANAFE_ARCH=${SANAFE_ARCH:-$ROOT/../peers/sanafe/arch/loihi.yaml}
NESIM=$ROOT/build/rel/nesim
N=${BENCH_QUICK:+1}
N=${N:-5}
NS=${BENCH_QUICK:+1}
NS=${NS:-3}
STEPS=${BENCH_QUICK:+200}
STEPS=${STEPS:-1000}
if [ ! -x "$SANAFE" ] || [ ! -f "$SANAFE_ARCH" ]; then
  echo "skipped: SANA-FE not found (set SANAFE=/path/to/sim and SANAFE_ARCH=/path/to/arch/loihi.yaml; bench/sanafe/build.sh builds it)"
  exit 0
fi
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  echo "skipped: python3-numpy is not installed (apt-get install python3-numpy)"; exit 0
fi
D=$(mktemp -d)
[ -n "$KEEP" ] && echo "keeping $D" >&2 || trap 'rm -rf "$D"' EXIT
/usr/bin/python3 bench/sanafe/make_net.py "$D"
mkdir -p "$D/out"
cd "$D"

# spikes and per-step records, once each
"$NESIM" run model.json --seconds "$STEPS" --chip loihi-sanafe --timing simple --timing-steps ns_simple.npy \
  --trace t.db --quiet --json > ns_simple.json
"$NESIM" trace export t.db --format csv -o ns_spikes.csv
"$NESIM" run model.json --seconds "$STEPS" --chip loihi-sanafe --timing detailed --timing-steps ns_detailed.npy \
  --quiet --json > ns_detailed.json
"$SANAFE" -n -s -p -t simple -o "$D/out" "$SANAFE_ARCH" net.net "$STEPS" > sf_simple.txt 2>&1
cp out/spikes.csv sf_spikes.csv
cp out/perf.csv sf_simple_perf.csv
"$SANAFE" -n -p -t detailed -o "$D/out" "$SANAFE_ARCH" net.net "$STEPS" > sf_detailed.txt 2>&1
cp out/perf.csv sf_detailed_perf.csv

# wall time and peak memory, end to end
timeit() { # label runs command...
  label=$1; runs=$2; shift 2
  for i in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o tm "$@" > /dev/null 2>&1
    cat tm
  done | sort -n > "t_$label"
}
timeit ns_simple "$N" "$NESIM" run model.json --seconds "$STEPS" --chip loihi-sanafe --timing simple --quiet --json
timeit ns_detailed "$N" "$NESIM" run model.json --seconds "$STEPS" --chip loihi-sanafe --timing detailed --quiet --json
# the same split over two threads (the same spikes and report: tests/test_threads.c)
timeit ns2_simple "$N" "$NESIM" run model.json --seconds "$STEPS" --chip loihi-sanafe --timing simple --threads 2 --quiet --json
timeit ns2_detailed "$N" "$NESIM" run model.json --seconds "$STEPS" --chip loihi-sanafe --timing detailed --threads 2 --quiet --json
timeit sf_simple "$NS" "$SANAFE" -t simple -n -o "$D/out" "$SANAFE_ARCH" net.net "$STEPS"
timeit sf_detailed "$NS" "$SANAFE" -t detailed -n -o "$D/out" "$SANAFE_ARCH" net.net "$STEPS"

# the same network with biases off the 1/64 grid: SANA-FE against `if` and `loihi`
mkdir -p u/out
/usr/bin/python3 "$ROOT/bench/sanafe/make_net.py" u 4096 1 --unrounded
(cd u && "$SANAFE" -n -s -t simple -o "$D/u/out" "$SANAFE_ARCH" net.net "$STEPS" > /dev/null 2>&1)
for m in model model_loihi; do
  (cd u && "$NESIM" run $m.json --seconds "$STEPS" --chip loihi-sanafe --trace $m.db --quiet --json > /dev/null &&
   "$NESIM" trace export $m.db --format csv -o $m.csv)
done

/usr/bin/python3 - "$STEPS" "$ROOT/bench/sanafe" <<'PY'
import csv, json, sys
import numpy as np
steps = int(sys.argv[1])
sys.dont_write_bytecode = True  # nothing written into the checkout
sys.path.insert(0, sys.argv[2])
from compare import summary, print_wall
sf = {(int(r["timestep"]), int(r["neuron"].split(".")[1])) for r in csv.DictReader(open("sf_spikes.csv"))}
# nesim's tick k is SANA-FE's step k + 1 (make_net.py: each neuron starts at its bias)
ns = {(int(r["tick"]) + 1, int(r["neuron"])) for r in csv.DictReader(open("ns_spikes.csv"))}
print(f"4096 neurons x 80 targets, {steps} steps on Loihi (SANA-FE arch/loihi.yaml; nesim chips/loihi-sanafe.json)")
print(f"spikes: nesim {len(ns)}, SANA-FE {len(sf)}: " + ("identical" if ns == sf else
      f"DIFFER ({len(ns - sf)} only in nesim, {len(sf - ns)} only in SANA-FE)"))

sfu = {(int(r["timestep"]), int(r["neuron"].split(".")[1])) for r in csv.DictReader(open("u/out/spikes.csv"))}
for m, name in (("model", "if (exact arithmetic)"), ("model_loihi", "loihi (Loihi's fixed point)")):
    nu = {(int(r["tick"]) + 1, int(r["neuron"])) for r in csv.DictReader(open(f"u/{m}.csv"))}
    diff = nu ^ sfu
    print(f"biases off the 1/64 grid, nesim {name}: {len(nu)} spikes, SANA-FE {len(sfu)}: " +
          ("identical" if not diff else f"differ from step {min(t for t, _ in diff)}"))

s = summary("sf_simple.txt")
r = json.load(open("ns_simple.json"))
t = r["energy"]["terms"]
rows = [("synaptic ops", t["synaptic"], s["energy.synapse"]),
        ("neurons (access, update, spike out)", t["update"] + t["idle"] + t["spike_out"], s["energy.soma"]),
        ("messages and hops", t["delivery"] + t["routing"], s["energy.network"]),
        ("total", r["energy"]["total_j"], s["energy.total"])]
print(f"  {'energy term':38s} {'nesim J':>12s} {'SANA-FE J':>12s} {'diff':>8s}")
for name, a, b in rows:
    print(f"  {name:38s} {a:12.6e} {b:12.6e} {100 * (a - b) / b:7.3f} %")
print("  (nesim counts a synaptic op when its spike is delivered, the step after it is sent; SANA-FE in the step it is"
      " sent: the last step's spikes make the difference)")
for model in ("simple", "detailed"):
    a = np.load(f"ns_{model}.npy")
    total = summary(f"sf_{model}.txt")["sim_time"]  # its run summary: the perf.csv rows of a detailed run can lag it
    b = np.array([float(x["sim_time"]) for x in csv.DictReader(open(f"sf_{model}_perf.csv"))])
    line = f"  chip time, {model:8s}: nesim {a.sum():.6e} s, SANA-FE {total:.6e} s ({100 * (a.sum() - total) / total:+.3f} %)"
    if abs(b.sum() - total) <= 1e-5 * total and len(b) == len(a):
        line += f"; per step max |diff| {100 * np.abs((a - b) / b).max():.3f} %"
    print(line)
print_wall()
PY

# SANA-FE's own DVS gesture example, read by nesim unchanged (net/sanafe.h):
# its snn/dvs.yaml on its arch/loihi.yaml, both simulators from the same files
SANAFE_DVS=${SANAFE_DVS:-$(dirname "$SANAFE_ARCH")/../snn/dvs.yaml}
if [ ! -f "$SANAFE_DVS" ]; then
  echo "DVS example skipped: $SANAFE_DVS not found (set SANAFE_DVS=/path/to/SANA-FE/snn/dvs.yaml)"
  exit 0
fi
mkdir -p dvs/out
(cd dvs &&
 "$NESIM" run "$SANAFE_DVS" --chip "$SANAFE_ARCH" --steps "$STEPS" --timing simple --trace ns.db --quiet --json > ns_simple.json &&
 "$NESIM" trace export ns.db --format csv -o ns_spikes.csv &&
 "$NESIM" run "$SANAFE_DVS" --chip "$SANAFE_ARCH" --steps "$STEPS" --timing detailed --quiet --json > ns_detailed.json &&
 "$SANAFE" -s -t simple -o "$D/dvs/out" "$SANAFE_ARCH" "$SANAFE_DVS" "$STEPS" > sf_simple.txt 2>&1 &&
 cp out/spikes.csv sf_spikes.csv &&
 "$SANAFE" -t detailed -o "$D/dvs/out" "$SANAFE_ARCH" "$SANAFE_DVS" "$STEPS" > sf_detailed.txt 2>&1)
cd dvs
timeit ns_simple "$N" "$NESIM" run "$SANAFE_DVS" --chip "$SANAFE_ARCH" --steps "$STEPS" --timing simple --quiet --json
timeit ns_detailed "$N" "$NESIM" run "$SANAFE_DVS" --chip "$SANAFE_ARCH" --steps "$STEPS" --timing detailed --quiet --json
timeit sf_simple "$NS" "$SANAFE" -t simple -o "$D/dvs/out" "$SANAFE_ARCH" "$SANAFE_DVS" "$STEPS"
timeit sf_detailed "$NS" "$SANAFE" -t detailed -o "$D/dvs/out" "$SANAFE_ARCH" "$SANAFE_DVS" "$STEPS"
/usr/bin/python3 - "$STEPS" "$ROOT/bench/sanafe" <<'PY'
import csv, json, sys
steps = int(sys.argv[1])
sys.dont_write_bytecode = True  # nothing written into the checkout
sys.path.insert(0, sys.argv[2])
from compare import summary, print_wall
sf = set()
for r in csv.DictReader(open("sf_spikes.csv")):
    g, i = r["neuron"].split(".")
    sf.add((g, int(i), int(r["timestep"])))
ns = {(r["layer"], int(r["neuron"]), int(r["tick"]) + 1) for r in csv.DictReader(open("ns_spikes.csv"))}
print(f"\nSANA-FE's DVS gesture example (snn/dvs.yaml, 18,678 neurons, 3.56 M synapses), {steps} steps, read by both")
print(f"spikes: nesim {len(ns)}, SANA-FE {len(sf)}: " + ("identical" if ns == sf else
      f"DIFFER ({len(ns - sf)} only in nesim, {len(sf - ns)} only in SANA-FE)"))
for model in ("simple", "detailed"):
    s = summary(f"sf_{model}.txt")
    n = json.load(open(f"ns_{model}.json"))["sanafe_summary"]
    print(f"  {model}: {'quantity':24s} {'nesim':>14s} {'SANA-FE':>14s} {'diff':>9s}")
    rows = [("total_spikes", n["total_spikes"], s["total_spikes"]),
            ("total_messages_sent", n["total_messages_sent"], s["total_messages_sent"]),
            ("total_neurons_updated", n["total_neurons_updated"], s["total_neurons_updated"]),
            ("total_neurons_fired", n["total_neurons_fired"], s["total_neurons_fired"]),
            ("sim_time", n["sim_time"], s["sim_time"])] + \
           [(f"energy {k}", n["energy"][k], s[f"energy.{k}"]) for k in ("synapse", "soma", "network", "total")]
    for name, a, b in rows:
        print(f"  {'':8s}{name:24s} {a:14.6e} {b:14.6e} {100 * (a - b) / b if b else 0:8.3f} %")
print_wall()
print("  (total_neurons_updated: nesim updates a leaking neuron every step; SANA-FE only one with a non-zero"
      " potential, input or bias — the soma energy and most of the chip-time difference)")
PY
