#!/usr/bin/python3
"""An independent reference for nesim's NIR runner (tests/test_nir.c).

Reads the .nir file itself with h5py (not through nesim's reader), flattens
nested graphs, and steps every node densely with numpy, step by step, with
the semantics sim/nir_run.h documents (forward Euler with the synaptic
current first, or the closed form over each step; strict > at threshold;
reset to v_reset or by subtraction; an edge closing a cycle carries the
previous step's value, a linear node's bias before step 0).

usage: nir_ref.py MODEL.nir FRAMES.npy DT euler|exact value|subtract OUT.json
OUT.json: {"nodes": {name: {"spikes": [[sample, step, index], ...], "sops": n}}}
"""
import json
import sys

import h5py
import numpy as np


def read_graph(grp, prefix, nodes, edges):
    subs = {}
    names = sorted(grp["nodes"].keys())
    for name in names:
        g = grp["nodes"][name]
        t = g["type"][()].decode()
        full = prefix + name
        if t == "NIRGraph":
            inner = {}
            read_graph(g, full + ".", inner, edges)
            ins = [k for k, v in inner.items() if v["type"] == "Input"]
            outs = [k for k, v in inner.items() if v["type"] == "Output"]
            assert len(ins) == 1 and len(outs) == 1
            for k in ins + outs:
                inner[k]["type"] = "Identity"
            subs[full] = (ins[0], outs[0])
            nodes.update(inner)
            continue
        p = {"type": t}
        for k in g.keys():
            if k == "type" or isinstance(g[k], h5py.Group):
                continue
            v = g[k][()]
            p[k] = v.decode() if isinstance(v, bytes) else np.asarray(v, dtype=np.float64)
        nodes[full] = p
    raw = grp["edges"][()] if "edges" in grp else []
    for s, d in raw:
        s, d = s.decode(), d.decode()

        def res(n, src):
            if n not in names:  # the repair nesim applies: the one name it begins
                hit = [m for m in names if m.startswith(n)]
                assert len(hit) == 1, n
                n = hit[0]
            f = prefix + n
            if f in subs:
                f = subs[f][1] if src else subs[f][0]
            return f

        edges.append((res(s, True), res(d, False)))


def load(path):
    h = h5py.File(path, "r")
    nodes, edges = {}, []
    read_graph(h["node"], "", nodes, edges)
    # nesim's node order: names in HDF5 order per level, nested ones at their place
    return nodes, edges


def order_nodes(nodes, edges):
    names = list(nodes.keys())
    idx = {n: i for i, n in enumerate(names)}
    out = {n: [] for n in names}
    for e, (s, d) in enumerate(edges):
        out[s].append((e, d))
    color = {n: 0 for n in names}
    back = set()
    roots = [n for n in names if nodes[n]["type"] == "Input"] + names
    for r in roots:
        if color[r]:
            continue
        stack = [(r, iter(out[r]))]
        color[r] = 1
        while stack:
            u, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[u] = 2
                stack.pop()
                continue
            e, v = nxt
            if color[v] == 0:
                color[v] = 1
                stack.append((v, iter(out[v])))
            elif color[v] == 1:
                back.add(e)
    indeg = {n: 0 for n in names}
    for e, (s, d) in enumerate(edges):
        if e not in back:
            indeg[d] += 1
    order, placed = [], set()
    while len(order) < len(names):
        pick = min((n for n in names if n not in placed and indeg[n] == 0), key=lambda n: idx[n])
        placed.add(pick)
        order.append(pick)
        for e, (s, d) in enumerate(edges):
            if e not in back and s == pick:
                indeg[d] -= 1
    return order, back


def conv2d(x, W, S, P, D):
    C, H, Wd = x.shape
    co, ci, K0, K1 = W.shape
    xp = np.pad(x, ((0, 0), (P[0], P[0]), (P[1], P[1])))
    O0 = (H + 2 * P[0] - D[0] * (K0 - 1) - 1) // S[0] + 1
    O1 = (Wd + 2 * P[1] - D[1] * (K1 - 1) - 1) // S[1] + 1
    out = np.zeros((co, O0, O1))
    for ky in range(K0):
        for kx in range(K1):
            patch = xp[:, ky * D[0]: ky * D[0] + S[0] * (O0 - 1) + 1: S[0], kx * D[1]: kx * D[1] + S[1] * (O1 - 1) + 1: S[1]]
            out += np.einsum("oc,cyx->oyx", W[:, :, ky, kx], patch)
    return out


def pair(p, key, default):
    if key not in p:
        return [default, default]
    v = np.atleast_1d(p[key]).astype(int)
    return [int(v[0]), int(v[-1])]


