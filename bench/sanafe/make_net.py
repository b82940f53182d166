#!/usr/bin/python3
"""Writes one random network in both simulators' formats (bench/sanafe.sh).

4096 Loihi-style LIF neurons without leak (threshold 1, hard reset to 0, no
refractory period), 80 % excitatory (weight +1/32) and 20 % inhibitory
(-1/8), each with exactly 80 distinct random targets (no self-connection),
bias per neuron drawn uniformly in [0.05, 0.3] and rounded to 1/64 (so every
potential stays on Loihi's 1/64 grid), placed 1024 neurons per core.

  net.net            SANA-FE netlist (soma loihi_lif, sparse synapses)
  model.json + .npy  the same network for nesim: the `if` model with a
                     per-neuron drive (the bias per tick of 1 s), explicit
                     synapses of delay 1, threshold 1 + 1/64 (SANA-FE fires
                     when v > 1; on the 1/64 grid that is v >= 1 + 1/64),
                     and each neuron starting at its bias: SANA-FE's first
                     step adds the bias to 0, so nesim's tick k is SANA-FE's
                     step k + 1 and T ticks are its T steps

  model_loihi.json   the same with nesim's `loihi` model (Loihi's fixed point:
                     truncation to 1/64 each step, v > threshold)

With --unrounded the biases keep all their bits: then only the fixed-point
model can follow SANA-FE.

usage: make_net.py OUT_DIR [N] [SEED] [--unrounded]"""
import json
import sys

import numpy as np

args = [a for a in sys.argv[1:] if a != "--unrounded"]
unrounded = "--unrounded" in sys.argv
out = args[0]
N = int(args[1]) if len(args) > 1 else 4096
seed = int(args[2]) if len(args) > 2 else 1
K, PER_CORE = 80, 1024
rng = np.random.default_rng(seed)
n_exc = int(round(0.8 * N))
bias = rng.uniform(0.05, 0.3, N)
if not unrounded:
    bias = np.round(bias * 64) / 64
pre = np.repeat(np.arange(N, dtype=np.int32), K)
post = np.empty(N * K, dtype=np.int32)
for i in range(N):
    t = rng.choice(N - 1, K, replace=False)
    t[t >= i] += 1  # no self-connection
    post[i * K:(i + 1) * K] = np.sort(t)
w = np.where(pre < n_exc, 1 / 32, -1 / 8).astype(np.float64)

np.save(f"{out}/pre.npy", pre)
np.save(f"{out}/post.npy", post)
np.save(f"{out}/w.npy", w)
np.save(f"{out}/drive.npy", bias)
spec = {"nesim": 1, "name": "sanafe-random", "tick": 1.0, "seed": seed,
        "populations": [{"name": "n", "model": "if", "n": N, "v_init": {"values": {"file": "drive.npy"}},
                         "params": {"v_thresh": 1 + 1 / 64, "v_reset": 0, "t_ref": 0,
                                    "i_drive": {"file": "drive.npy"}}}],
        "projections": [{"pre": "n", "post": "n", "rule": "explicit", "delay": 1,
                         "synapses": {"pre": {"file": "pre.npy"}, "post": {"file": "post.npy"},
                                      "weight": {"file": "w.npy"}}}]}
json.dump(spec, open(f"{out}/model.json", "w"), indent=1)
spec["populations"][0]["model"] = "loihi"
spec["populations"][0]["params"] = {"v_thresh": 1, "v_reset": 0, "bias": {"file": "drive.npy"}}
json.dump(spec, open(f"{out}/model_loihi.json", "w"), indent=1)

with open(f"{out}/net.net", "w") as f:
    f.write(f"g {N} soma_hw_name=loihi_lif synapse_hw_name=loihi_sparse_synapse threshold=1.0 reset=0.0 "
            f"log_spikes=1\n")
    for i in range(N):
        f.write(f"n 0.{i} bias={bias[i]!r}\n")
    for a, b, x in zip(pre.tolist(), post.tolist(), w.tolist()):
        f.write(f"e 0.{a}->0.{b} weight={x!r}\n")
    for i in range(N):
        f.write(f"& 0.{i}@0.{i // PER_CORE}\n")
