#!/usr/bin/python3
"""Brian2 reference for nesim's classic networks (`nesim example b4|cuba`).

Builds the same network nesim builds (net/classic.c) in Brian2, runs it and
prints one JSON line:

  network, neurons, seconds, dt_s, seed, v_rest_mv, device, brian2_version,
  synapses, mean_rate_hz, rate_exc_hz, rate_inh_hz, isi_cv, isi_cv_neurons,
  spikes, sops (synaptic events = sum over neurons of spikes x outgoing
  synapses), wall_s, run_cpu_s, compile_s, codegen_s, binary_s, build_dir.

Timings
  cpp_standalone: wall_s is the wall-clock time (std::chrono::steady_clock,
      measured inside the generated main.cpp around network.run()) of the
      simulation loop alone: no code generation, no compilation, no synapse
      creation, no writing of results.  run_cpu_s is Brian2's own
      device._last_run_time (std::clock() CPU time of the same loop).
      compile_s is the `make -j2` time, codegen_s the Python-side code
      generation, binary_s the wall time of the whole ./main process
      (synapse creation + run + writing results).
  runtime: wall_s is the wall time of Network.run() (includes the first-run
      code generation/compilation of Cython code objects unless cached);
      compile_s is null.

Model (SI in nesim, Brian2 units here):
  N neurons, first 80 % excitatory (int(N*4/5)), E->all and I->all with
  p = 0.02 per ordered pair (autapses allowed), V_t = -50 mV, V_r = -60 mV,
  E_L = -49 mV (--v-rest), refractory 5 ms, v0 ~ U[V_r, V_t),
  threshold v > V_t, reset v = V_r, zero synaptic delay, dt = nesim tick.
  b4:   dv/dt = (E_L - v)/20 ms (unless refractory); a spike adds
        +0.25 mV / -2.25 mV to v, dropped while the target is refractory.
  cuba: dv/dt = (ge + gi - (v - E_L))/20 ms (unless refractory),
        dge/dt = -ge/5 ms, dgi/dt = -gi/10 ms; ge += 1.62 mV, gi += -9 mV.

Run with /usr/bin/python3 (Debian's python3-brian).
"""
import argparse
import json
import os
import sys
import time
import warnings


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--net', choices=['b4', 'cuba'], required=True)
    ap.add_argument('--neurons', type=int, default=4000)
    ap.add_argument('--seconds', type=float, default=1.0)
    ap.add_argument('--dt', type=float, default=1e-4, help='time step in seconds (= nesim tick)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--v-rest', type=float, default=-49.0, help='E_L in mV')
    ap.add_argument('--device', choices=['runtime', 'cpp_standalone'], default='cpp_standalone')
    ap.add_argument('--build-dir', default=None,
                    help='cpp_standalone project directory (default /tmp/nesim-brian2/<net>-<neurons>)')
    ap.add_argument('--delay', type=float, default=0.0,
                    help='synaptic delay in seconds (default 0, Brian2 default; for experiments)')
    ap.add_argument('--clean', action='store_true', help='make clean before compiling')
    return ap.parse_args(argv)


def isi_cv(i, t, n):
    """Mean over neurons with >= 2 ISIs of std(ISI, ddof=1) / mean(ISI)."""
    import numpy as np
    if len(i) == 0:
        return float('nan'), 0
    order = np.lexsort((t, i))
    i, t = i[order], t[order]
    isi = np.diff(t)
    same = i[1:] == i[:-1]
    owner = i[1:][same]
    isi = isi[same]
    cnt = np.bincount(owner, minlength=n).astype(float)
    s1 = np.bincount(owner, weights=isi, minlength=n)
    s2 = np.bincount(owner, weights=isi * isi, minlength=n)
    ok = cnt >= 2
    if not ok.any():
        return float('nan'), 0
    mean = s1[ok] / cnt[ok]
    var = (s2[ok] - cnt[ok] * mean * mean) / (cnt[ok] - 1)
    var = np.maximum(var, 0.0)
    return float(np.mean(np.sqrt(var) / mean)), int(ok.sum())