def main():
    path, frames_path, dt, disc, reset, out_path = sys.argv[1:7]
    dt = float(dt)
    nodes, edges = load(path)
    order, back = order_nodes(nodes, edges)
    preds = {n: [] for n in nodes}
    for e, (s, d) in enumerate(edges):
        preds[d].append((s, e in back))
    frames = np.load(frames_path).astype(np.float64)
    res = {n: {"spikes": [], "sops": 0} for n in nodes}
    for s in range(frames.shape[0]):
        state, out, prev = {}, {}, {}
        for n, p in nodes.items():  # before step 0: a linear node's bias
            if p["type"] in ("Affine", "Conv2d") and "bias" in p:
                b = p["bias"]
                prev[n] = b if p["type"] == "Affine" else None
        for t in range(frames.shape[1]):
            cur = {}
            for n in order:
                p = nodes[n]
                ty = p["type"]
                x = None
                for (src, is_back) in preds[n]:
                    val = prev.get(src) if is_back else cur[src]
                    if val is None:
                        continue
                    val = np.ravel(val)
                    x = val.copy() if x is None else x + val
                if ty == "Input":
                    y = frames[s, t].ravel()
                elif ty in ("Output", "Identity", "Flatten"):
                    y = x
                elif ty in ("Affine", "Linear"):
                    W = p["weight"]
                    xx = np.zeros(W.shape[1]) if x is None else x
                    res[n]["sops"] += int(((W != 0).sum(axis=0) * (xx != 0)).sum())
                    y = W @ xx
                    if ty == "Affine" and "bias" in p:
                        y = y + p["bias"]
                elif ty == "Conv1d":  # as a 2-D convolution of height 1
                    W = p["weight"][:, :, None, :]
                    L = int(np.ravel(p["input_shape"])[0])
                    C = W.shape[1]
                    xx = (np.zeros(C * L) if x is None else x).reshape(C, 1, L)
                    S, P, D = [1, pair(p, "stride", 1)[0]], [0, pair(p, "padding", 0)[0]], [1, pair(p, "dilation", 1)[0]]
                    y = conv2d(xx, W, S, P, D)
                    res[n]["sops"] += int(round(conv2d((xx != 0).astype(float), (W != 0).astype(float), S, P, D).sum()))
                    if "bias" in p:
                        y = y + p["bias"][:, None, None]
                    y = y.ravel()
                elif ty in ("Conv2d", "SumPool2d", "AvgPool2d"):
                    if ty == "Conv2d":
                        W = p["weight"]
                        H = [int(v) for v in p["input_shape"]]
                        C = W.shape[1]
                        xx = (np.zeros(C * H[0] * H[1]) if x is None else x).reshape(C, H[0], H[1])
                        S, P, D = pair(p, "stride", 1), pair(p, "padding", 0), pair(p, "dilation", 1)
                        y = conv2d(xx, W, S, P, D)
                        res[n]["sops"] += int(round(conv2d((xx != 0).astype(float), (W != 0).astype(float), S, P, D).sum()))
                        if "bias" in p:
                            y = y + p["bias"][:, None, None]
                    else:
                        C, H0, H1 = shapes[n]
                        xx = (np.zeros(C * H0 * H1) if x is None else x).reshape(C, H0, H1)
                        K, S, P = pair(p, "kernel_size", 1), pair(p, "stride", 0), pair(p, "padding", 0)
                        S = [S[i] or K[i] for i in range(2)]
                        Wp = np.zeros((C, C, K[0], K[1]))
                        for c in range(C):
                            Wp[c, c] = 1.0 / (K[0] * K[1]) if ty == "AvgPool2d" else 1.0
                        y = conv2d(xx, Wp, S, P, [1, 1])
                        res[n]["sops"] += int(round(conv2d((xx != 0).astype(float), (Wp != 0).astype(float), S, P, [1, 1]).sum()))
                    shapes_out[n] = y.shape
                    y = y.ravel()
                else:  # neurons
                    N = int(np.max([np.size(v) for k, v in p.items() if k != "type"]))
                    xx = np.zeros(N) if x is None else x

                    def g(k, d):
                        return np.broadcast_to(np.ravel(p[k]), (N,)).astype(np.float64) if k in p else np.full(N, d)
                    R, vl, vr, win = g("r", 1.0), g("v_leak", 0.0), g("v_reset", 0.0), g("w_in", 1.0)
                    v = state.get(n + "v", np.zeros(N))
                    I = state.get(n + "I", np.zeros(N))
                    if ty in ("I", "IF"):
                        v = v + (dt * R) * xx
                    elif ty in ("LI", "LIF"):
                        tau = g("tau", 1.0)
                        if disc == "euler":
                            v = v + (dt / tau) * (vl - v + R * xx)
                        else:
                            vinf = vl + R * xx
                            v = vinf + (v - vinf) * np.exp(-dt / tau)
                    else:
                        tm, ts = g("tau_mem", 1.0), g("tau_syn", 1.0)
                        if disc == "euler":
                            I = I + (dt / ts) * (-I + win * xx)
                            v = v + (dt / tm) * (vl - v + R * I)
                        else:
                            a, b = np.exp(-dt / ts), np.exp(-dt / tm)
                            q = ts * (a - b) / (ts - tm)
                            iinf = win * xx
                            vinf = vl + R * iinf
                            v = vinf + (v - vinf) * b + R * (I - iinf) * q
                            I = iinf + (I - iinf) * a
                    if ty in ("IF", "LIF", "CubaLIF"):
                        thr = g("v_threshold", 0.0)
                        sp = v > thr
                        for i in np.nonzero(sp)[0]:
                            res[n]["spikes"].append([s, t, int(i)])
                        v = np.where(sp, v - (thr - vr), v) if reset == "subtract" else np.where(sp, vr, v)
                        y = sp.astype(np.float64)
                    else:
                        y = v.copy()
                    state[n + "v"], state[n + "I"] = v, I
                cur[n] = y
            prev = cur
    json.dump({"nodes": res}, open(out_path, "w"))


# pool input shapes: the output shape of the node feeding each pool
shapes, shapes_out = {}, {}
if __name__ == "__main__":
    # a first pass finds pool input shapes from the Conv outputs (and neuron parameter shapes)
    nodes_, edges_ = load(sys.argv[1])
    for s_, d_ in edges_:
        if nodes_[d_]["type"] in ("SumPool2d", "AvgPool2d"):
            src = nodes_[s_]
            shp = np.shape(src.get("v_threshold", src.get("r")))
            shapes[d_] = tuple(int(v) for v in shp)
    main()
