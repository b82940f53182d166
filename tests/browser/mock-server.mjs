// A stand-in for `nesim serve`: serves traces/page/index.html at / and canned data
// shaped exactly like the server's JSON API and replay stream, so the page and the
// browser test can be worked on without the C server.
//
//   node tests/browser/mock-server.mjs [--port 0] [--page traces/page/index.html]
//
// Prints "nesim serve: http://127.0.0.1:PORT/ (Ctrl-C stops)" like the real server.
// Extras of the real server are mirrored too: "bins" in activity, "run_level" in energy,
// "from" and a 4th element (the tick) per spike in replay "tick" events.
// The runs (deterministic, generated at start):
//   1  layers, complete, record spikes: a digits-like MLP (fc1 64, fc2 128, fc3 64 inputs),
//      360 samples x 12 ticks, bitwise-bidirectional coding (signs -1 and +1)
//   2  layers, complete: a replay of run 1 from fc2 on another chip (parent_run 1)
//   3  network, complete: two populations, 2000 ticks, ~300k spikes (exercises the 200k cap)
//   4  network, running, record activity: no spikes (the page must not ask for them)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 && i + 1 < args.length ? args[i + 1] : def; };
const port = Number(opt('--port', '0'));
const pageFile = path.resolve(opt('--page', path.join(here, '..', '..', 'traces', 'page', 'index.html')));

