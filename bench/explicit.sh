#!/bin/sh
# bench/explicit.sh — a network given as data: 4,096 LIF neurons, each with
# exactly 80 listed targets (327,680 synapses, random weights and delays
# 1..8 ticks) as .npy lists (COO) in one explicit projection and a
# per-neuron bias (v_rest from an .npy), against the same network written
# the only way older specs allowed: 4,096 one-neuron populations and 327,680
# one-synapse projections in JSON. Loading = `nesim run SPEC --seconds
# 0.0001` (parse, read, build, map; the run itself is one tick). Min and
# median of N runs each, and the mapping's cores. Then simulating 0.5 s of
# it: per-neuron v_rest (the default kernels, each neuron's constants)
# against one v_rest for all (lif's epoch kernels), the price of the
# per-neuron path.
set -e
cd "$(dirname "$0")/.."
N=${BENCH_QUICK:+1}
N=${N:-5}
NESIM=build/rel/nesim
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  echo "skipped: python3-numpy is not installed (apt-get install python3-numpy)"; exit 0
fi
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
/usr/bin/python3 - "$D" <<'PY'
import json, sys
import numpy as np
d = sys.argv[1]
N, K = 4096, 80
rng = np.random.default_rng(11)
post = np.concatenate([rng.choice(N, K, replace=False) for _ in range(N)]).astype(np.int32)
pre = np.repeat(np.arange(N, dtype=np.int32), K)
w = (rng.random(N * K) * 2e-3).astype(np.float64)
delay = rng.integers(1, 9, N * K).astype(np.int32)
bias = -0.0505 + rng.random(N) * 1.5e-3  # v_rest per neuron: some above threshold, most below
for n, a in (("pre", pre), ("post", post), ("w", w), ("delay", delay), ("bias", bias)):
    np.save(f"{d}/{n}.npy", a)
lif = {"tau_m": 0.02, "v_thresh": -0.05, "v_reset": -0.06, "t_ref": 0.002}
proj = [{"pre": "n", "post": "n", "rule": "explicit",
         "synapses": {"pre": {"file": "pre.npy"}, "post": {"file": "post.npy"},
                      "weight": {"file": "w.npy"}, "delay": {"file": "delay.npy"}}}]
spec = {"nesim": 1, "name": "listed", "tick": 1e-4, "seed": 1,
        "populations": [{"name": "n", "model": "lif", "n": N, "params": dict(lif, v_rest={"file": "bias.npy"})}],
        "projections": proj}
json.dump(spec, open(f"{d}/listed.json", "w"))
uni = dict(spec, populations=[{"name": "n", "model": "lif", "n": N, "params": dict(lif, v_rest=-0.0495)}])
json.dump(uni, open(f"{d}/uniform.json", "w"))
old = {"nesim": 1, "name": "one-by-one", "tick": 1e-4, "seed": 1,
       "populations": [{"name": f"n{i}", "model": "lif", "n": 1, "params": dict(lif, v_rest=float(bias[i]))}
                       for i in range(N)],
       "projections": [{"pre": f"n{a}", "post": f"n{b}", "rule": "all_to_all", "weight": float(x), "delay": int(t)}
                       for a, b, x, t in zip(pre.tolist(), post.tolist(), w.tolist(), delay.tolist())]}
json.dump(old, open(f"{d}/old.json", "w"))
PY
for kind in listed old; do
  for i in $(seq $N); do
    s=$(date +%s.%N); $NESIM run "$D/$kind.json" --seconds 0.0001 --chip loihi --json --quiet > "$D/r.json"
    e=$(date +%s.%N); awk -v a="$s" -v b="$e" "BEGIN {print b - a}"
  done | sort -n > "$D/t"
  cores=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chip_usage"]["cores"])' "$D/r.json")
  size=$(du -k "$D/$kind.json" | cut -f1)
  awk -v k="$kind" -v c="$cores" -v z="$size" '{a[NR]=$1} END {printf "nesim 4096 x 80 synapses, %-10s (%6d KiB spec)  load+map min %.3f s  median %.3f s  %s cores on loihi\n", k, z, a[1], a[int((NR+1)/2)], c}' "$D/t"
done
for kind in listed uniform; do
  for i in $(seq $N); do
    $NESIM run "$D/$kind.json" --seconds 0.5 --json --quiet > "$D/r.json"
    /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["wall_s"], r["totals"]["sops"])' "$D/r.json"
  done | sort -n > "$D/t"
  awk -v k="$kind" '{a[NR]=$1; s=$2} END {printf "nesim 4096 x 80, 0.5 s simulated, v_rest %-8s  min %.3f s  median %.3f s  (%.3g synaptic events, %.3g events/s at the median)\n", (k=="listed" ? "per neuron" : "for all"), a[1], a[int((NR+1)/2)], s, s / a[int((NR+1)/2)]}' "$D/t"
done
