#!/bin/sh
# bench/nir.sh — NIR graphs of the NIR paper run three ways on the same frames:
# nesim activity-driven (the default), nesim --dense (every neuron every
# step: the same spikes), and the independent numpy stepper of the tests
# (tests/nir_ref.py, dense, reads the HDF5 itself) as the peer. Wall time
# min and median of N runs each (process start to end), neuron updates.
set -e
cd "$(dirname "$0")/.."
N=${BENCH_QUICK:+1}
N=${N:-5}
NESIM=build/rel/nesim
if ! /usr/bin/python3 -c 'import numpy, h5py' 2>/dev/null; then
  echo "skipped: python3-numpy / python3-h5py are not installed (apt-get install python3-numpy python3-h5py)"; exit 0
fi
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
/usr/bin/python3 - "$D" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
r = np.random.default_rng(7)
f = np.zeros((20, 30, 2, 34, 34), np.uint8)
yy, xx = np.mgrid[0:34, 0:34]
for s in range(20):
    for t in range(30):
        cy, cx = 17 + 8 * np.sin(0.2 * t + s), 17 + 8 * np.cos(0.2 * t + 2 * s)
        f[s, t] = r.random((2, 34, 34)) < 0.35 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
np.save(f"{d}/cnn.npy", f)
rate = np.full(12, 0.05)
rate[[1, 4, 7, 10]] = 0.3
np.save(f"{d}/braille.npy", (r.random((32, 256, 12)) < rate).astype(np.uint8))
PY
timeit() { # label, command...
  label=$1; shift
  for i in $(seq $N); do
    s=$(date +%s.%N); "$@" > "$D/out" 2>/dev/null; e=$(date +%s.%N); awk -v a="$s" -v b="$e" "BEGIN {print b - a}"
  done | sort -n > "$D/t"
  upd=$(sed -n 's/.*"updates": \([0-9]*\),.*/\1/p' "$D/out" | tail -n 1)
  awk -v k="$label" -v u="${upd:--}" '{a[NR]=$1} END {printf "  %-44s min %7.3f s  median %7.3f s  updates %s\n", k, a[1], a[int((NR+1)/2)], u}' "$D/t"
}
run() { # name model frames dt reset
  echo "$1 ($(/usr/bin/python3 -c 'import numpy,sys; print("x".join(map(str, numpy.load(sys.argv[1]).shape)))' "$3") frames)"
  timeit "nesim (activity-driven)" $NESIM run "$2" --input "$3" --dt "$4" --reset "$5" --json --quiet --chip none
  timeit "nesim --dense (every neuron, every step)" $NESIM run "$2" --input "$3" --dt "$4" --reset "$5" --json --quiet --chip none --dense
  timeit "numpy stepper (tests/nir_ref.py, peer)" /usr/bin/python3 tests/nir_ref.py "$2" "$3" "$4" euler "$5" "$D/ref.json"
}
run "cnn_sinabs.nir: N-MNIST CNN (Sinabs, IF)" examples/nir/cnn_sinabs.nir "$D/cnn.npy" 1 value
run "braille_noDelay_noBias_subtract.nir: CubaLIF RNN (snnTorch)" examples/nir/braille_noDelay_noBias_subtract.nir "$D/braille.npy" 1e-4 subtract
