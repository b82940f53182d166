#!/usr/bin/python3
"""gla.py — the tiny language model with its attention swapped for gated
linear attention (SpikingBrain-7B's GLA layers; a spec-level change, no
training), and its PyTorch oracle.

Also writes hybrid.json (SpikingBrain-76B's parallel hybrid layer: softmax
attention beside a linear attention with a sigmoid feature map and the
key-tied gate, each normalised, summed; reference/hybrid_spk.npy) and
moe.json and moe_top1.json (every layer's MLP as a mixture of
64 experts, top-2 softmax renormalised and top-1 sigmoid) with their
logits, routes and spike count (moe_spk.npy, moe_routes.npy,
moe_spikes.npy, moe_top1_ann.npy).

Writes examples/tiny-lm/gla.json and gla_norm.json (nesim language-model
specs over the tiny checkpoint) and reference/gla_ann.npy, gla_spk.npy,
gla_norm_ann.npy: logits for reference/tokens.npy computed here, token by
token in float64 with nesim's rounding points (every projection's input and
output rounded to float32; spiked: SpikingBrain's per-row counts), by a small
interpreter of the spec whose GLA node is flash-linear-attention's recurrence
written out in plain torch:

    alpha = sigmoid(gk) ** (1 / gate_norm)         (exp(logsigmoid(gk) / gate_norm))
    S_g   = diag(alpha_g) S_g + k_g^T v_g          per KV head g, across tokens
    o_h   = (q_h / sqrt(head_dim)) S_{h // (heads / kv_heads)}
    o_h   = RMSNorm(o_h) * norm                    (when the node has a norm)

gla.json: every layer's attention becomes GLA with q = ReLU(q_proj), k =
ReLU(k_proj), v = v_proj and the gate gk from the next layer's k_proj weight
(the tiny model has no gate: any [kv_dim, hidden] matrix will do);
gla_norm.json: layer 0 only, as one head of 128 with the output norm
(model.norm.weight), to exercise the norm.

    /usr/bin/python3 examples/tiny-lm/gla.py"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from model import read_safetensors, rope_tables, rotate_half  # noqa: E402


def f32(x):
    return x.to(torch.float32).to(torch.float64)


def base_spec():
    out = subprocess.run([os.path.join(ROOT, "build/rel/nesim"), "spec", os.path.join(ROOT, "examples/tiny-lm")],
                         check=True, capture_output=True, text=True).stdout
    s = json.loads(out)
    s["checkpoint"] = "examples/tiny-lm"
    return s


def swap(spec, layers, one_head):
    nodes, out = spec["nodes"], []
    n_layers = sum(1 for n in nodes if n["type"] == "attention")
    for n in nodes:
        if n["type"] != "attention" or int(n["name"].split(".")[1]) not in layers:
            out.append(n)
            continue
        L = int(n["name"].split(".")[1])
        p = f"layers.{L}"
        norm_in = f"{p}.input_layernorm"
        # q, k and v are the layer's projections (already in out); relu nodes follow them
        if one_head:  # 1 head of 128: k from o_proj's weight, gk from the next layer's q_proj
            out.append({"name": f"{p}.k_gla", "type": "linear", "input": norm_in,
                        "weight": f"model.layers.{L}.self_attn.o_proj.weight", "coding": "bitwise-bidirectional",
                        "k": 3.0})
            out.append({"name": f"{p}.v_gla", "type": "linear", "input": norm_in,
                        "weight": f"model.layers.{(L + 2) % n_layers}.self_attn.q_proj.weight",
                        "coding": "bitwise-bidirectional", "k": 3.0})
            out.append({"name": f"{p}.gk_proj", "type": "linear", "input": norm_in,
                        "weight": f"model.layers.{(L + 1) % n_layers}.self_attn.q_proj.weight",
                        "coding": "bitwise-bidirectional", "k": 3.0})
            kn, vn = f"{p}.k_gla", f"{p}.v_gla"
        else:
            out.append({"name": f"{p}.gk_proj", "type": "linear", "input": norm_in,
                        "weight": f"model.layers.{(L + 1) % n_layers}.self_attn.k_proj.weight",
                        "coding": "bitwise-bidirectional", "k": 3.0})
            kn, vn = f"{p}.k_proj", f"{p}.v_proj"
        out.append({"name": f"{p}.q_relu", "type": "relu", "input": f"{p}.q_proj"})
        out.append({"name": f"{p}.k_relu", "type": "relu", "input": kn})
        g = {"name": n["name"], "type": "gla", "q": f"{p}.q_relu", "k": f"{p}.k_relu", "v": vn,
             "gk": f"{p}.gk_proj", "gate_norm": 16.0}
        if one_head:
            g.update({"heads": 1, "kv_heads": 1, "head_dim": 128, "norm": "model.norm.weight", "eps": 1e-5})
        else:
            g.update({"heads": n["heads"], "kv_heads": n["kv_heads"], "head_dim": n["head_dim"]})
        out.append(g)
    spec["nodes"] = out
    return spec


def moe_spec(spec, n_experts=64, top_k=2, act="softmax", renormalize=True):
    """Every layer's MLP as a mixture of experts: the router is the layer's
    k_proj weight [64, 128] (any [experts, hidden] matrix will do), expert e
    the MLP weights of layer e % 4, the layer's own MLP the shared expert."""
    nodes, out = spec["nodes"], []
    by = {n["name"]: n for n in nodes}
    n_layers = sum(1 for n in nodes if n["type"] == "attention")
    for n in nodes:
        nm = n["name"]
        if nm.endswith((".gate_proj", ".up_proj", ".act", ".gated", ".down_proj")):
            continue  # replaced below
        if nm.endswith(".mlp_add"):
            L = int(nm.split(".")[1])
            p = f"layers.{L}"
            x = f"{p}.post_attention_layernorm"

            def expert(tag, src):
                names = []
                for kind in ("gate_proj", "up_proj", "down_proj"):
                    base = by[f"layers.{src}.{kind}"]
                    e = {"name": f"{p}.{tag}.{kind}", "type": "linear",
                         "input": x if kind != "down_proj" else f"{p}.{tag}.gate_proj",
                         "weight": base["weight"], "coding": base["coding"], "routed": True}
                    if "k" in base:
                        e["k"] = base["k"]
                    out.append(e)
                    names.append(e["name"])
                return names
            experts = [expert(f"e{e}", e % n_layers) for e in range(n_experts)]
            shared = expert("shared", L)
            out.append({"name": f"{p}.moe", "type": "moe", "input": x,
                        "router": f"model.layers.{L}.self_attn.k_proj.weight", "act": act, "top_k": top_k,
                        "renormalize": renormalize, "experts": experts, "shared": shared})
            n = dict(n)
            n["inputs"] = [n["inputs"][0], f"{p}.moe"]
        out.append(n)
    spec["nodes"] = out
    return spec