// ------------------------------------------------------------------ data
function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => { a = (a + 0x6D2B79F5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

// spikes of a layer: arrays sorted by (tick, neuron)
function mkLayer(idx, name, type, coding, inN, neurons, fanout) {
  return { idx, name, type, coding, in: inN, neurons, fanout, t: [], n: [], s: [] };
}
function finishLayer(L) {
  const order = L.t.map((_, i) => i).sort((a, b) => L.t[a] - L.t[b] || L.n[a] - L.n[b]);
  L.t = order.map((i) => L.t[i]); L.n = order.map((i) => L.n[i]); L.s = order.map((i) => L.s[i]);
  L.spikes = L.t.length; L.sops = L.spikes * L.fanout;
  L.first = L.spikes ? L.t[0] : null; L.last = L.spikes ? L.t[L.spikes - 1] : null;
  return L;
}

function digitsRun(seed, layerSel) {
  const r = rng(seed);
  const defs = [['fc1', 64, 64, 128], ['fc2', 128, 128, 64], ['fc3', 64, 64, 10]];
  const samples = 360, T = 4, per = 12;
  const layers = defs.map(([name, inN, neurons, fanout], i) => mkLayer(i, name, 'linear', 'bitwise-bidirectional', inN, neurons, fanout));
  const rate = layers.map((L) => Array.from({ length: L.neurons }, () => r()));
  for (let smp = 0; smp < samples; smp++) {
    layers.forEach((L, li) => {
      if (layerSel && !layerSel.includes(L.name)) return;
      for (let k = 0; k < L.neurons; k++) {
        if (r() > 0.35 + 0.5 * rate[li][k]) continue;                 // silent channel
        let c = 1 + Math.floor(-Math.log(1 - r()) * 2.2 * (0.3 + rate[li][k]));
        c = Math.min(c, 15);
        const sign = r() < 0.18 ? -1 : 1;
        for (let j = 0; j < T; j++) {
          if ((c >> (T - 1 - j)) & 1) { L.t.push(smp * per + 4 * li + j); L.n.push(k); L.s.push(sign); }
        }
      }
    });
  }
  layers.forEach(finishLayer);
  return { layers, ticks: samples * per, samples };
}

function networkRun(seed, ticks) {
  const r = rng(seed);
  const E = mkLayer(0, 'exc', 'lif', null, 0, 3200, 80), I = mkLayer(1, 'inh', 'lif', null, 0, 800, 80);
  for (let t = 0; t < ticks; t++) {
    const drive = 0.034 + 0.02 * Math.sin(t / 60) + 0.012 * Math.sin(t / 7.3);
    for (const [L, f] of [[E, 1], [I, 1.6]]) {
      const p = Math.max(0.002, drive * f);
      // geometric gaps: about p * neurons spikes this tick
      let k = Math.floor(Math.log(1 - r()) / Math.log(1 - p));
      while (k < L.neurons) { L.t.push(t); L.n.push(k); L.s.push(1); k += 1 + Math.floor(Math.log(1 - r()) / Math.log(1 - p)); }
    }
  }
  return { layers: [finishLayer(E), finishLayer(I)], ticks, samples: null };
}

function energyOf(layers, chip, staticJ) {
  const e = { loihi: [23.6e-12, 81e-12, 52e-12, 1.7e-12], truenorth: [26e-12, 0, 0, 2.1e-12] }[chip];
  const per_layer = layers.map((L) => {
    const terms = { synaptic: L.sops * e[0], update: L.spikes * 6 * e[1], idle: L.neurons * 300 * e[2], spike_out: 0, delivery: L.spikes * e[3], routing: 0 };
    return { idx: L.idx, name: L.name, terms, total_j: Object.values(terms).reduce((a, b) => a + b, 0) };
  });
  const terms = { synaptic: 0, update: 0, idle: 0, spike_out: 0, delivery: 0, routing: 0, static: staticJ };
  for (const l of per_layer) for (const k in l.terms) terms[k] += l.terms[k];
  const total_j = Object.values(terms).reduce((a, b) => a + b, 0);
  return { total_j, terms, per_layer, run_level: { terms: { static: staticJ }, total_j: staticJ } };
}

function mkRun(id, o, data) {
  const spikes = data.layers.reduce((a, L) => a + L.spikes, 0);
  return {
    row: {
      id, status: o.status, kind: o.kind, record: o.record, started_at: o.started_at, samples: data.samples,
      virtual_ticks: o.status === 'running' ? null : data.ticks, spikes, spec_file: o.spec_file, chip: o.chip, parent_run: o.parent_run ?? null
    },
    run: {
      id, status: o.status, kind: o.kind, record: o.record, spec_file: o.spec_file, spec_hash: 'ab'.repeat(32), weights: [],
      chip: o.chip, seed: 1, tick_s: o.tick_s, started_at: o.started_at, ended_at: o.status === 'running' ? null : o.started_at.replace(/\d\d\.\d+Z$/, '59.000Z'),
      nesim_version: '0.1.0', parent_run: o.parent_run ?? null, samples: data.samples, virtual_ticks: o.status === 'running' ? null : data.ticks, note: null
    },
    model: o.model, data, energy: energyOf(data.layers, o.chip, o.staticJ || 0)
  };
}

const runs = new Map();
for (const [id, o, d] of [
  [1, { status: 'complete', kind: 'layers', record: 'spikes', spec_file: 'examples/digits/model.json', chip: 'loihi', tick_s: 1e-3, started_at: '2026-11-25T13:55:33.785Z', model: 'digits-mlp' }, digitsRun(7)],
  [2, { status: 'complete', kind: 'layers', record: 'spikes', spec_file: 'examples/digits/model.json', chip: 'truenorth', tick_s: 1e-3, started_at: '2026-11-25T14:02:10.001Z', parent_run: 1, model: 'digits-mlp' }, digitsRun(7, ['fc2', 'fc3'])],
  [3, { status: 'complete', kind: 'network', record: 'spikes', spec_file: 'examples/cuba/model.json', chip: 'loihi', tick_s: 1e-4, started_at: '2026-11-25T14:05:00.500Z', staticJ: 2.5e-6, model: 'cuba' }, networkRun(3, 2000)],
  [4, { status: 'running', kind: 'network', record: 'activity', spec_file: 'examples/b4/model.json', chip: 'loihi', tick_s: 1e-4, started_at: '2026-11-25T14:09:41.250Z', model: 'b4' }, networkRun(4, 600)]
]) runs.set(id, mkRun(id, o, d));

function report(R) {
  const d = R.data;
  const layers = d.layers.map((L) => ({
    index: L.idx, name: L.name, type: L.type, coding: L.coding, in: L.in, neurons: L.neurons, spikes: L.spikes, sops: L.sops,
    first_spike_tick: L.first, last_spike_tick: L.last, totals_final: R.row.status !== 'running',
    spikes_per_channel: d.samples ? L.spikes / (L.neurons * d.samples) : null,
    activation_sparsity: 0.3 + 0.05 * L.idx, cores: 1,
    energy: R.energy.per_layer[L.idx].terms
  }));
  const tot = { spikes: R.row.spikes, sops: d.layers.reduce((a, L) => a + L.sops, 0), virtual_ticks: R.row.virtual_ticks, energy: R.energy.terms, joules: R.energy.total_j };
  return { model: R.model, samples: d.samples, run: R.run, layers, totals: tot };
}

// ------------------------------------------------------------------ http
class HttpError extends Error { constructor(status, msg) { super(msg); this.status = status; } }
function intParam(q, name, def, lo, hi) {
  const v = q.get(name);
  if (v === null) return def;
  if (!/^-?\d+$/.test(v)) throw new HttpError(400, `${name}: not an integer: ${v}`);
  const n = Number(v);
  if (n < lo || n > hi) throw new HttpError(400, `${name}: out of range [${lo}, ${hi}]: ${v}`);
  return n;
}
function getRun(id) {
  const R = runs.get(Number(id));
  if (!R) throw new HttpError(404, `no run ${id}`);
  return R;
}
function getLayer(R, q) {
  const v = q.get('layer');
  if (v === null) throw new HttpError(400, 'layer: required');
  const L = /^\d+$/.test(v) ? R.data.layers[Number(v)] : R.data.layers.find((l) => l.name === v);
  if (!L) throw new HttpError(404, `no layer ${v} in run ${R.row.id}`);
  return L;
}
function lowerBound(arr, x) { let lo = 0, hi = arr.length; while (lo < hi) { const m = (lo + hi) >> 1; if (arr[m] < x) lo = m + 1; else hi = m; } return lo; }
const lastTick = (R) => Math.max(0, (R.row.virtual_ticks ?? Math.max(...R.data.layers.map((L) => L.last ?? 0)) + 1) - 1);

function json(res, status, body, head) {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s), 'Cache-Control': 'no-store' });
  res.end(head ? undefined : s);
}

