#!/bin/sh
# bench/sanafe/build.sh SANAFE_SRC RAPIDYAML_SRC BOOKSIM_SRC [BUILD_DIR]
# Builds SANA-FE's standalone `sim` (no Python module) from source checkouts,
# without network access: SANA-FE's CMake fetches RapidYAML (v0.13.0, with
# c4core and its cmake, debugbreak and fast_float submodules in place) and
# booksim2-sanafe (the commit its CMakeLists.txt names); point it at local
# copies instead. For bench/sanafe.sh only: nesim never links or runs it.
set -e
SRC=$1 RYML=$2 BOOKSIM=$3 OUT=${4:-$1-build}
[ -n "$BOOKSIM" ] || { echo "usage: $0 SANAFE_SRC RAPIDYAML_SRC BOOKSIM_SRC [BUILD_DIR]" >&2; exit 2; }
cmake -S "$SRC" -B "$OUT" -DPYTHON_BUILD_ENABLED=OFF -DCMAKE_BUILD_TYPE=Release \
  -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DFETCHCONTENT_SOURCE_DIR_RYML="$RYML" \
  -DFETCHCONTENT_SOURCE_DIR_BOOKSIM="$BOOKSIM"
cmake --build "$OUT" -j"$(nproc)"
echo "built $OUT/sim"
