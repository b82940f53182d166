#!/usr/bin/python3
"""Writes net.yaml: a small convolutional SNN in SANA-FE's network format.

A 16 x 16 'retina' whose neurons are driven by biases (a bright bar and a
dim background), a 3 x 3 convolution with 8 kernels (stride 1) to 14 x 14 x 8,
a 2 x 2-strided 3 x 3 convolution with 8 kernels to 6 x 6 x 8, and a dense
layer of 10. Loihi-style integer weights, leak 4095/4096, thresholds in
weight units; mapped by hand over 7 cores of 3 tiles. Deterministic (seed 7).
usage: make_net.py > net.yaml"""
import numpy as np

rng = np.random.default_rng(7)
print("# written by make_net.py; run: nesim run examples/sanafe/net.yaml --chip examples/sanafe/loihi.yaml")
print("network:\n  name: conv_example\n  groups:")
lif = "soma_hw_name: lif, reset: 0, leak_decay: 0.999755859375"
print(f"  - name: retina\n    attributes: {{{lif}, threshold: 64, synapse_hw_name: conv_synapse}}\n    neurons:")
for i in range(256):
    y, x = divmod(i, 16)
    bias = 9 if 6 <= y <= 8 else (2 if (x + y) % 5 == 0 else 0)
    print(f"    - {i}: {{bias: {bias}}}")
sizes = [("c1", 14 * 14 * 8, 90, "conv_synapse"), ("c2", 6 * 6 * 8, 70, "dense_synapse"), ("out", 10, 40, "dense_synapse")]
for name, n, th, syn in sizes:
    print(f"  - name: {name}\n    attributes: {{{lif}, threshold: {th}, synapse_hw_name: {syn}}}\n    neurons: [0..{n - 1}]")
def conv(src, dst, w, h, c, k, s):
    wts = rng.integers(-40, 80, size=3 * 3 * c * k)
    print(f"  - {src} -> {dst}:\n      type: conv2d\n      input_width: {w}\n      input_height: {h}\n"
          f"      input_channels: {c}\n      kernel_width: 3\n      kernel_height: 3\n      kernel_count: {k}\n"
          f"      stride_width: {s}\n      stride_height: {s}\n      weight: [{', '.join(map(str, wts))}]")
print("  edges:")
conv("retina", "c1", 16, 16, 1, 8, 1)
conv("c1", "c2", 14, 14, 8, 8, 2)
wd = rng.integers(-30, 60, size=288 * 10)
print(f"  - c2 -> out:\n      type: dense\n      weight: [{', '.join(map(str, wd))}]")
print("mappings:")
print("  - retina: [core: 0.0]")
for k in range(4):  # 1,568 neurons of c1 over four cores of tile 1 and 2
    lo, hi = k * 392, k * 392 + 391
    print(f"  - c1.{lo}..{hi}: [core: {1 + k // 2}.{k % 2}]")
print("  - c2: [core: 4.0]")
print("  - out: [core: 4.1]")