const routes = [
  [/^\/api\/runs$/, () => ({ runs: [...runs.values()].map((R) => R.row) })],
  [/^\/api\/runs\/(\d+)$/, (m) => report(getRun(m[1]))],
  [/^\/api\/runs\/(\d+)\/layers$/, (m) => {
    const R = getRun(m[1]);
    return { layers: R.data.layers.map((L) => ({ idx: L.idx, name: L.name, type: L.type, coding: L.coding, neurons: L.neurons, spikes: L.spikes, sops: L.sops, first_tick: L.first, last_tick: L.last })) };
  }],
  [/^\/api\/runs\/(\d+)\/activity$/, (m, q) => {
    const R = getRun(m[1]);
    if (R.row.record === 'none') throw new HttpError(409, `run ${R.row.id} recorded no activity`);
    const hiT = lastTick(R);
    const from = intParam(q, 'from', 0, 0, 2 ** 53), to = intParam(q, 'to', hiT, 0, 2 ** 53);
    if (to < from) throw new HttpError(400, 'to < from');
    const bins = intParam(q, 'bins', 500, 1, 5000);
    const bin_ticks = Math.max(1, Math.ceil((to - from + 1) / bins)), nb = Math.ceil((to - from + 1) / bin_ticks);
    return {
      from, to, bin_ticks, bins: nb,
      layers: R.data.layers.map((L) => {
        const spikes = new Array(nb).fill(0);
        for (let i = lowerBound(L.t, from); i < L.t.length && L.t[i] <= to; i++) spikes[Math.floor((L.t[i] - from) / bin_ticks)]++;
        return { idx: L.idx, name: L.name, spikes, sops: spikes.map((v) => v * L.fanout) };
      })
    };
  }],
  [/^\/api\/runs\/(\d+)\/spikes$/, (m, q) => {
    const R = getRun(m[1]);
    if (R.row.record !== 'spikes') throw new HttpError(409, `run ${R.row.id} recorded no spikes (record = ${R.row.record})`);
    const L = getLayer(R, q);
    const from = intParam(q, 'from', 0, 0, 2 ** 53), to = intParam(q, 'to', lastTick(R), 0, 2 ** 53);
    if (to < from) throw new HttpError(400, 'to < from');
    const limit = intParam(q, 'limit', 10000, 1, 100000);
    const after = q.get('after');
    let start = lowerBound(L.t, from);
    if (after !== null) {
      if (!/^c\d+$/.test(after)) throw new HttpError(400, `after: not a cursor: ${after}`);
      start = Math.max(start, Number(after.slice(1)));
    }
    const spikes = [];
    let i = start;
    for (; i < L.t.length && L.t[i] <= to && spikes.length < limit; i++) spikes.push([L.t[i], L.n[i], L.s[i]]);
    const more = i < L.t.length && L.t[i] <= to;
    return { layer: L.idx, spikes, next: more ? 'c' + i : null };
  }],
  [/^\/api\/runs\/(\d+)\/energy$/, (m) => getRun(m[1]).energy]
];

