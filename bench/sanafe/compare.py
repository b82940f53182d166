"""Readers shared by bench/sanafe.sh's two comparisons (the random network
and SANA-FE's DVS example): SANA-FE's run summary and the wall-time files
written by the script's timeit()."""


def summary(path):
    """SANA-FE's printed run summary as {key: float}; the energy section's
    indented keys come back as "energy.<key>"."""
    out, sec = {}, None
    for line in open(path):
        line = line.rstrip()
        if line.startswith("energy:"):
            sec = "energy"
            continue
        if line.startswith("wall_time:"):
            sec = None
        if ":" in line:
            k, v = [x.strip() for x in line.split(":", 1)]
            try:
                out[(sec + "." if sec and line.startswith(" ") else "") + k] = float(v)
            except ValueError:
                pass
    return out


def fig(label):
    """(min s, median s, peak MiB, runs) from t_<label>: one "seconds KiB" line per run."""
    rows = [l.split() for l in open("t_" + label)]
    w = sorted(float(x[0]) for x in rows)
    return w[0], w[(len(w) - 1) // 2], max(int(x[1]) for x in rows) / 1024, len(w)


def print_wall():
    """One line per timing model: nesim's and SANA-FE's wall time and peak
    memory; and nesim on two threads where it was timed (t_ns2_<model>)."""
    import os
    for model in ("simple", "detailed"):
        a, b = fig("ns_" + model), fig("sf_" + model)
        print(f"  wall, {model:8s}: nesim min {a[0]:.3f} s median {a[1]:.3f} s ({a[3]} runs, peak {a[2]:.0f} MiB);"
              f" SANA-FE min {b[0]:.2f} s median {b[1]:.2f} s ({b[3]} runs, peak {b[2]:.0f} MiB);"
              f" {b[0] / a[0]:.0f}x by min, {b[1] / a[1]:.0f}x by median")
        if os.path.exists("t_ns2_" + model):
            c = fig("ns2_" + model)
            print(f"  {'':16s}nesim --threads 2: min {c[0]:.3f} s median {c[1]:.3f} s ({c[3]} runs, peak {c[2]:.0f} MiB);"
                  f" {b[0] / c[0]:.0f}x by min, {b[1] / c[1]:.0f}x by median")
