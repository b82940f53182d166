#!/usr/bin/python3
"""Generates the malformed NIR graphs under tests/malformed/nir/ (h5py).

Every file written here must be refused, by the reader (nesim_nir_load) or
by the network builder (nesim_nir_net_new), with NESIM_EINVAL and a message
containing the fragment paired with it (nir_expected.txt); tests/test_nir.c
checks each one and fuzz/fuzz_nir.c replays them. Run from the repository
root:  /usr/bin/python3 tests/malformed/make_nir.py
"""
import os

import h5py
import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nir")
STR = h5py.string_dtype()


def graph(path, nodes, edges, version="0.2.0", top_type="NIRGraph"):
    with h5py.File(path, "w") as f:
        if version is not None:
            f["version"] = version
        n = f.create_group("node")
        n["type"] = top_type
        write_nodes(n, nodes, edges)


def write_nodes(g, nodes, edges):
    ng = g.create_group("nodes")
    for name, p in nodes.items():
        sub = ng.create_group(name)
        for k, v in p.items():
            if k == "nodes":
                write_nodes(sub, v, p["edges"])
            elif k == "edges":
                continue
            else:
                sub[k] = v
    if edges is not None:
        g.create_dataset("edges", data=np.array(edges, dtype=object).reshape(-1, 2), dtype=STR)


def inp(n):
    return {"type": "Input", "shape": np.array([n])}


def out(n):
    return {"type": "Output", "shape": np.array([n])}


def lif(n, **kw):
    p = {"type": "LIF", "tau": np.full(n, 1e-3), "r": np.ones(n), "v_leak": np.zeros(n), "v_threshold": np.ones(n)}
    p.update(kw)
    return p


def aff(o, i, **kw):
    p = {"type": "Linear", "weight": np.ones((o, i), dtype=np.float32)}
    p.update(kw)
    return p


OK_NODES = {"input": inp(4), "fc": aff(3, 4), "lif": lif(3), "output": out(3)}
OK_EDGES = [("input", "fc"), ("fc", "lif"), ("lif", "output")]

CASES = {
    "unknown_type.nir": ({"input": inp(4), "fc": {"type": "Spiky", "weight": np.ones((3, 4))}, "output": out(3)},
                         [("input", "fc"), ("fc", "output")], "unknown node type 'Spiky'"),
    "missing_node.nir": (OK_NODES, OK_EDGES + [("lif", "ghost")], "names node 'ghost'"),
    "cycle_without_neuron.nir": ({"input": inp(3), "a": aff(3, 3), "b": aff(3, 3), "output": out(3)},
                                 [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")],
                                 "has no neuron or Delay"),
    "shape_mismatch.nir": ({"input": inp(4), "fc": aff(3, 5), "lif": lif(3), "output": out(3)}, OK_EDGES,
                           "expects 5 values but its inputs bring 4"),
    "neuron_size_mismatch.nir": ({"input": inp(4), "fc": aff(3, 4), "lif": lif(5), "output": out(5)}, OK_EDGES,
                                 "expects 5 values but its inputs bring 3"),
    "missing_type.nir": ({"input": inp(4), "fc": {"weight": np.ones((3, 4))}, "lif": lif(3), "output": out(3)},
                         OK_EDGES, "type: missing"),
    "edges_not_pairs.nir": (OK_NODES, None, "[E, 2]"),
    "nonfinite_weight.nir": ({"input": inp(4), "fc": aff(3, 4, weight=np.full((3, 4), np.nan)), "lif": lif(3),
                              "output": out(3)}, OK_EDGES, "is not finite"),
    "string_weight.nir": ({"input": inp(4), "fc": {"type": "Linear", "weight": "ones"}, "lif": lif(3),
                           "output": out(3)}, OK_EDGES, "is a string"),
    "missing_tau.nir": ({"input": inp(4), "fc": aff(3, 4), "lif": {"type": "LIF", "r": np.ones(3),
                         "v_leak": np.zeros(3), "v_threshold": np.ones(3)}, "output": out(3)}, OK_EDGES,
                        "parameter 'tau' missing"),
    "negative_tau.nir": ({"input": inp(4), "fc": aff(3, 4), "lif": lif(3, tau=np.full(3, -1.0)), "output": out(3)},
                         OK_EDGES, "tau must be > 0"),
    "conv_kernel_too_large.nir": ({"input": {"type": "Input", "shape": np.array([1, 3, 3])},
                                   "conv": {"type": "Conv2d", "weight": np.ones((2, 1, 5, 5)), "stride": np.array([1, 1]),
                                            "padding": np.array([0, 0]), "dilation": np.array([1, 1]),
                                            "groups": np.int64(1), "input_shape": np.array([3, 3]),
                                            "bias": np.zeros(2)},
                                   "output": out(2)}, [("input", "conv"), ("conv", "output")],
                                  "kernel is larger than the padded input"),
    "nested_without_output.nir": ({"input": inp(4), "sub": {"type": "NIRGraph", "nodes": {"input": inp(4), "fc": aff(3, 4)},
                                                            "edges": [("input", "fc")]}, "output": out(3)},
                                  [("input", "sub"), ("sub", "output")], "1 Input and 0 Output"),
    "two_inputs.nir": ({"input": inp(4), "input2": inp(4), "fc": aff(3, 4), "lif": lif(3), "output": out(3)},
                       OK_EDGES, "a second Input node"),
}


def main():
    os.makedirs(HERE, exist_ok=True)
    lines = []
    for name, (nodes, edges, frag) in CASES.items():
        path = os.path.join(HERE, name)
        if name == "edges_not_pairs.nir":
            graph(path, nodes, None)
            with h5py.File(path, "a") as f:
                f["node"].create_dataset("edges", data=np.array(["input", "fc", "lif"], dtype=object), dtype=STR)
        else:
            graph(path, nodes, edges)
        lines.append("%s\t%s" % (name, frag))
    graph(os.path.join(HERE, "bad_version.nir"), OK_NODES, OK_EDGES, version="9.1.0")
    lines.append("bad_version.nir\tNIR 9.1.0")
    graph(os.path.join(HERE, "not_a_graph.nir"), OK_NODES, OK_EDGES, top_type="Affine")
    lines.append("not_a_graph.nir\tnot NIRGraph")
    with open(os.path.join(HERE, "not_hdf5.nir"), "w") as f:
        f.write('{"this": "is JSON, not HDF5"}\n')
    lines.append("not_hdf5.nir\tnot an HDF5 file")
    open(os.path.join(HERE, "empty.nir"), "wb").close()
    lines.append("empty.nir\tnot an HDF5 file")
    # a real graph cut short: the signature is there, the rest is not
    good = os.path.join(HERE, "good.tmp")
    graph(good, OK_NODES, OK_EDGES)
    data = open(good, "rb").read()
    os.remove(good)
    open(os.path.join(HERE, "truncated.nir"), "wb").write(data[: len(data) // 3])
    lines.append("truncated.nir\tHDF5")
    open(os.path.join(HERE, "truncated_header.nir"), "wb").write(data[:96])
    lines.append("truncated_header.nir\tHDF5")
    with open(os.path.join(HERE, "..", "nir_expected.txt"), "w") as f:
        f.write("\n".join(sorted(lines)) + "\n")


main()
