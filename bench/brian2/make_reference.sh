#!/bin/sh
# make_reference.sh — regenerate bench/brian2/reference.json: Brian2
# (cpp_standalone) statistics of nesim's classic networks b4 and cuba,
# N = 4000, 10 s virtual, dt = 0.1 ms, three seeds each.
#
#   sh bench/brian2/make_reference.sh            # writes bench/brian2/reference.json
#   SECONDS_VIRT=5 SEEDS="1 2" sh bench/brian2/make_reference.sh
#
# Runs one Brian2 job at a time; build directories live under /tmp.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
secs=${SECONDS_VIRT:-10}
seeds=${SEEDS:-"1 2 3"}
neurons=${NEURONS:-4000}
dt=${DT:-1e-4}
out=${OUT:-$here/reference.json}
tmp=$(mktemp -d /tmp/nesim-brian2-ref.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

: >"$tmp/runs.txt"
for net in b4 cuba; do
    for s in $seeds; do
        cmd="$py bench/brian2/classic.py --net $net --neurons $neurons --seconds $secs --dt $dt --seed $s --device cpp_standalone --build-dir /tmp/nesim-brian2/ref-$net-$neurons"
        echo "make_reference: $cmd" >&2
        line=$(cd "$here/../.." && $cmd 2>"$tmp/err") || { cat "$tmp/err" >&2; exit 1; }
        printf '%s\t%s\n' "$cmd" "$line" >>"$tmp/runs.txt"
    done
done

"$py" - "$tmp/runs.txt" "$out" <<'EOF'
import datetime, json, platform, statistics, sys
runs = {}
for row in open(sys.argv[1]):
    cmd, line = row.rstrip('\n').split('\t', 1)
    r = json.loads(line)
    runs.setdefault(r['network'], []).append((cmd, r))
keys = ['mean_rate_hz', 'rate_exc_hz', 'rate_inh_hz', 'isi_cv']
doc = {
    'description': 'Brian2 reference statistics for nesim example b4/cuba '
                   '(bench/brian2/classic.py, cpp_standalone, zero synaptic delay, dt = nesim tick)',
    'brian2_version': None,
    'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    'host': platform.node(), 'python': platform.python_version(),
    'regenerate': 'sh bench/brian2/make_reference.sh',
    'networks': {},
}
for net, rs in runs.items():
    doc['brian2_version'] = rs[0][1]['brian2_version']
    r0 = rs[0][1]
    ent = {'neurons': r0['neurons'], 'seconds': r0['seconds'], 'dt_s': r0['dt_s'],
           'v_rest_mv': r0['v_rest_mv'], 'runs': [], 'mean': {}, 'std': {}}
    for cmd, r in rs:
        ent['runs'].append({'command': cmd, 'seed': r['seed'], 'synapses': r['synapses'],
                            **{k: r[k] for k in keys}, 'spikes': r['spikes'], 'sops': r['sops'],
                            'isi_cv_neurons': r['isi_cv_neurons'], 'wall_s': r['wall_s']})
    for k in keys:
        xs = [r[k] for _, r in rs]
        ent['mean'][k] = statistics.mean(xs)
        ent['std'][k] = statistics.stdev(xs) if len(xs) > 1 else 0.0
    doc['networks'][net] = ent
with open(sys.argv[2], 'w') as f:
    json.dump(doc, f, indent=2)
    f.write('\n')
print('make_reference: wrote', sys.argv[2], file=sys.stderr)
EOF
