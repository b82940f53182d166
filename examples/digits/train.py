#!/usr/bin/env python3
"""Train a small ReLU MLP (64 -> 128 -> 64 -> 10) on the UCI handwritten digits
bundled with scikit-learn and export it for nesim.

Usage:
    python3 examples/digits/train.py                 # train + write the .npy files
    python3 examples/digits/train.py --spiking-check # also emulate SpikingBrain coding

All outputs are written next to this file. No network access is needed:
load_digits() reads the copy of the data shipped inside scikit-learn.
"""
import argparse
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

SEED = 0
N_TEST = 360
HIDDEN = (128, 64)
ALPHA = 1e-3
MAX_ITER = 2000

OUT = os.path.dirname(os.path.abspath(__file__))
NAMES = ["fc1", "fc2", "fc3"]


def load_split():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)  # 0..16 -> [0, 1]
    y = d.target.astype(np.int32)
    return train_test_split(x, y, test_size=N_TEST, random_state=SEED, stratify=y)


def train(x_tr, y_tr):
    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu",
                        solver="adam", alpha=ALPHA, max_iter=MAX_ITER,
                        tol=1e-6, n_iter_no_change=50, random_state=SEED)
    clf.fit(x_tr, y_tr)
    return clf


def forward(layers, x):
    """Dense float32 forward pass: relu(x W^T + b) ..., last layer without relu."""
    h = x.astype(np.float32)
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i < len(layers) - 1:
            h = np.maximum(h, np.float32(0))
    return h


def load_saved():
    layers = []
    for n in NAMES:
        w = np.load(os.path.join(OUT, n + ".weight.npy"))
        b = np.load(os.path.join(OUT, n + ".bias.npy"))
        layers.append((w, b))
    x = np.load(os.path.join(OUT, "test_inputs.npy"))
    y = np.load(os.path.join(OUT, "test_labels.npy"))
    return layers, x, y


def spike_code(x, k=3.0, vmin=1e-5, vmax=1e4):
    """SpikingBrain-style coding of one layer input, per row (token).

    V_th = clamp(mean(|x|)/k, vmin, vmax); N = rint(x / V_th) (half to even);
    returns (N as int64, V_th per row [rows,1], x_hat = N * V_th as float32).
    """
    x = x.astype(np.float32)
    vth = np.abs(x).mean(axis=1, keepdims=True, dtype=np.float32) / np.float32(k)
    vth = np.clip(vth, np.float32(vmin), np.float32(vmax)).astype(np.float32)
    n = np.rint(x / vth)
    x_hat = (n * vth).astype(np.float32)
    return n.astype(np.int64), vth, x_hat


def spiking_forward(layers, x, k=3.0):
    """Run the MLP with every layer input replaced by its spike-coded x_hat."""
    h = x.astype(np.float32)
    counts = []
    for i, (w, b) in enumerate(layers):
        n, _, h_hat = spike_code(h, k)
        counts.append(n)
        h = h_hat @ w.T + b
        if i < len(layers) - 1:
            h = np.maximum(h, np.float32(0))
    return h, counts


def count_stats(n):
    return {
        "in_0_7": float(np.mean((n >= 0) & (n <= 7))),
        "mean_count": float(np.mean(np.abs(n))),
        "zero": float(np.mean(n == 0)),
        "max": int(np.abs(n).max()),
        "negative": float(np.mean(n < 0)),
    }


def spiking_check(k=3.0):
    layers, x, y = load_saved()
    ann = forward(layers, x)
    logits, counts = spiking_forward(layers, x, k)
    acc = float(np.mean(logits.argmax(1) == y))
    agree = float(np.mean(logits.argmax(1) == ann.argmax(1)))
    print(f"spiking check (k={k:g}, rint half-to-even, V_th clamp [1e-5, 1e4])")
    print(f"  spiking accuracy (emulated): {acc:.4f}  "
          f"(ANN {np.mean(ann.argmax(1) == y):.4f}, argmax agreement {agree:.4f})")
    print(f"  {'layer':<6} {'shape':>10} {'in[0,7]':>8} {'mean N':>7} {'zero':>7} {'maxN':>5} {'neg':>6}")
    for name, n in zip(NAMES, counts):
        s = count_stats(n)
        print(f"  {name:<6} {str(list(n.shape)):>10} {s['in_0_7']:8.4f} {s['mean_count']:7.3f} "
              f"{s['zero']:7.4f} {s['max']:5d} {s['negative']:6.4f}")
    allc = np.concatenate([c.ravel() for c in counts])
    s = count_stats(allc)
    print(f"  {'all':<6} {str([allc.size]):>10} {s['in_0_7']:8.4f} {s['mean_count']:7.3f} "
          f"{s['zero']:7.4f} {s['max']:5d} {s['negative']:6.4f}")
    print("  (in[0,7]: fraction of counts N in [0,7]; mean N: mean |N| per channel;"
          " zero: fraction of N == 0)")
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spiking-check", action="store_true",
                    help="after training, emulate SpikingBrain spike coding in numpy")
    ap.add_argument("--k", type=float, default=3.0, help="threshold divisor k (default 3)")
    args = ap.parse_args()

    x_tr, x_te, y_tr, y_te = load_split()
    clf = train(x_tr, y_tr)
    sk_acc = float(clf.score(x_te, y_te))
    print(f"sklearn {sklearn.__version__}: {clf.n_iter_} iterations, "
          f"final loss {clf.loss_:.5f}, train acc {clf.score(x_tr, y_tr):.4f}, "
          f"test acc {sk_acc:.4f}")

    def save(name, a):
        np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a))

    shapes = []
    for name, w, b in zip(NAMES, clf.coefs_, clf.intercepts_):
        wt = np.ascontiguousarray(w.T, dtype="<f4")  # [out, in]
        save(name + ".weight", wt)
        save(name + ".bias", np.asarray(b, dtype="<f4"))
        shapes.append({"name": name, "weight": list(wt.shape), "bias": [int(b.shape[0])],
                       "relu": name != NAMES[-1]})
    save("test_inputs", np.asarray(x_te, dtype="<f4"))
    save("test_labels", np.asarray(y_te, dtype="<i4"))

    layers, x, y = load_saved()
    logits = forward(layers, x).astype("<f4")
    save("ann_logits", logits)
    acc = float(np.mean(logits.argmax(1) == y))
    print(f"ANN test accuracy (numpy, saved float32 arrays): {acc:.4f} "
          f"({int(round(acc * len(y)))}/{len(y)})")
    if abs(acc - sk_acc) > 1e-12:
        print(f"error: numpy accuracy {acc} != sklearn score {sk_acc}", file=sys.stderr)
        return 1

    expected = {
        "ann_accuracy": acc,
        "n_test": int(len(y)),
        "layers": shapes,
        "inputs": [int(len(y)), int(x.shape[1])],
        "sklearn": sklearn.__version__,
        "seed": SEED,
        "alpha": ALPHA,
        "n_iter": int(clf.n_iter_),
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")

    if args.spiking_check:
        spiking_check(args.k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
