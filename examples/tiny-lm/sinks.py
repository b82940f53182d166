"""sinks.py — SpikingBrain-76B's parallel hybrid layer with its sink tokens,
on the tiny model, and its oracle.

The 76B's softmax attention attends to learned sink tokens besides its
window (technical report, sec. 2.2; its code is not released). nesim reads
them as learned keys and values per layer, [S, kv_heads * head_dim] each,
seen by every query as stored (no RoPE, no int8). This writes:

  sinks/                    a checkpoint folder: the tiny model's files
                            (symlinks) plus sinks.safetensors (4 sinks per
                            layer, F32, seeded) and the index naming both;
  hybrid_sinks.json         gla.py's hybrid spec over that folder with
                            "sinks" on every attention node;
  reference/hybrid_sinks_spk.npy  its spiking logits from gla.py's
                            interpreter (PyTorch float64, nesim's rounding
                            points), which tests/test_lm.c matches.

Runs with Debian's python3-torch and python3-numpy, after make (it calls
build/rel/nesim spec):  /usr/bin/python3 examples/tiny-lm/sinks.py
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gla import base_spec, hybrid_spec, run  # noqa: E402
from model import read_safetensors, write_safetensors  # noqa: E402

S = 4


def main():
    cfg = json.load(open(os.path.join(HERE, "config.json")))
    kv = cfg["num_key_value_heads"] * cfg["head_dim"]
    d = os.path.join(HERE, "sinks")
    os.makedirs(d, exist_ok=True)
    for f in ("config.json", "model.safetensors", "vocab.json"):
        link = os.path.join(d, f)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..", f), link)
    g = torch.Generator().manual_seed(76)
    sinks = {}
    for L in range(cfg["num_hidden_layers"]):
        for x in ("k", "v"):
            sinks[f"model.layers.{L}.self_attn.sink_{x}"] = torch.randn(S, kv, generator=g) * 0.5
    write_safetensors(os.path.join(d, "sinks.safetensors"), sinks, dtype="F32")
    W = read_safetensors(os.path.join(HERE, "model.safetensors"))
    wmap = {name: "model.safetensors" for name in W}
    wmap.update({name: "sinks.safetensors" for name in sinks})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": dict(sorted(wmap.items()))}, f, indent=1)
    W.update(read_safetensors(os.path.join(d, "sinks.safetensors")))
    W = {n: torch.from_numpy(a).to(torch.float64) for n, a in W.items()}
    spec = hybrid_spec(base_spec())
    spec["checkpoint"] = "examples/tiny-lm/sinks"
    for n in spec["nodes"]:
        if n["type"] == "attention":
            L = int(n["name"].split(".")[1])
            n["sinks"] = {"k": f"model.layers.{L}.self_attn.sink_k", "v": f"model.layers.{L}.self_attn.sink_v"}
    with open(os.path.join(HERE, "hybrid_sinks.json"), "w") as f:
        json.dump(spec, f, indent=1)
    ids = [int(i) for i in np.load(os.path.join(HERE, "reference", "tokens.npy"))]
    with torch.no_grad():
        np.save(os.path.join(HERE, "reference", "hybrid_sinks_spk.npy"), run(spec, W, ids, True))


if __name__ == "__main__":
    main()
