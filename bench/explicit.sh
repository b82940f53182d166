#!/bin/sh
# bench/explicit.sh — a network given as data: 4,096 LIF neurons, each with
# exactly 80 listed targets (327,680 synapses, random weights and delays
# 1..8 ticks) as .npy lists (COO) in one explicit projection, against the
# same network written the only way older specs allowed: 4,096 one-neuron
# populations and 327,680 one-synapse projections in JSON. Loading = `nesim
# run SPEC --seconds 0.0001` (parse, read, build, map; the run itself is one
# tick). Min and median of N runs each, and the mapping's cores.
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
for n, a in (("pre", pre), ("post", post), ("w", w), ("delay", delay)):
    np.save(f"{d}/{n}.npy", a)
lif = {"tau_m": 0.02, "v_rest": -0.049, "v_thresh": -0.05, "v_reset": -0.06, "t_ref": 0.002}
spec = {"nesim": 1, "name": "listed", "tick": 1e-4, "seed": 1,
        "populations": [{"name": "n", "model": "lif", "n": N, "params": lif}],
        "projections": [{"pre": "n", "post": "n", "rule": "explicit",
                         "synapses": {"pre": {"file": "pre.npy"}, "post": {"file": "post.npy"},
                                      "weight": {"file": "w.npy"}, "delay": {"file": "delay.npy"}}}]}
json.dump(spec, open(f"{d}/listed.json", "w"))
old = {"nesim": 1, "name": "one-by-one", "tick": 1e-4, "seed": 1,
       "populations": [{"name": f"n{i}", "model": "lif", "n": 1, "params": lif} for i in range(N)],
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
