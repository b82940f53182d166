#!/bin/sh
# bench/lm7b.sh — two decoder layers at SpikingBrain-7B width (hidden 3584,
# intermediate 18944, 28 heads of 128, 4 KV heads; vocab cut to 4096 so the
# embedding stays small) with synthetic weights (normal, std 0.02): BF16
# (~0.95 GB), and int8 projections with per-row F32 scales in compressed-
# tensors' layout (~0.5 GB); checkpoint folders written to a temporary
# directory with numpy; a 16-token prompt, the released spiked set and every
# projection spiked: seconds per token and SOP/s. Min and median of N runs.
set -e
cd "$(dirname "$0")/.."
N=${BENCH_QUICK:+1}
N=${N:-3}
NESIM=build/rel/nesim
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  echo "skipped: python3-numpy is not installed (apt-get install python3-numpy)"; exit 0
fi
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
for dt in bf16 int8; do
mkdir -p "$D/$dt"
/usr/bin/python3 - "$D/$dt" "$dt" <<'PY'
import json, struct, sys
import numpy as np
d, dt = sys.argv[1], sys.argv[2]
H, I, L, NH, NKV, HD, V = 3584, 18944, 2, 28, 4, 128, 4096
cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": H, "intermediate_size": I, "num_hidden_layers": L,
       "num_attention_heads": NH, "num_key_value_heads": NKV, "head_dim": HD, "vocab_size": V,
       "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True,
       "hidden_act": "silu"}
json.dump(cfg, open(d + "/config.json", "w"))
rng = np.random.default_rng(7)
shapes = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,)}
for l in range(L):
    p = f"model.layers.{l}."
    shapes[p + "input_layernorm.weight"] = (H,)
    shapes[p + "post_attention_layernorm.weight"] = (H,)
    for n, s in (("q_proj", (NH * HD, H)), ("k_proj", (NKV * HD, H)), ("v_proj", (NKV * HD, H)), ("o_proj", (H, NH * HD))):
        shapes[p + "self_attn." + n + ".weight"] = s
    for n, s in (("gate_proj", (I, H)), ("up_proj", (I, H)), ("down_proj", (H, I))):
        shapes[p + "mlp." + n + ".weight"] = s
def arrays():
    for n in sorted(shapes):
        if len(shapes[n]) == 1:
            yield n, "BF16", np.ones(shapes[n], np.float32)
            continue
        a = rng.standard_normal(shapes[n], dtype=np.float32) * 0.02
        if dt == "int8" and n.endswith("_proj.weight"):
            s = np.abs(a).max(axis=1, keepdims=True).astype(np.float32) / 127
            yield n, "I8", np.clip(np.rint(a / s), -127, 127).astype(np.int8)
            yield n + "_scale", "F32", s
        else:
            yield n, "BF16", a
def raw(kind, a):
    return (a.view(np.uint32) >> 16).astype(np.uint16).tobytes() if kind == "BF16" else a.tobytes()
hdr, off = {}, 0
for n, kind, a in arrays():
    nb = len(raw(kind, a))
    hdr[n] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [off, off + nb]}
    off += nb
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
rng = np.random.default_rng(7)
with open(d + "/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for n, kind, a in arrays():
        f.write(raw(kind, a))
rng = np.random.default_rng(7)
np.save(d + "/ids.npy", rng.integers(0, V, 16).astype(np.int32))
PY
for set in released all; do
  for i in $(seq $N); do
    s=$(date +%s.%N); $NESIM run "$D/$dt" --tokens "$D/$dt/ids.npy" --spiked $set --chip none --json --quiet > "$D/r.json"
    e=$(date +%s.%N); awk -v a="$s" -v b="$e" "BEGIN {print b - a}"
  done | sort -n > "$D/t"
  sops=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["sops"])' "$D/r.json")
  awk -v s="$sops" -v set="$set" -v dt="$dt" '{a[NR]=$1} END {printf "nesim 2 layers at 7B width, %s, 16 tokens, --spiked %-8s min %.2f s  median %.2f s  %.3f s/token  %.0f M SOP/token  %.2f G SOP/s (best)\n", dt, set, a[1], a[int((NR+1)/2)], a[1]/16, s/16/1e6, s/a[1]/1e9}' "$D/t"
done
rm -rf "$D/$dt"
done
