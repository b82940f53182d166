#!/usr/bin/python3
"""train.py — trains the tiny language model of examples/tiny-lm and writes its
checkpoint folder (Hugging Face layout): config.json, model.safetensors (BF16),
vocab.json (one character per token), heldout.txt (text the model never saw)
and train.json (what made it: seed, steps, losses, torch version, seconds).

    /usr/bin/python3 examples/tiny-lm/train.py [OUT_DIR] [--steps N]

Data: the English fortunes of Debian's `fortunes` package
(/usr/share/games/fortunes), every fortune kept whole; one in twenty goes to
the held-out split. Needs python3-torch and python3-numpy (Debian); the
seed is pinned, so the same torch version and thread count reproduce the
committed checkpoint. Then run reference.py to rewrite the oracles."""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import TinyLM, write_safetensors  # noqa: E402

FORTUNES = "/usr/share/games/fortunes"
SKIP = {"art", "ascii-art", "translate-me"}  # drawings, not prose
SEED = 20261206

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "attention_bias": False,
    "hidden_act": "silu",
    "torch_dtype": "bfloat16",
}


def load_text():
    pieces = []
    for name in sorted(os.listdir(FORTUNES)):
        p = os.path.join(FORTUNES, name)
        if name in SKIP or "." in name or not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            for fort in f.read().split("\n%\n"):
                fort = "".join(ch for ch in fort if ch == "\n" or 32 <= ord(ch) < 127).strip()
                if fort:
                    pieces.append(fort + "\n\n")
    return pieces


def main():
    out = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else os.path.dirname(
        os.path.abspath(__file__))
    steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 450
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    pieces = load_text()
    train_txt = "".join(p for i, p in enumerate(pieces) if i % 20 != 7)
    held_txt = "".join(p for i, p in enumerate(pieces) if i % 20 == 7)
    chars = sorted(set(train_txt) | set(held_txt))
    vocab = {c: i for i, c in enumerate(chars)}
    cfg = dict(CONFIG, vocab_size=len(chars))
    data = torch.tensor([vocab[c] for c in train_txt], dtype=torch.long)

    model = TinyLM(cfg)
    for p in model.parameters():  # small init keeps the deep residual stream tame
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01)
    B, T = 16, 128
    gen = torch.Generator().manual_seed(SEED)
    t0, losses = time.time(), []
    for step in range(steps):
        lr = 3e-3 * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * (1 - step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        ix = torch.randint(0, len(data) - T - 1, (B,), generator=gen)
        x = torch.stack([data[i:i + T] for i in ix])
        y = torch.stack([data[i + 1:i + T + 1] for i in ix])
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, cfg["vocab_size"]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(round(loss.item(), 4))
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3f}  {time.time() - t0:6.1f} s", flush=True)

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), model.hf_state(), "BF16")
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump(vocab, f, indent=0, ensure_ascii=True)
        f.write("\n")
    with open(os.path.join(out, "heldout.txt"), "w") as f:
        f.write(held_txt[:8192])
    with open(os.path.join(out, "train.json"), "w") as f:
        json.dump({"seed": SEED, "steps": steps, "batch": B, "context": T, "torch": torch.__version__,
                   "threads": torch.get_num_threads(), "seconds": round(time.time() - t0, 1),
                   "train_chars": len(train_txt), "heldout_chars": len(held_txt),
                   "loss_first": losses[0], "loss_last50_mean": round(float(np.mean(losses[-50:])), 4)},
                  f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
