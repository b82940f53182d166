#!/bin/sh
# bench/lm.sh — the tiny language model (examples/tiny-lm): tokens per second
# generating 250 tokens after a 3-token prompt, every projection spiked
# (--spiked all) and the released set, beside nesim's own ANN path
# (--spiked none) and PyTorch's float32 forward of the same 253 tokens
# (python3-torch; skipped with a line when absent). Min and median of N runs.
set -e
cd "$(dirname "$0")/.."
N=${BENCH_QUICK:+2}
N=${N:-7}
NESIM=build/rel/nesim
stat() { sort -n | awk '{a[NR]=$1} END {printf "min %.3f s  median %.3f s", a[1], a[int((NR+1)/2)]}'; }
tok=253
for set in all released none; do
  t=$(for i in $(seq $N); do
        s=$(date +%s.%N); $NESIM run examples/tiny-lm --prompt The --generate 250 --spiked $set --quiet --json >/dev/null
        e=$(date +%s.%N); awk -v a="$s" -v b="$e" "BEGIN {print b - a}"; done | stat)
  min=$(echo "$t" | awk '{print $2}')
  printf "nesim  --spiked %-9s %s  %6.0f tokens/s (best)\n" "$set" "$t" "$(awk -v t=$tok -v m=$min "BEGIN {print t / m}")"
done
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  /usr/bin/python3 - "$N" <<'PY'
import json, os, sys, time
import torch
sys.path.insert(0, "examples/tiny-lm")
from model import TinyLM, read_safetensors
torch.set_num_threads(1)
cfg = json.load(open("examples/tiny-lm/config.json"))
W = read_safetensors("examples/tiny-lm/model.safetensors")
m = TinyLM(cfg)
with torch.no_grad():
    for n, p in m.hf_state().items():
        p.copy_(torch.from_numpy(W[n]).float())
    ids = torch.randint(0, cfg["vocab_size"], (1, 253), generator=torch.Generator().manual_seed(1))
    ts = []
    for _ in range(int(sys.argv[1])):
        s = time.perf_counter(); m(ids); ts.append(time.perf_counter() - s)
ts.sort()
print("torch  float32 forward, 253 tokens at once (1 thread): min %.4f s  median %.4f s  %6.0f tokens/s (best)"
      % (ts[0], ts[len(ts) // 2], 253 / ts[0]))
PY
else
  echo "torch  skipped: python3-torch is not installed (apt-get install python3-torch)"
fi
