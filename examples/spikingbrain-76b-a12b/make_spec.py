"""make_spec.py — SpikingBrain-76B-A12B at true shape, as nesim reads it.

No configuration of the 76B is released; this follows the technical report
(Fig. 3, sec. 2.2 and 3.2) and names every number it had to assume:

  - 28 layers upcycled from Qwen2.5-7B: hidden 3584, intermediate 18944, 28
    query heads and 4 KV heads of 128, vocab 152064, RoPE theta 1e6,
    RMSNorm eps 1e-6, q/k/v biases (Qwen2's) — assumed from the 7B;
  - every layer runs softmax attention and linear attention in parallel on
    the same q, k, v, each output RMS-normalised, summed into o_proj;
    layers 7, 14, 21 and 28 (counting from 1) attend to every position, the
    others to a 4096-token window; 128 learned sink tokens per layer, read
    as learned keys and values [128, 512] every query attends to (no RoPE:
    an assumption);
  - the linear attention: a sigmoid feature map on q and k and the key-tied
    gate alpha = 1 - k (gla node, "gate": "key");
  - dense SwiGLU MLPs in layers 1, 2, 3, 5, 7, 9 and 11; the other 21 layers
    are mixtures of 16 routed experts (top-1) and one shared expert, each an
    intermediate-18944 SwiGLU MLP (assumed: the upcycled MLP's size); the
    router is a softmax, the routed expert's output scaled by its
    probability (no renormalisation: assumed);
  - spiked as the 7B: q, k, v, o, gate and up (the experts' too); down_proj
    and lm_head graded.

Weights are synthetic (synthetic.json): int8 with group-128 scales for the
projections; the routed experts' (73 GB) are made only when a token is
routed to them ("lazy"), within a 4 GB budget. Writes model.json and
prompt.npy here:  /usr/bin/python3 examples/spikingbrain-76b-a12b/make_spec.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
H, I, NH, NKV, HD, V, L = 3584, 18944, 28, 4, 128, 152064, 28
FULL = {7, 14, 21, 28}
DENSE = {1, 2, 3, 5, 7, 9, 11}
E = 16
CK = "examples/spikingbrain-76b-a12b"


def lin(name, inp, tensor, out, inn, spiked, bias=False, routed=False):
    n = {"name": name, "type": "linear", "input": inp, "weight": tensor + ".weight", "shape": [out, inn],
         "coding": "bitwise-bidirectional" if spiked else "none"}
    if spiked:
        n["k"] = 3.0
    if bias:
        n["bias"] = tensor + ".bias"
    if routed:
        n["routed"] = True
    return n


def main():
    nodes = [{"name": "embed", "type": "embedding", "weight": "model.embed_tokens.weight"}]
    h = "embed"
    for l in range(L):
        p, t = f"layers.{l}", f"model.layers.{l}"
        nodes.append({"name": f"{p}.input_layernorm", "type": "rmsnorm", "input": h,
                      "weight": f"{t}.input_layernorm.weight", "eps": 1e-6})
        x = f"{p}.input_layernorm"
        for kind, out in (("q_proj", NH * HD), ("k_proj", NKV * HD), ("v_proj", NKV * HD)):
            nodes.append(lin(f"{p}.{kind}", x, f"{t}.self_attn.{kind}", out, H, True, bias=True))
        nodes.append({"name": f"{p}.attn", "type": "attention", "q": f"{p}.q_proj", "k": f"{p}.k_proj",
                      "v": f"{p}.v_proj", "heads": NH, "kv_heads": NKV, "head_dim": HD, "rope_theta": 1e6,
                      "window": 0 if l + 1 in FULL else 4096,
                      "sinks": {"k": f"{t}.self_attn.sinks_k", "v": f"{t}.self_attn.sinks_v"}})
        nodes.append({"name": f"{p}.q_sig", "type": "sigmoid", "input": f"{p}.q_proj"})
        nodes.append({"name": f"{p}.k_sig", "type": "sigmoid", "input": f"{p}.k_proj"})
        nodes.append({"name": f"{p}.lin", "type": "gla", "q": f"{p}.q_sig", "k": f"{p}.k_sig", "v": f"{p}.v_proj",
                      "gate": "key", "heads": NH, "kv_heads": NKV, "head_dim": HD})
        nodes.append({"name": f"{p}.lin_norm", "type": "rmsnorm", "input": f"{p}.lin",
                      "weight": f"{t}.self_attn.lin_norm.weight", "eps": 1e-6})
        nodes.append({"name": f"{p}.attn_norm", "type": "rmsnorm", "input": f"{p}.attn",
                      "weight": f"{t}.self_attn.attn_norm.weight", "eps": 1e-6})
        nodes.append({"name": f"{p}.hybrid", "type": "add", "inputs": [f"{p}.lin_norm", f"{p}.attn_norm"]})
        nodes.append(lin(f"{p}.o_proj", f"{p}.hybrid", f"{t}.self_attn.o_proj", H, NH * HD, True))
        nodes.append({"name": f"{p}.attn_add", "type": "add", "inputs": [h, f"{p}.o_proj"]})
        h = f"{p}.attn_add"
        nodes.append({"name": f"{p}.post_attention_layernorm", "type": "rmsnorm", "input": h,
                      "weight": f"{t}.post_attention_layernorm.weight", "eps": 1e-6})
        x = f"{p}.post_attention_layernorm"
        if l + 1 in DENSE:
            nodes.append(lin(f"{p}.gate_proj", x, f"{t}.mlp.gate_proj", I, H, True))
            nodes.append(lin(f"{p}.up_proj", x, f"{t}.mlp.up_proj", I, H, True))
            nodes.append({"name": f"{p}.act", "type": "silu", "input": f"{p}.gate_proj"})
            nodes.append({"name": f"{p}.gated", "type": "mul", "inputs": [f"{p}.act", f"{p}.up_proj"]})
            nodes.append(lin(f"{p}.down_proj", f"{p}.gated", f"{t}.mlp.down_proj", H, I, False))
            last = f"{p}.down_proj"
        else:
            def expert(tag):
                names = []
                for kind, out, inn in (("gate_proj", I, H), ("up_proj", I, H), ("down_proj", H, I)):
                    inp = x if kind != "down_proj" else f"{p}.mlp.{tag}.gate_proj"
                    nodes.append(lin(f"{p}.mlp.{tag}.{kind}", inp, f"{t}.mlp.{tag}.{kind}", out, inn,
                                     kind != "down_proj", routed=True))
                    names.append(nodes[-1]["name"])
                return names
            experts = [expert(f"experts.{e}") for e in range(E)]
            shared = expert("shared_expert")
            nodes.append({"name": f"{p}.moe", "type": "moe", "input": x, "router": f"{t}.mlp.gate.weight",
                          "act": "softmax", "top_k": 1, "renormalize": False, "experts": experts, "shared": shared})
            last = f"{p}.moe"
        nodes.append({"name": f"{p}.mlp_add", "type": "add", "inputs": [h, last]})
        h = f"{p}.mlp_add"
    nodes.append({"name": "norm", "type": "rmsnorm", "input": h, "weight": "model.norm.weight", "eps": 1e-6})
    nodes.append(lin("lm_head", "norm", "lm_head", V, H, False))
    spec = {"nesim_lm_spec": 2, "checkpoint": CK, "nodes": nodes, "output": "lm_head"}
    with open(os.path.join(HERE, "model.json"), "w") as f:
        json.dump(spec, f, indent=0, separators=(",", ":"))
    np.save(os.path.join(HERE, "prompt.npy"), np.array([785, 7290], dtype=np.int32))


if __name__ == "__main__":
    main()
