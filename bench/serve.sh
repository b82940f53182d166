#!/bin/sh
# `nesim serve` on loopback: requests per second of the spikes endpoint (and
# of activity) under wrk, and replay streams: events and spikes per second at
# full speed (one and four clients) and paced. wrk is Debian's: installed with
# apt-get when missing and running as root; otherwise its rows print n/a.
# Data: the digits run (96 k spikes, 4320 ticks) and CUBA (4000 LIF neurons,
# 10 s = 100 k ticks). BENCH_QUICK=1 shortens.
set -e
cd "$(dirname "$0")/.."
NESIM=${NESIM:-build/rel/nesim}
q=0; [ -n "$BENCH_QUICK" ] && [ "$BENCH_QUICK" != 0 ] && q=1
dur=5; secs=10
[ $q = 1 ] && dur=2 && secs=2
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

$NESIM run examples/digits/model.json --input examples/digits/test_inputs.npy --trace "$tmp/t.db" --quiet >/dev/null
$NESIM run examples/cuba/model.json --seconds $secs --trace "$tmp/t.db" --quiet >/dev/null
$NESIM serve "$tmp/t.db" --port 0 >"$tmp/url" &
pid=$!
i=0
while ! grep -q 'http://' "$tmp/url" 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "bench/serve.sh: the server did not start" >&2; exit 1; }
  sleep 0.05
done
port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$tmp/url")
base=http://127.0.0.1:$port

if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1; } || true
fi

echo "nesim serve on 127.0.0.1 (one event loop, one thread; $(nproc) cores shared with the load generator)"
printf '%-44s %10s %10s %9s %9s\n' "request (wrk -t2 -c16, ${dur} s)" "req/s" "MB/s" "p50 ms" "p99 ms"
load() { # label, path
  if ! command -v wrk >/dev/null 2>&1; then
    printf '%-44s %10s %10s %9s %9s\n' "$1" n/a n/a n/a n/a
    return
  fi
  wrk -t2 -c16 -d${dur}s --latency "$base$2" >"$tmp/wrk" 2>&1 || true
  /usr/bin/env python3 - "$1" "$tmp/wrk" <<'PY'
import re, sys
label, text = sys.argv[1], open(sys.argv[2]).read()
def num(pat):
    m = re.search(pat, text)
    return m.group(1) if m else None
def ms(v):
    if v is None: return "n/a"
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    f = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
    return f"{f:.2f}"
def mb(v):
    if v is None: return "n/a"
    m = re.match(r"([\d.]+)([KMG]?B)", v)
    return f"{float(m.group(1)) * {'B': 1e-6, 'KB': 1.024e-3, 'MB': 1.048576, 'GB': 1073.741824}[m.group(2)]:.1f}"
rps = num(r"Requests/sec:\s+([\d.]+)")
bad = num(r"Non-2xx or 3xx responses:\s+(\d+)")
errs = num(r"Socket errors:([^\n]*)")
tput = mb(num(r"Transfer/sec:\s+(\S+)"))
p50, p99 = ms(num(r"\s50%\s+(\S+)")), ms(num(r"\s99%\s+(\S+)"))
print(f"{label:<44} {float(rps) if rps else 0:>10.0f} {tput:>10} {p50:>9} {p99:>9}"
      + (f"   ({bad} non-2xx!)" if bad else "") + (f"   (socket errors:{errs})" if errs else ""))
PY
}
load "spikes fc2, pages of 1000" "/api/runs/1/spikes?layer=fc2&limit=1000"
load "spikes fc2, pages of 10000 (default)" "/api/runs/1/spikes?layer=fc2"
load "spikes exc (CUBA), 100-tick window" "/api/runs/2/spikes?layer=0&from=10000&to=10099"
load "activity, 500 bins x 3 layers" "/api/runs/1/activity"
load "runs" "/api/runs"

echo
/usr/bin/env python3 - "$port" "$q" <<'PY'
import socket, sys, threading, time
port, quick = int(sys.argv[1]), sys.argv[2] == "1"

def replay(path, out):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    t0, parts = time.monotonic(), []
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        parts.append(d)
    secs = time.monotonic() - t0
    s.close()
    body = b"".join(parts)
    events = spikes = 0
    for ev in body.split(b"\n\n"):
        if ev.startswith(b"event: tick"):
            events += 1
            if b'"spikes":[[' in ev:
                spikes += ev.count(b"],[") + 1
    out.append((events, spikes, secs, body.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"] and b"event: end" in body))

def row(label, path, clients=1, expect_s=None):
    outs = []
    ts = [threading.Thread(target=lambda: replay(path, outs)) for _ in range(clients)]
    t0 = time.monotonic()
    for t in ts: t.start()
    for t in ts: t.join()
    wall = time.monotonic() - t0
    ev = sum(o[0] for o in outs); sp = sum(o[1] for o in outs)
    ok = all(o[3] for o in outs) and len(outs) == clients
    pace = f"{wall / expect_s:6.2f}x" if expect_s else "     -"
    print(f"{label:<44} {clients:>3} {ev:>8} {sp:>11,} {wall:>8.3f} {ev / wall:>9.0f} {sp / wall / 1e6:>8.2f} {pace}"
          + ("" if ok else "   (incomplete!)"))

print(f"{'replay stream (server-sent events)':<44} {'cl':>3} {'events':>8} {'spikes':>11} {'wall_s':>8} "
      f"{'events/s':>9} {'Mspk/s':>8} {'pacing':>7}")
row("digits, all 4320 ticks, full speed", "/api/runs/1/replay?speed=1e9")
row("CUBA, all ticks, full speed", "/api/runs/2/replay?speed=1e9")
row("CUBA, all ticks, full speed", "/api/runs/2/replay?speed=1e9", clients=4)
n = 20000 if quick else 50000
row(f"CUBA, {n} ticks paced at 20000 ticks/s", f"/api/runs/2/replay?speed=20000&from=0&to={n - 1}",
    expect_s=(n - 1) / 20000)
row("digits, 400 ticks paced at 200 ticks/s", "/api/runs/1/replay?speed=200&from=0&to=399", expect_s=399 / 200)
PY
