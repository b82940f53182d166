#!/bin/sh
# Installs the Debian packages nesim builds and tests with, but only those that
# pkg-config (or a header probe) cannot already find. Run by the Makefile; safe
# to run by hand. Nothing is downloaded when everything is present.
set -e
missing=""
need_pc() { pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"; }
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
need_pc gsl libgsl-dev
need_pc sqlite3 libsqlite3-dev
need_pc libevent libevent-dev
need_pc jansson libjansson-dev
need_pc cmocka libcmocka-dev
need_pc hdf5 libhdf5-dev                         # NIR graphs (net/nir.c)
need_pc yaml-0.1 libyaml-dev                      # SANA-FE architecture and network files (net/sanafe.c)
command -v mpicc >/dev/null 2>&1 || missing="$missing libopenmpi-dev"   # scale-out (base/comm.c)
command -v mpirun >/dev/null 2>&1 || missing="$missing openmpi-bin"
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
[ -x /usr/bin/time ] || missing="$missing time"       # peak memory in tests/test_hostile.c
[ -x /usr/bin/python3 ] || missing="$missing python3" # tests/test_lm.c edits checkpoint configs
# tests/test_nir.c: independent references (numpy) and export read-back (h5py)
/usr/bin/python3 -c 'import numpy, h5py' >/dev/null 2>&1 || missing="$missing python3-numpy python3-h5py"
if [ -n "$missing" ]; then
  echo "nesim: installing Debian packages:$missing" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
fi
