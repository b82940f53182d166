#!/usr/bin/python3
"""Reads back nesim's SONATA and NIR-events exports with h5py and checks them
against the spikes the run wrote as CSV (tests/test_nir.c).

usage: check_exports.py SPIKES.csv SONATA.h5 EVENTS.h5 STEPS DT
exit 0 and "ok N" when every spike is exactly where it belongs."""
import csv
import sys

import h5py
import numpy as np

spikes_csv, sonata, events, steps, dt = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
want = {}
for r in csv.DictReader(open(spikes_csv)):
    want.setdefault(r["node"], []).append((int(r["sample"]), int(r["step"]), int(r["index"])))
total = 0
s = h5py.File(sonata, "r")
e = h5py.File(events, "r")
assert e["type"][()] == b"NIRGraphData"
for node, sp in want.items():
    # SONATA: by time, then node id; time in ms of the run's continuous ticks
    g = s["spikes"][node]
    assert g.attrs["sorting"] in ("by_time", b"by_time"), g.attrs["sorting"]
    ticks = sorted((smp * steps + st, i) for smp, st, i in sp)
    ts = g["timestamps"][()]
    ids = g["node_ids"][()]
    assert g["timestamps"].attrs["units"] in ("ms", b"ms")
    assert len(ts) == len(ticks), (node, len(ts), len(ticks))
    assert np.array_equal(ids, np.array([i for _, i in ticks], dtype=np.uint64)), node
    assert np.array_equal(ts, np.array([t * dt * 1e3 for t, _ in ticks])), node
    # NIR EventData: per sample, time (step + 1) dt, padding -1 / inf
    ev = e["nodes"][node]["observables"]["spikes"]
    assert ev["type"][()] == b"EventData"
    idx, tm = ev["idx"][()], ev["time"][()]
    assert ev["t_max"][()] == steps * dt
    for smp in range(idx.shape[0]):
        mine = sorted((st, i) for q, st, i in sp if q == smp)
        n = len(mine)
        assert list(idx[smp, :n]) == [i for _, i in mine], (node, smp)
        assert np.array_equal(tm[smp, :n], np.array([(st + 1) * dt for st, _ in mine])), (node, smp)
        assert (idx[smp, n:] == -1).all() and np.isinf(tm[smp, n:]).all()
    total += len(sp)
print("ok", total)
