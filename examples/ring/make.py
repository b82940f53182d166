#!/usr/bin/python3
"""make.py — writes examples/ring: model.json and its synapse lists
(pre.npy, post.npy, weight.npy, delay.npy; one synapse per element).
400 LIF neurons on a ring; each excites its 10 nearest neighbours on either
side (8 mV falling linearly with distance, delay = distance in 1 ms ticks)
and inhibits 4 random far neurons (-8 mV, 20 ms); 20 Poisson seeds start
waves. Needs python3-numpy; the files it writes are committed.

    cd examples/ring && /usr/bin/python3 make.py"""
import json

import numpy as np

N, R = 400, 10
pre, post, w, d = [], [], [], []
for i in range(N):
    for k in range(1, R + 1):
        for j in ((i + k) % N, (i - k) % N):
            pre.append(i), post.append(j), w.append(8e-3 * (1 - (k - 1) / R)), d.append(k)
rng = np.random.default_rng(5)
for i in range(N):
    for j in rng.choice(N, 4, replace=False):
        pre.append(i), post.append(int(j)), w.append(-8e-3), d.append(20)
np.save("pre.npy", np.array(pre, np.int16))
np.save("post.npy", np.array(post, np.int16))
np.save("weight.npy", np.array(w, np.float64))
np.save("delay.npy", np.array(d, np.uint8))
lif = {"tau_m": 0.02, "v_rest": -0.065, "v_thresh": -0.05, "v_reset": -0.065, "t_ref": 0.01}
spec = {
    "nesim": 1, "name": "ring",
    "description": "400 LIF neurons on a ring: each excites its 10 nearest neighbours on either side (8 mV "
                   "falling with distance, delay = distance in 1 ms ticks) and inhibits 4 random far neurons "
                   "(-8 mV, 20 ms); 20 Poisson seeds start travelling waves. Connectivity is data: four .npy "
                   "lists (pre, post, weight, delay), one synapse per element (make.py writes them).",
    "tick": 1e-3, "seed": 1,
    "populations": [
        {"name": "ring", "model": "lif", "n": N, "params": lif, "v_init": {"const": -0.065}},
        {"name": "seed", "model": "poisson", "n": 20, "params": {"rate_hz": 20}}],
    "projections": [
        {"pre": "ring", "post": "ring", "rule": "explicit",
         "synapses": {"pre": {"file": "pre.npy"}, "post": {"file": "post.npy"},
                      "weight": {"file": "weight.npy"}, "delay": {"file": "delay.npy"}}},
        {"pre": "seed", "post": "ring", "rule": "explicit",
         "synapses": {"pre": list(range(20)), "post": list(range(0, 400, 20)), "weight": [0.02] * 20}}]}
json.dump(spec, open("model.json", "w"), indent=1)