def main(argv=None):
    a = parse_args(argv)
    if a.neurons < 5 or a.seconds <= 0 or a.dt <= 0:
        sys.exit('classic.py: need --neurons >= 5, --seconds > 0, --dt > 0')
    warnings.filterwarnings('ignore')
    import numpy as np
    import brian2 as b2
    from brian2 import (NeuronGroup, Synapses, SpikeMonitor, Network, defaultclock, prefs,
                        set_device, device, seed, ms, mV, second)

    b2.BrianLogger.log_level_error()
    standalone = a.device == 'cpp_standalone'
    build_dir = None
    if standalone:
        build_dir = os.path.abspath(a.build_dir or f'/tmp/nesim-brian2/{a.net}-{a.neurons}')
        os.makedirs(build_dir, exist_ok=True)
        set_device('cpp_standalone', directory=build_dir, build_on_run=False)
        prefs.devices.cpp_standalone.extra_make_args_unix = ['-j2']  # at most 2 compile jobs
        prefs.devices.cpp_standalone.openmp_threads = 0              # single-threaded, like nesim
        device.headers.append('<chrono>')
    else:
        try:
            import Cython  # noqa: F401
            prefs.codegen.target = 'cython'
        except ImportError:
            prefs.codegen.target = 'numpy'

    defaultclock.dt = a.dt * second
    seed(a.seed)

    N = a.neurons
    Ne = N * 4 // 5
    Vt, Vr, El = -50 * mV, -60 * mV, a.v_rest * mV
    taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
    if a.net == 'b4':
        eqs = 'dv/dt = (El - v)/taum : volt (unless refractory)'
        we, wi = 0.25 * mV, -2.25 * mV
        pre_e = 'v_post += we*int(not_refractory_post)'
        pre_i = 'v_post += wi*int(not_refractory_post)'
    else:
        eqs = '''dv/dt = (ge + gi - (v - El))/taum : volt (unless refractory)
                 dge/dt = -ge/taue : volt
                 dgi/dt = -gi/taui : volt'''
        we, wi = 1.62 * mV, -9 * mV
        pre_e, pre_i = 'ge += we', 'gi += wi'
    ns = dict(Vt=Vt, Vr=Vr, El=El, taum=taum, taue=taue, taui=taui, we=we, wi=wi)
    P = NeuronGroup(N, eqs, threshold='v > Vt', reset='v = Vr', refractory=5 * ms,
                    method='exact', namespace=ns, name='P')
    P.v = 'Vr + rand() * (Vt - Vr)'
    if a.net == 'cuba':
        P.ge = 0 * mV
        P.gi = 0 * mV
    Pe, Pi = P[:Ne], P[Ne:]
    Ce = Synapses(Pe, P, on_pre=pre_e, namespace=ns, name='Ce')
    Ci = Synapses(Pi, P, on_pre=pre_i, namespace=ns, name='Ci')
    Ce.connect(p=0.02)
    Ci.connect(p=0.02)
    if a.delay > 0:
        Ce.delay = a.delay * second
        Ci.delay = a.delay * second
    M = SpikeMonitor(P, name='M')
    net = Network(P, Ce, Ci, M)

    out = dict(network=a.net, neurons=N, seconds=a.seconds, dt_s=a.dt, seed=a.seed,
               v_rest_mv=a.v_rest, device=a.device, brian2_version=b2.__version__)
    wall_file = 'results/nesim_run_wall.txt'
    if standalone:
        device.insert_code('main', 'const auto _nesim_t0 = std::chrono::steady_clock::now();')
        net.run(a.seconds * second)
        device.insert_code('main', 'std::ofstream("%s") << std::chrono::duration<double>('
                                   'std::chrono::steady_clock::now() - _nesim_t0).count() '
                                   '<< std::endl;' % wall_file)
        t0 = time.time()
        device.build(directory=build_dir, compile=True, run=True, clean=a.clean,
                     with_output=False)
        total = time.time() - t0
        timers = getattr(device, 'timers', {})
        compile_s = timers.get('compile', {}).get('make')
        binary_s = timers.get('run_binary')
        with open(os.path.join(build_dir, wall_file)) as f:
            wall = float(f.read())
        out.update(wall_s=wall, run_cpu_s=float(device._last_run_time), compile_s=compile_s,
                   codegen_s=total - (compile_s or 0) - (binary_s or 0) -
                   (timers.get('compile', {}).get('clean') or 0),
                   binary_s=binary_s, build_dir=build_dir)
    else:
        t0 = time.perf_counter()
        net.run(a.seconds * second)
        out.update(wall_s=time.perf_counter() - t0, run_cpu_s=None, compile_s=None,
                   codegen_s=None, binary_s=None, build_dir=None)

    i = np.asarray(M.i[:], dtype=np.int64)
    t = np.asarray(M.t[:] / second, dtype=np.float64)
    counts = np.bincount(i, minlength=N)
    out_e = np.bincount(np.asarray(Ce.i[:], dtype=np.int64), minlength=Ne)
    out_i = np.bincount(np.asarray(Ci.i[:], dtype=np.int64), minlength=N - Ne)
    sops = int(np.dot(counts[:Ne], out_e) + np.dot(counts[Ne:], out_i))
    cv, cv_n = isi_cv(i, t, N)
    spikes = int(counts.sum())
    out.update(synapses=int(len(out_e) and out_e.sum() + out_i.sum()),
               mean_rate_hz=spikes / (N * a.seconds),
               rate_exc_hz=float(counts[:Ne].sum()) / (Ne * a.seconds),
               rate_inh_hz=float(counts[Ne:].sum()) / ((N - Ne) * a.seconds),
               isi_cv=cv, isi_cv_neurons=cv_n, spikes=spikes, sops=sops)
    out['sops_per_s'] = sops / out['wall_s'] if out['wall_s'] else None
    # order: statistics first, then timings
    keys = ['network', 'neurons', 'synapses', 'seconds', 'dt_s', 'seed', 'v_rest_mv', 'device',
            'brian2_version', 'mean_rate_hz', 'rate_exc_hz', 'rate_inh_hz', 'isi_cv',
            'isi_cv_neurons', 'spikes', 'sops', 'wall_s', 'sops_per_s', 'run_cpu_s',
            'compile_s', 'codegen_s', 'binary_s', 'build_dir']
    print(json.dumps({k: out[k] for k in keys}), flush=True)


if __name__ == '__main__':
    main()