function replay(req, res, R, q) {
  if (R.row.record !== 'spikes') throw new HttpError(409, `run ${R.row.id} recorded no spikes`);
  const hiT = lastTick(R);
  const from = intParam(q, 'from', 0, 0, 2 ** 53), to = intParam(q, 'to', hiT, 0, 2 ** 53);
  if (to < from) throw new HttpError(400, 'to < from');
  const sp = q.get('speed') ?? '100';
  if (!/^\d+(\.\d+)?$/.test(sp) || !(Number(sp) > 0) || Number(sp) > 1e9) throw new HttpError(400, `speed: not a positive number: ${sp}`);
  const speed = Number(sp);
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
  const send = (ev, data) => res.write(`event: ${ev}\ndata: ${JSON.stringify(data)}\n\n`);
  send('meta', { run: R.row.id, from, to, speed, tick_s: R.run.tick_s, record: R.row.record, interval_ms: 20, layers: R.data.layers.map((L) => ({ idx: L.idx, name: L.name, neurons: L.neurons })) });
  const cursors = R.data.layers.map((L) => lowerBound(L.t, from));
  const t0 = Date.now();
  let done = from - 1, closed = false, waiting = false;
  const step = () => {
    if (closed || waiting) return;
    const target = Math.min(to, from - 1 + Math.floor((Date.now() - t0) / 1000 * speed));
    if (target > done) {
      const spikes = [];
      R.data.layers.forEach((L, li) => {
        let i = cursors[li];
        for (; i < L.t.length && L.t[i] <= target; i++) spikes.push([L.idx, L.n[i], L.s[i], L.t[i]]);
        cursors[li] = i;
      });
      spikes.sort((a, b) => a[3] - b[3] || a[0] - b[0] || a[1] - b[1]);
      const first = done + 1;
      done = target;
      if (!send('tick', { from: first, tick: target, spikes })) { waiting = true; res.once('drain', () => { waiting = false; }); }
    }
    if (done >= to) { send('end', { tick: to }); res.end(); stop(); }
  };
  const timer = setInterval(step, 20);
  const stop = () => { closed = true; clearInterval(timer); };
  req.on('close', stop);
  step();
}

const page = () => fs.readFileSync(pageFile);
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const head = req.method === 'HEAD';
  try {
    if (req.method !== 'GET' && !head) throw new HttpError(405, `method not allowed: ${req.method}`);
    if (url.pathname === '/' || url.pathname === '/index.html') {
      const b = page();
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': b.length, 'Cache-Control': 'no-store' });
      res.end(head ? undefined : b);
      return;
    }
    const rm = /^\/api\/runs\/(\d+)\/replay$/.exec(url.pathname);
    if (rm) { replay(req, res, getRun(rm[1]), url.searchParams); return; }
    for (const [re, fn] of routes) {
      const m = re.exec(url.pathname);
      if (m) { json(res, 200, fn(m, url.searchParams), head); return; }
    }
    throw new HttpError(404, `no such path: ${url.pathname}`);
  } catch (e) {
    if (res.headersSent) { res.end(); return; }
    json(res, e.status || 500, { error: e.message }, head);
  }
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`nesim serve: http://127.0.0.1:${server.address().port}/ (Ctrl-C stops)\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { server.closeAllConnections?.(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 500).unref(); });
