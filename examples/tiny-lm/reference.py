#!/usr/bin/python3
"""reference.py — PyTorch oracles for nesim's language-model engine, written
into examples/tiny-lm/reference/ for the fixed token sequence tokens.npy
(the first 96 characters of heldout.txt: a 32-token prompt, then 64 more).

  ann_f32.npy    logits of the plain float32 PyTorch model (model.py's
                 training forward, all positions at once)
  ann.npy        logits in float64 with nesim's rounding points: every
                 projection input and output rounded to float32
  spk.npy        the same with SpikingBrain's released input coding at the
                 spiked projections (q, k, v, o, gate, up): per token row
                 V_th = clamp(mean|x| / k, 1e-5, 1e4), counts
                 round(x / V_th) half to even, y = (counts V_th) W^T + b
  spk_spikes.npy spikes per layer and projection [layers, 7] under bitwise
                 bidirectional coding (popcount of |count|), k = 3

    /usr/bin/python3 examples/tiny-lm/reference.py"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import TinyLM, read_safetensors, rope_tables, rotate_half  # noqa: E402

PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SPIKED = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"}


def f32(x):
    return x.to(torch.float32).to(torch.float64)


def emulate(cfg, W, ids, spiked, k=3.0, counts=None):
    """All positions at once (causal), float64, rounding like nesim."""
    T, H, nh, nkv = len(ids), cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", H // nh)
    eps = cfg["rms_norm_eps"]

    def rms(h, w):
        return h * (1.0 / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + eps)) * w

    def proj(x, name, li, kind):
        x = f32(x)
        w = W[name]
        if kind in spiked:
            vth = (x.abs().mean(-1, keepdim=True) / k).clamp(1e-5, 1e4)
            n = torch.round(x / vth)  # half to even
            if counts is not None:
                c = n.abs().to(torch.int64)
                pop = torch.zeros_like(c)
                while bool((c > 0).any()):
                    pop += c & 1
                    c = c >> 1
                counts[li, PROJ.index(kind)] += int(pop.sum())
            x = n * vth
        return f32(x @ w.T)

    h = W["model.embed_tokens.weight"][torch.tensor(ids)]
    cos, sin = rope_tables(hd, torch.arange(T), cfg["rope_theta"], torch.float64)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for li in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{li}."
        x = rms(h, W[p + "input_layernorm.weight"])
        q = proj(x, p + "self_attn.q_proj.weight", li, "q_proj").view(T, nh, hd).transpose(0, 1)
        kk = proj(x, p + "self_attn.k_proj.weight", li, "k_proj").view(T, nkv, hd).transpose(0, 1)
        v = proj(x, p + "self_attn.v_proj.weight", li, "v_proj").view(T, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        kk = kk * cos + rotate_half(kk) * sin
        kk = kk.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        a = torch.softmax(q @ kk.transpose(-1, -2) / hd ** 0.5 + mask, dim=-1) @ v
        h = h + proj(a.transpose(0, 1).reshape(T, nh * hd), p + "self_attn.o_proj.weight", li, "o_proj")
        x = rms(h, W[p + "post_attention_layernorm.weight"])
        g = proj(x, p + "mlp.gate_proj.weight", li, "gate_proj")
        u = proj(x, p + "mlp.up_proj.weight", li, "up_proj")
        h = h + proj(torch.nn.functional.silu(g) * u, p + "mlp.down_proj.weight", li, "down_proj")
    x = rms(h, W["model.norm.weight"])
    return proj(x, "model.embed_tokens.weight", -1, "lm_head")


def main():
    cfg = json.load(open(os.path.join(HERE, "config.json")))
    vocab = json.load(open(os.path.join(HERE, "vocab.json")))
    text = open(os.path.join(HERE, "heldout.txt")).read()[:96]
    ids = [vocab[c] for c in text]
    W = {n: torch.from_numpy(a) for n, a in read_safetensors(os.path.join(HERE, "model.safetensors")).items()}
    out = os.path.join(HERE, "reference")
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "tokens.npy"), np.array(ids, dtype=np.int32))

    model = TinyLM(cfg)
    with torch.no_grad():
        for n, prm in model.hf_state().items():
            prm.copy_(W[n].to(torch.float32))
        np.save(os.path.join(out, "ann_f32.npy"), model(torch.tensor([ids]))[0].numpy().astype(np.float32))
        np.save(os.path.join(out, "ann.npy"), emulate(cfg, W, ids, set()).numpy().astype(np.float32))
        counts = np.zeros((cfg["num_hidden_layers"], 7), dtype=np.int64)
        np.save(os.path.join(out, "spk.npy"), emulate(cfg, W, ids, SPIKED, 3.0, counts).numpy().astype(np.float32))
        np.save(os.path.join(out, "spk_spikes.npy"), counts)
    with open(os.path.join(out, "README"), "w") as f:
        f.write("Written by examples/tiny-lm/reference.py with torch %s; see its docstring.\n" % torch.__version__)


if __name__ == "__main__":
    main()
