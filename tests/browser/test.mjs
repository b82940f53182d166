// Browser test of the `nesim serve` page: Debian's chromium (/usr/bin/chromium) driven by
// playwright-core (no browser is downloaded). Opens the page, picks a run, checks the raster,
// zoom and layer selector, the activity chart, the energy breakdown and a paced replay, saves
// a screenshot and fails on any console error of the page.
//
//   node tests/browser/test.mjs --url http://127.0.0.1:PORT/ [--run 1] [--screenshot FILE]
//   node tests/browser/test.mjs            # no --url: starts tests/browser/mock-server.mjs
//
// Prints "ok - ..." / "not ok - ..." per check and, last, "browser tests: N passed, M failed";
// exits 1 if any check failed (2 if the browser could not be started).
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def; };
let baseUrl = opt('--url', process.env.NESIM_URL || '');
const runId = Number(opt('--run', '1'));
const shot = path.resolve(opt('--screenshot', path.join(repo, 'build', 'browser', 'screenshot.png')));
const chromiumPath = opt('--chromium', process.env.CHROMIUM || '/usr/bin/chromium');
const T = Number(opt('--timeout', '20000'));          // per wait, ms (2 shared cores: be patient)

// ------------------------------------------------------------------ a tiny runner
let passed = 0, failed = 0;
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}`);
    for (const line of String(e && e.stack || e).split('\n').slice(0, 6)) console.log('  # ' + line);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ the server under test
let mock = null;
async function startMock() {
  mock = spawn(process.execPath, [path.join(here, 'mock-server.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return await new Promise((resolve, reject) => {
    let out = '';
    const to = setTimeout(() => reject(new Error('mock server did not print its URL')), 10000);
    mock.stdout.on('data', (b) => {
      out += b;
      const m = /nesim serve: (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(to); resolve(m[1]); }
    });
    mock.on('exit', (code) => reject(new Error('mock server exited: ' + code)));
  });
}

// ------------------------------------------------------------------ page-side helpers
// counts canvas pixels: exactly (±2) the given colour, and "coloured" ones (chroma > 60),
// which grid lines, text and backgrounds (greys) never are
async function pixels(page, sel, hex) {
  return page.evaluate(([sel, hex]) => {
    const c = document.querySelector(sel);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let want = null;
    if (hex && /^#[0-9a-f]{6}$/i.test(hex)) { const n = parseInt(hex.slice(1), 16); want = [(n >> 16) & 255, (n >> 8) & 255, n & 255]; }
    let exact = 0, colored = 0;
    for (let i = 0; i < d.length; i += 4) {
      const r = d[i], g = d[i + 1], b = d[i + 2];
      if (want && Math.abs(r - want[0]) <= 2 && Math.abs(g - want[1]) <= 2 && Math.abs(b - want[2]) <= 2) exact++;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) colored++;
    }
    return { exact, colored, w: c.width, h: c.height };
  }, [sel, hex || null]);
}
const intText = async (page, sel) => Number((await page.textContent(sel)).replace(/[^\d]/g, ''));
const getJSON = (page, url) => page.evaluate(async (u) => { const r = await fetch(u); return { status: r.status, body: await r.json() }; }, url);

// ------------------------------------------------------------------ main
async function main() {
  if (!baseUrl) baseUrl = await startMock();
  if (!baseUrl.endsWith('/')) baseUrl += '/';
  console.log(`# page ${baseUrl} · run ${runId} · chromium ${chromiumPath}`);

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'nesim-chromium-'));
  let ctx;
  try {
    // a fresh --user-data-dir, and no network beyond loopback: Debian's chromium otherwise
    // tries updates, sync, field trials and QUIC
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
      viewport: { width: 1440, height: 900 },
      deviceScaleFactor: 1,
      timeout: 60000
    });
  } catch (e) {
    console.log('not ok - chromium starts');
    console.log('  # ' + String(e && e.message || e).split('\n').slice(0, 4).join('\n  # '));
    failed++;
    return;
  }
  ctx.setDefaultTimeout(T);
  const page = ctx.pages()[0] || await ctx.newPage();
  const problems = [];                       // console errors, page errors, HTTP errors
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + (e && e.message)));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  page.on('requestfailed', (r) => {
    const f = r.failure() && r.failure().errorText || '';
    if (!/ERR_ABORTED/.test(f)) problems.push(`request failed: ${r.url()} ${f}`);   // aborted = superseded on purpose
  });

  let layers = [];
  let rasterLayer = null;

  await check('page loads: header "nesim" and a run list', async () => {
    const res = await page.goto(baseUrl, { waitUntil: 'load' });
    assert(res && res.status() === 200, 'GET / answered ' + (res && res.status()));
    assert(/text\/html/.test(res.headers()['content-type'] || ''), 'GET / content-type: ' + res.headers()['content-type']);
    assert(/nesim/.test(await page.textContent('header h1')), 'no "nesim" in the header');
    await page.waitForSelector('#runs[data-state="ready"]');
    const n = await page.locator('#runs [data-run-id]').count();
    assert(n >= 1, 'no run rows in #runs');
  });

  await check(`run ${runId} is listed with status, kind, samples, ticks, spikes, chip, parent`, async () => {
    const row = page.locator(`#runs [data-run-id="${runId}"]`);
    await row.waitFor();
    const text = await row.textContent();
    const api = await getJSON(page, 'api/runs');
    const r = api.body.runs.find((x) => x.id === runId);
    assert(r, `run ${runId} not in GET /api/runs`);
    for (const [k, v] of [['status', r.status], ['kind', r.kind], ['spikes', r.spikes.toLocaleString('en-US')], ['ticks', r.virtual_ticks == null ? '—' : r.virtual_ticks.toLocaleString('en-US')]]) {
      assert(text.includes(v), `row lacks ${k} "${v}": ${text}`);
    }
    for (const k of ['samples', 'chip', 'parent']) assert(text.includes(k), `row lacks ${k}: ${text}`);
  });

  await check(`clicking run ${runId} selects it and shows its report`, async () => {
    await page.click(`#runs [data-run-id="${runId}"]`);
    await page.waitForSelector(`body[data-run="${runId}"]`);
    await page.waitForSelector('#summary[data-state="ready"]');
    assert(await page.getAttribute(`#runs [data-run-id="${runId}"]`, 'aria-selected') === 'true', 'row not aria-selected');
    const l = await getJSON(page, `api/runs/${runId}/layers`);
    layers = l.body.layers;
    assert(layers.length > 0, 'the run has no layers');
    assert(await page.locator('#layers-table tbody tr').count() === layers.length, 'layer table rows != layers');
  });

  await check('raster draws the spikes of the selected layer', async () => {
    await page.waitForSelector('#raster[data-state="ready"]');
    const idx = Number(await page.inputValue('#raster-layer'));
    rasterLayer = layers.find((l) => l.idx === idx);
    assert(rasterLayer, 'raster layer ' + idx + ' not among the layers');
    const n = await intText(page, '#raster-count');
    assert(n > 0, '#raster-count is ' + n);
    if (rasterLayer.spikes <= 200000) assert(n === rasterLayer.spikes, `#raster-count ${n} != the layer's ${rasterLayer.spikes} spikes (full view)`);
    else assert(n === 200000 && /cap/.test(await page.textContent('#raster-note')), 'over the cap but no cap notice');
    const pos = await page.getAttribute('#raster', 'data-color-pos');
    const px = await pixels(page, '#raster', pos);
    assert(px.exact > 200, `only ${px.exact} raster pixels of the spike colour ${pos} (${px.w}x${px.h})`);
  });

  await check('raster zooms with the wheel, pans by dragging, and resets', async () => {
    const span = async () => { const f = Number(await page.getAttribute('#raster', 'data-from')); const t = Number(await page.getAttribute('#raster', 'data-to')); return [f, t]; };
    const [f0, t0] = await span();
    await page.locator('#raster').scrollIntoViewIfNeeded();
    const box = await page.locator('#raster').boundingBox();
    await page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.5);
    for (let i = 0; i < 4; i++) { await page.mouse.wheel(0, -500); await sleep(40); }
    await page.waitForFunction(([f, t]) => { const c = document.querySelector('#raster'); return Number(c.dataset.to) - Number(c.dataset.from) < (t - f) / 4; }, [f0, t0]);
    await page.waitForSelector('#raster[data-state="ready"]');
    const [f1, t1] = await span();
    const n1 = await intText(page, '#raster-count');
    assert(n1 > 0 && n1 < rasterLayer.spikes, `zoomed count ${n1} (layer ${rasterLayer.spikes})`);
    assert(!(await page.isDisabled('#raster-reset')), 'reset zoom stays disabled when zoomed');
    // drag right by a third of the plot: the window moves to earlier ticks
    const y = box.y + box.height * 0.5;
    await page.mouse.move(box.x + box.width * 0.6, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.75, y, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.9, y, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction((f) => Number(document.querySelector('#raster').dataset.from) < f, f1);
    const [f2, t2] = await span();
    assert(Math.abs((t2 - f2) - (t1 - f1)) <= 2, `panning changed the span: ${t1 - f1} -> ${t2 - f2}`);
    await page.waitForSelector('#raster[data-state="ready"]');
    await page.click('#raster-reset');
    await page.waitForFunction(([f, t]) => { const c = document.querySelector('#raster'); return Number(c.dataset.from) === f && Number(c.dataset.to) === t; }, [f0, t0]);
    await page.waitForSelector('#raster[data-state="ready"]');
    assert(await intText(page, '#raster-count') === Math.min(rasterLayer.spikes, 200000), 'reset did not bring every spike back');
  });

  await check('raster layer selector switches layers', async () => {
    const other = layers.filter((l) => l.idx !== rasterLayer.idx && l.spikes > 0).sort((a, b) => b.spikes - a.spikes)[0];
    if (!other) return;                                     // a single layer: nothing to switch to
    await page.selectOption('#raster-layer', String(other.idx));
    await page.waitForFunction((n) => document.querySelector('#raster').dataset.state === 'ready' && Number(document.querySelector('#raster-count').textContent) === n,
      Math.min(other.spikes, 200000));
    const px = await pixels(page, '#raster', await page.getAttribute('#raster', 'data-color-pos'));
    assert(px.exact > 200, 'few spike pixels after switching layers: ' + px.exact);
    await page.selectOption('#raster-layer', String(rasterLayer.idx));
    await page.waitForSelector('#raster[data-state="ready"]');
  });

  await check('activity chart: one line per layer and a legend', async () => {
    await page.waitForSelector('#activity[data-state="ready"]');
    const legend = await page.locator('#activity-legend button').count();
    assert(legend === layers.length, `legend has ${legend} entries for ${layers.length} layers`);
    const px = await pixels(page, '#activity');
    assert(px.colored > 300, 'activity canvas has only ' + px.colored + ' coloured pixels');
  });

  await check('energy breakdown: stacked bars per layer, totals in J', async () => {
    const en = await getJSON(page, `api/runs/${runId}/energy`);
    if (!(en.body.total_j > 0)) { await page.waitForSelector('#energy[data-state="empty"]'); return; }
    await page.waitForSelector('#energy[data-state="ready"]');
    const bars = await page.locator('#energy .e-bar').count();
    assert(bars >= en.body.per_layer.length, `${bars} bars for ${en.body.per_layer.length} layers`);
    const segs = await page.locator('#energy .e-bar span').count();
    assert(segs >= en.body.per_layer.length, 'bars have no segments');
    const total = await page.textContent('#energy-total');
    assert(/^\d[\d.]* [yzafpnµmkMGT]?J$/.test(total), 'total not in J with an SI prefix: ' + total);
  });

  await check('replay: Start streams ticks, #replay-ticks advances, Stop stops it', async () => {
    const run = (await getJSON(page, `api/runs/${runId}`)).body.run;
    const ticks = run.virtual_ticks || 1000;
    const speed = Math.max(50, Math.ceil(ticks / 5));          // the whole run in about 5 s
    await page.fill('#replay-speed', String(speed));
    await page.click('#replay-start');
    await page.waitForFunction(() => Number(document.querySelector('#replay-ticks').textContent) > 0);
    const a = await intText(page, '#replay-ticks');
    await page.waitForFunction((a) => Number(document.querySelector('#replay-ticks').textContent) > a, a);
    await sleep(1200);
    const b = await intText(page, '#replay-ticks');
    assert(b > a, `#replay-ticks did not advance: ${a} -> ${b}`);
    assert(await intText(page, '#replay-spikes') > 0, 'no spikes received');
    assert(await page.textContent('#replay-state') === 'playing', 'state is ' + await page.textContent('#replay-state'));
    const px = await pixels(page, '#replay-canvas');
    assert(px.colored > 100, 'replay canvas shows ' + px.colored + ' coloured pixels');
    await page.click('#replay-stop');
    await page.waitForSelector('#replay-state[data-state="stopped"]');
    const c = await intText(page, '#replay-ticks');
    await sleep(600);
    const d = await intText(page, '#replay-ticks');
    assert(c === d, `ticks still arriving after Stop: ${c} -> ${d}`);
    assert(!(await page.isDisabled('#replay-start')) && await page.isDisabled('#replay-stop'), 'buttons not reset after Stop');
  });

  await check(`screenshot saved to ${path.relative(process.cwd(), shot) || shot}`, async () => {
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.mouse.move(0, 0);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: shot, fullPage: true });
    assert(fs.statSync(shot).size > 10000, 'screenshot suspiciously small');
  });

  await check('a timed run: the activity chart reads against chip time too', async () => {
    const runs = (await getJSON(page, 'api/runs')).body.runs || [];
    const timed = runs.find((x) => x.kind === 'network' && x.status === 'complete' && x.spec_file && /ring/.test(x.spec_file));
    if (!timed) { console.log('  # skipped: no timed network run in this database'); return; }
    await page.click(`#runs [data-run-id="${timed.id}"]`);
    await page.waitForSelector(`body[data-run="${timed.id}"]`);
    await page.waitForSelector('#activity[data-state="ready"]');
    const a = await getJSON(page, `api/runs/${timed.id}/activity?bins=10`);
    assert(Array.isArray(a.body.chip_s) && a.body.chip_s.length === a.body.bins + 1, 'no chip_s bin edges: ' + JSON.stringify(a.body).slice(0, 200));
    assert(a.body.chip_s[0] === 0 && a.body.chip_s[a.body.bins] > 0, 'chip_s does not run from 0: ' + a.body.chip_s);
    await page.waitForSelector('#activity[data-chip="yes"]');
    await page.click(`#runs [data-run-id="${runId}"]`); // back: an untimed run has no chip-time axis
    await page.waitForSelector(`body[data-run="${runId}"]`);
    await page.waitForSelector('#activity[data-chip="no"]');
  });

  await check('no console errors, page errors or failed requests', async () => {
    assert(problems.length === 0, problems.slice(0, 8).join('\n'));
  });

  await check('an unknown run shows an error message, not a crash', async () => {
    const p2 = await ctx.newPage();
    const errs = [];
    p2.on('pageerror', (e) => errs.push(e.message));
    p2.on('console', (m) => { if (m.type() === 'error' && !/status of 404/.test(m.text())) errs.push(m.text()); });
    await p2.goto(baseUrl + '#run=987654321', { waitUntil: 'load' });
    await p2.waitForSelector('#summary[data-state="error"]');
    assert(/987654321/.test(await p2.textContent('#summary-empty')), 'no message naming the run');
    assert(errs.length === 0, errs.join('\n'));
    await p2.close();
  });

  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
}

try {
  await main();
} catch (e) {
  failed++;
  console.log('not ok - test harness: ' + (e && e.stack || e));
} finally {
  if (mock) mock.kill('SIGTERM');
  console.log(`browser tests: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