def hybrid_spec(spec):
    """SpikingBrain-76B's parallel hybrid layer at the spec level: softmax
    attention and a linear attention with a sigmoid feature map and the
    key-tied gate (alpha = 1 - k) side by side on the same q, k, v, each
    RMS-normalised (the layer's two norm weights stand in), summed into
    o_proj. (Its sink tokens: sinks.py.)"""
    nodes, out = spec["nodes"], []
    for n in nodes:
        if n["type"] != "attention":
            if n["name"].endswith(".o_proj"):
                n = dict(n)
                n["input"] = n["input"] + "_hybrid"
            out.append(n)
            continue
        L = int(n["name"].split(".")[1])
        p = f"layers.{L}"
        out.append(n)  # the softmax branch, as it was
        out.append({"name": f"{p}.q_sig", "type": "sigmoid", "input": f"{p}.q_proj"})
        out.append({"name": f"{p}.k_sig", "type": "sigmoid", "input": f"{p}.k_proj"})
        out.append({"name": f"{p}.lin", "type": "gla", "q": f"{p}.q_sig", "k": f"{p}.k_sig", "v": f"{p}.v_proj",
                    "gate": "key", "heads": n["heads"], "kv_heads": n["kv_heads"], "head_dim": n["head_dim"]})
        out.append({"name": f"{p}.lin_norm", "type": "rmsnorm", "input": f"{p}.lin",
                    "weight": f"model.layers.{L}.input_layernorm.weight", "eps": 1e-5})
        out.append({"name": f"{p}.attn_norm", "type": "rmsnorm", "input": n["name"],
                    "weight": f"model.layers.{L}.post_attention_layernorm.weight", "eps": 1e-5})
        out.append({"name": n["name"] + "_hybrid", "type": "add", "inputs": [f"{p}.lin_norm", f"{p}.attn_norm"]})
    spec["nodes"] = out
    return spec


