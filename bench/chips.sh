#!/bin/sh
# The chip architect's report: the SpikingBrain-7B-shaped decoder layer, and a
# 28-layer stack of it, mapped on the Loihi-like profile — cores, chips,
# mapping time, peak memory, energy per token — and the same layers as dense
# MACs; then the stack's speed on a 16-token prompt. BENCH_QUICK=1 runs the
# stack with 4 layers instead of 28.
set -e
cd "$(dirname "$0")/.."
NESIM=build/rel/nesim
layers=28
[ -n "$BENCH_QUICK" ] && [ "$BENCH_QUICK" != 0 ] && layers=4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/env python3 - "$layers" "$tmp/stack.json" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
shapes = [("q_proj", 3584, 3584), ("k_proj", 512, 3584), ("v_proj", 512, 3584), ("o_proj", 3584, 3584),
          ("gate_proj", 18944, 3584), ("up_proj", 18944, 3584), ("down_proj", 3584, 18944)]
layers, prev = [], "input"
for l in range(n):
    for k, (name, o, i) in enumerate(shapes):
        src = f"l{l}.up_proj" if name == "down_proj" else prev
        layers.append({"name": f"l{l}.{name}", "type": "linear", "from": src,
                       "weight": {"synthetic": {"dist": "normal", "std": 0.02, "seed": 1000 * l + k,
                                                "shape": [o, i], "quantize": "int8", "group": 128}},
                       "coding": "bitwise-bidirectional", "k": 3})
    prev = f"l{l}.down_proj"
json.dump({"nesim": 1, "name": f"spikingbrain-7b-{n}-layers", "tick": 1e-3, "seed": 1,
           "input": {"shape": [3584]}, "layers": layers}, open(out, "w"))
PY
row() { # label, report file (a 28-layer report is too long for an argument)
  /usr/bin/env python3 - "$1" "$2" <<'PY'
import json, sys
label, d = sys.argv[1], json.load(open(sys.argv[2]))
e, u, t = d["energy"], d["chip_usage"], d["totals"]
b = e["dense_baselines"]
print(f"{label:<24} {u['cores']:>7} {u['chips']:>5} {u['max_hops']:>5} {u['map_s']:>8.3f} {d['peak_rss_mib']:>9.0f} "
      f"{t['sops']/d['samples']:>12.4g} {e['per_inference_j']*1e3:>10.3f} {e['per_sop_j']*1e12:>8.1f} "
      f"{b['fp16_arith_j']/d['samples']*1e3:>9.3f} {b['fp16_with_memory_j']/d['samples']*1e3:>9.2f} "
      f"{b['int8_with_memory_j']/d['samples']*1e3:>9.2f} {d['wall_s']:>7.2f}")
PY
}
echo "SpikingBrain-7B shapes (hidden 3584, intermediate 18944, int8 group 128) on the loihi profile; energy per token"
printf '%-24s %7s %5s %5s %8s %9s %12s %10s %8s %9s %9s %9s %7s\n' model cores chips hops map_s rss_MiB \
  SOPs/token mJ/token pJ/SOP fp16_mJ fp16mem_mJ int8mem_mJ wall_s
$NESIM run examples/spikingbrain-7b-layer/model.json --random-input 4 --json --quiet > "$tmp/layer.json"
row "1 layer (heavy-tailed x)" "$tmp/layer.json"
$NESIM run "$tmp/stack.json" --random-input 16 --json --quiet > "$tmp/report.json"
row "$layers-layer stack" "$tmp/report.json"
# issue 15's goal: a 16-token prompt through the 28-layer stack in <= 2 s per
# token, peak memory <= 8 GB, synthetic weights in <= 10 s
/usr/bin/env python3 - "$tmp/report.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["phases_s"]
print(f"stack, 16 tokens layer by layer on every core: {d['wall_s'] / d['samples']:.2f} s per token "
      f"({d['totals']['sops'] / d['wall_s']:.3g} SOP/s), synthesis {p.get('synthesis', 0):.1f} s, "
      f"first event {p['first_event']:.1f} s, peak {d['peak_rss_mib'] / 1024:.2f} GiB, end to end {p['total']:.1f} s")
PY
