#!/usr/bin/python3
"""Writes the example input frames of examples/nir (numpy, fixed seed).

The paper's data sets (N-MNIST, the Braille recordings) are not included, so
these are synthetic spike frames: Bernoulli spikes per step and channel, with
a few channels busier than the rest. They exercise the graphs (spikes, SOPs,
energy of the activity) but their argmax is not a classification.
Run from the repository root:  /usr/bin/python3 examples/nir/make_inputs.py
"""
import numpy as np

r = np.random.default_rng(2026)
# Braille: 4 samples x 256 steps x 12 sensor channels (dt = 1e-4 s: 25.6 ms)
rate = np.full(12, 0.05)
rate[r.choice(12, 4, replace=False)] = 0.3
np.save("examples/nir/braille_inputs.npy", (r.random((4, 256, 12)) < rate).astype(np.uint8))
# N-MNIST-shaped: 2 samples x 30 steps x 2 polarities x 34 x 34, a moving blob of events
f = np.zeros((2, 30, 2, 34, 34), np.uint8)
yy, xx = np.mgrid[0:34, 0:34]
for s in range(2):
    for t in range(30):
        cy, cx = 17 + 8 * np.sin(0.2 * t + s), 17 + 8 * np.cos(0.2 * t + 2 * s)
        p = 0.35 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
        f[s, t] = r.random((2, 34, 34)) < p
np.save("examples/nir/cnn_inputs.npy", f)