def run(spec, W, ids, spiked, k=3.0, routes=None, spikes=None):
    """The spec's graph, token by token, float64 with nesim's rounding points."""
    nodes = spec["nodes"]
    byname = {n["name"]: n for n in nodes}
    cache, state = {}, {}
    logits = []

    def linear(n, x):
        x = f32(x)
        if spiked and n["coding"] != "none":
            vth = (x.abs().mean() / n.get("k", k)).clamp(1e-5, 1e4)
            cnt = torch.round(x / vth)
            if spikes is not None:  # bitwise-bidirectional: popcount of |count|
                c = cnt.abs().to(torch.int64)
                while bool((c > 0).any()):
                    spikes[0] += int((c & 1).sum())
                    c = c >> 1
            x = cnt * vth
        y = x @ W[n["weight"]].T
        if "bias" in n:
            y = y + W[n["bias"]]
        return f32(y)

    for pos, tok in enumerate(ids):
        val = {}
        for n in nodes:
            t = n["type"]
            if t == "linear" and n.get("routed"):
                continue
            if t == "embedding":
                y = W[n["weight"]][tok]
            elif t == "rmsnorm":
                x = val[n["input"]]
                y = x * (1.0 / torch.sqrt(x.pow(2).mean() + n["eps"])) * W[n["weight"]]
            elif t == "linear":
                y = linear(n, val[n["input"]])
            elif t == "moe":
                x = val[n["input"]]
                z = W[n["router"]] @ x
                p = torch.sigmoid(z) if n["act"] == "sigmoid" else torch.softmax(z, -1)
                order = sorted(range(len(p)), key=lambda e: (-float(p[e]), e))[:n["top_k"]]
                w = p[order]
                if n["renormalize"]:
                    w = w / w.sum()
                if routes is not None:
                    routes.append((n["name"], order))

                def expert(names):
                    g = linear(byname[names[0]], x)
                    u = linear(byname[names[1]], x)
                    return linear(byname[names[2]], g / (1.0 + torch.exp(-g)) * u)
                y = sum(w[i] * expert(n["experts"][e]) for i, e in enumerate(order))
                if "shared" in n:
                    y = y + expert(n["shared"])
            elif t == "attention":
                nh, nkv, hd = n["heads"], n["kv_heads"], n["head_dim"]
                cos, sin = rope_tables(hd, torch.tensor([pos]), n["rope_theta"], torch.float64)
                q = val[n["q"]].view(nh, hd)
                kk = val[n["k"]].view(nkv, hd)
                q = q * cos + rotate_half(q) * sin
                kk = kk * cos + rotate_half(kk) * sin
                vv = val[n["v"]].view(nkv, hd)
                if n.get("kv_quant") == "int8":  # W8ASpike: per token and KV head, s = clamp(max|x| / 127)
                    def q8(x):
                        sc = (x.abs().amax(-1, keepdim=True) / 127.0).clamp(1e-5, 1e4)
                        return torch.round(x / sc).clamp(-128, 127) * sc
                    kk, vv = q8(kk), q8(vv)
                if n.get("q_k"):  # the query spike-coded per head
                    vq = (q.abs().mean(-1, keepdim=True) / n["q_k"]).clamp(1e-5, 1e4)
                    q = torch.round(q / vq) * vq
                K, V = cache.setdefault(n["name"], ([], []))
                K.append(kk)
                V.append(vv)
                win = n.get("window", 0)
                Ks, Vs = torch.stack(K, 1), torch.stack(V, 1)  # [nkv, pos + 1, hd]
                if win and Ks.shape[1] > win:  # the window: the last `win` positions, this one included
                    Ks, Vs = Ks[:, -win:], Vs[:, -win:]
                if "sinks" in n:  # learned keys and values before every position, as stored
                    sk = W[n["sinks"]["k"]].view(-1, nkv, hd).transpose(0, 1)
                    sv = W[n["sinks"]["v"]].view(-1, nkv, hd).transpose(0, 1)
                    Ks, Vs = torch.cat([sk, Ks], 1), torch.cat([sv, Vs], 1)
                Ks, Vs = Ks.repeat_interleave(nh // nkv, 0), Vs.repeat_interleave(nh // nkv, 0)
                a = torch.softmax((q[:, None, :] @ Ks.transpose(1, 2))[:, 0, :] / hd ** 0.5, -1)
                y = (a[:, None, :] @ Vs)[:, 0, :].reshape(-1)
            elif t == "gla":
                nh, nkv, hd = n["heads"], n["kv_heads"], n["head_dim"]
                q = val[n["q"]].view(nh, hd) / math.sqrt(hd)
                kk, v = val[n["k"]].view(nkv, hd), val[n["v"]].view(nkv, hd)
                if n.get("gate") == "key":
                    alpha = 1.0 - kk
                else:
                    alpha = torch.exp(torch.nn.functional.logsigmoid(val[n["gk"]].view(nkv, hd)) / n["gate_norm"])
                S = state.get(n["name"], torch.zeros(nkv, hd, hd, dtype=torch.float64))
                S = alpha[:, :, None] * S + kk[:, :, None] * v[:, None, :]
                state[n["name"]] = S
                o = torch.stack([q[h] @ S[h // (nh // nkv)] for h in range(nh)])
                if "norm" in n:
                    o = o * (1.0 / torch.sqrt(o.pow(2).mean(-1, keepdim=True) + n["eps"])) * W[n["norm"]]
                y = o.reshape(-1)
            elif t == "add":
                y = val[n["inputs"][0]] + val[n["inputs"][1]]
            elif t == "mul":
                y = val[n["inputs"][0]] * val[n["inputs"][1]]
            elif t == "silu":
                x = val[n["input"]]
                y = x / (1.0 + torch.exp(-x))
            elif t == "relu":
                y = torch.clamp(val[n["input"]], min=0)
            elif t == "sigmoid":
                y = 1.0 / (1.0 + torch.exp(-val[n["input"]]))
            else:
                raise ValueError(t)
            val[n["name"]] = y
        logits.append(val[spec["output"]].to(torch.float32))
    return torch.stack(logits).numpy()


def main():
    W = {n: torch.from_numpy(a).to(torch.float64) for n, a in
         read_safetensors(os.path.join(HERE, "model.safetensors")).items()}
    ids = [int(i) for i in np.load(os.path.join(HERE, "reference", "tokens.npy"))]
    a = swap(base_spec(), set(range(4)), False)
    b = swap(base_spec(), {0}, True)
    c = moe_spec(base_spec())
    d = moe_spec(base_spec(), top_k=1, act="sigmoid", renormalize=False)
    h = hybrid_spec(base_spec())
    for name, s in (("gla", a), ("gla_norm", b), ("moe", c), ("moe_top1", d), ("hybrid", h)):
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump(s, f, indent=1)
    with torch.no_grad():
        np.save(os.path.join(HERE, "reference", "gla_ann.npy"), run(a, W, ids, False))
        np.save(os.path.join(HERE, "reference", "gla_spk.npy"), run(a, W, ids, True))
        np.save(os.path.join(HERE, "reference", "gla_norm_ann.npy"), run(b, W, ids, False))
        routes, spikes = [], [0]
        np.save(os.path.join(HERE, "reference", "moe_spk.npy"), run(c, W, ids, True, routes=routes, spikes=spikes))
        np.save(os.path.join(HERE, "reference", "moe_routes.npy"),
                np.array([r for _, r in routes], dtype=np.int32).reshape(len(ids), -1))
        np.save(os.path.join(HERE, "reference", "moe_spikes.npy"), np.array(spikes, dtype=np.int64))
        np.save(os.path.join(HERE, "reference", "moe_top1_ann.npy"), run(d, W, ids, False))
        np.save(os.path.join(HERE, "reference", "hybrid_spk.npy"), run(h, W, ids, True))


if __name__ == "__main__":
    main()
