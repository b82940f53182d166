"""model.py — the tiny language model's architecture and its checkpoint format,
shared by train.py (which trains it) and reference.py (which writes the
oracles nesim's tests compare against). Llama-shaped: token embedding,
n_layers x (RMSNorm, grouped-query causal attention with RoPE, residual add,
RMSNorm, SwiGLU MLP, residual add), final RMSNorm, lm_head tied to the
embedding. Parameter names follow Hugging Face's LlamaForCausalLM, so the
folder is an ordinary checkpoint (config.json + model.safetensors).

Runs with Debian's python3-torch and python3-numpy only; safetensors is
written and read here by hand (Debian 12 has no package for it; the format
is an 8-byte little-endian header length, a JSON header, then the data)."""
import json
import struct

import numpy as np
import torch
import torch.nn as nn


def rope_tables(head_dim, positions, theta, dtype):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = positions.to(torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, nh, nkv, hd, I = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], \
            c["hidden_size"] // c["num_attention_heads"], c["intermediate_size"]
        self.nh, self.nkv, self.hd = nh, nkv, hd
        self.input_layernorm = nn.Parameter(torch.ones(H))
        self.post_attention_layernorm = nn.Parameter(torch.ones(H))
        self.q_proj = nn.Linear(H, nh * hd, bias=False)
        self.k_proj = nn.Linear(H, nkv * hd, bias=False)
        self.v_proj = nn.Linear(H, nkv * hd, bias=False)
        self.o_proj = nn.Linear(nh * hd, H, bias=False)
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)


class TinyLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Block(c) for _ in range(c["num_hidden_layers"])])
        self.norm = nn.Parameter(torch.ones(c["hidden_size"]))

    def rms(self, x, w):
        eps = self.c["rms_norm_eps"]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def forward(self, ids):
        """ids [B, T] -> logits [B, T, vocab], float32 training path."""
        B, T = ids.shape
        h = self.embed(ids)
        cos, sin = rope_tables(self.layers[0].hd, torch.arange(T), self.c["rope_theta"], h.dtype)
        mask = torch.full((T, T), float("-inf")).triu(1)
        for L in self.layers:
            x = self.rms(h, L.input_layernorm)
            q = L.q_proj(x).view(B, T, L.nh, L.hd).transpose(1, 2)
            k = L.k_proj(x).view(B, T, L.nkv, L.hd).transpose(1, 2)
            v = L.v_proj(x).view(B, T, L.nkv, L.hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            rep = L.nh // L.nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            a = torch.softmax(q @ k.transpose(-1, -2) / L.hd ** 0.5 + mask, dim=-1) @ v
            h = h + L.o_proj(a.transpose(1, 2).reshape(B, T, L.nh * L.hd))
            x = self.rms(h, L.post_attention_layernorm)
            h = h + L.down_proj(torch.nn.functional.silu(L.gate_proj(x)) * L.up_proj(x))
        return self.rms(h, self.norm) @ self.embed.weight.T

    def hf_state(self):
        """Parameters under Hugging Face LlamaForCausalLM names."""
        s = {"model.embed_tokens.weight": self.embed.weight, "model.norm.weight": self.norm}
        for i, L in enumerate(self.layers):
            p = f"model.layers.{i}."
            s[p + "input_layernorm.weight"] = L.input_layernorm
            s[p + "post_attention_layernorm.weight"] = L.post_attention_layernorm
            for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
                s[p + "self_attn." + n + ".weight"] = getattr(L, n).weight
            for n in ("gate_proj", "up_proj", "down_proj"):
                s[p + "mlp." + n + ".weight"] = getattr(L, n).weight
        return s


_DT = {"BF16": (2, None), "F32": (4, np.float32), "F16": (2, np.float16), "F64": (8, np.float64)}


def write_safetensors(path, tensors, dtype="BF16"):
    """tensors: name -> torch tensor; stored as dtype (BF16 by rounding to nearest even)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        if dtype == "BF16":
            u = t.numpy().view(np.uint32).astype(np.uint64)
            u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # round half to even
            raw = u.tobytes()
        else:
            raw = t.numpy().astype(_DT[dtype][1]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """name -> float64 numpy array (exact for BF16/F16/F32)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    for name, m in header.items():
        if name == "__metadata__":
            continue
        a, b = m["data_offsets"]
        raw = data[base + a:base + b]
        if m["dtype"] == "BF16":
            v = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            v = np.frombuffer(raw, _DT[m["dtype"]][1])
        out[name] = v.astype(np.float64).reshape(m["shape"])
    return out
