#!/usr/bin/env node
// The operator console's page in headless Chromium, driven by a test that owns the boxes (agent/fleet/tests/
// fleet_console.rs) or a benchmark (agent/fleet/examples/console_bench.rs). It logs in, and reports on stdout,
// one JSON document per line, each step only when its options are given:
//   {"event":"listed", "load_ms":T, "rows":[...]}
//                                             every box of --devices, and at least --min-online boxes, are
//                                             listed online in the fleet table, T ms after the navigation began
//                                             (rows: the table's cells, or their count without --devices)
//   {"event":"offline", "device":D, "at_ms":W}
//                                             the page shows --offline D as offline (the test kills it after
//                                             "listed"; the page must notice without a reload); the fleet
//                                             table is then written to --fleet-screenshot FILE, if given
//   {"event":"filtered", "filter":F, "shown":[...]}
//                                             --filter F typed into the label filter leaves exactly the boxes
//                                             of --filtered (comma-separated), and the table goes on refreshing
//   {"event":"plotted", "device":D, "points":N, "screenshot":PATH}
//                                             D's page draws its CPU plot from at least 2 telemetry samples;
//                                             the screenshot of that page is written to PATH
// (W: the wall clock in ms) and exits 0, or prints {"event":"failed","error":...} and exits 1. Diagnostics go
// to stderr.
//
//   node console.mjs --url URL --user U --password P [--devices a,b] [--min-online K] [--offline a]
//                    [--filter site=x --filtered b] [--plot b --screenshot FILE]
//                    [--fleet-screenshot FILE] [--timeout S]
// Environment: CHROMIUM  the browser binary (default /usr/bin/chromium).
import { openConsole, options, run, say } from './console-lib.mjs';

async function main() {
  const o = options(process.argv.slice(2), ['url', 'user', 'password']);
  if (o.plot && !o.screenshot) throw new Error('--plot needs --screenshot');
  if (o.filter && !o.filtered) throw new Error('--filter needs --filtered');
  o.devices = o.devices ? o.devices.split(',') : [];
  o.minOnline = Number(o['min-online'] ?? o.devices.length);
  const { browser, page, errors } = await openConsole(o);
  try {
    const ms = o.timeout * 1000;
    const t0 = Date.now();
    await page.goto(o.url, { waitUntil: 'load', timeout: ms });
    await page.waitForFunction(
      (ids, min) => ids.every((id) => document.querySelector(`tr[data-device="${id}"][data-online="true"]`))
        && document.querySelectorAll('#fleet tbody tr[data-online="true"]').length >= min,
      { timeout: ms, polling: 50 }, o.devices, o.minOnline);
    const loadMs = Date.now() - t0;
    const rows = await page.$$eval('#fleet tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    say({ event: 'listed', load_ms: loadMs, rows: o.devices.length ? rows : rows.length });
    if (!o.offline) return;

    await page.waitForFunction(
      (id) => document.querySelector(`tr[data-device="${id}"][data-online="false"]`),
      { timeout: ms, polling: 50 }, o.offline);
    const offlineAt = Date.now();
    if (o['fleet-screenshot']) await page.screenshot({ path: o['fleet-screenshot'], fullPage: true });
    say({ event: 'offline', device: o.offline, at_ms: offlineAt });
    if (!o.filter) return;

    // the label filter, typed as an operator would; the table keeps refreshing while the input has focus
    await page.type('#f-label', o.filter);
    await page.waitForFunction(
      (want) => {
        const shown = [...document.querySelectorAll('#fleet tbody tr')].map((tr) => tr.dataset.device);
        return shown.length === want.length && shown.every((d, i) => d === want[i]);
      },
      { timeout: ms, polling: 200 }, o.filtered.split(','));
    const before = await page.$eval('#updated', (e) => e.textContent);
    await page.waitForFunction((b) => document.querySelector('#updated').textContent !== b
      && document.activeElement?.id === 'f-label', { timeout: ms, polling: 200 }, before);
    say({ event: 'filtered', filter: o.filter, shown: o.filtered.split(',') });
    if (!o.plot) return;

    await page.goto(`${o.url.replace(/\/$/, '')}/#/device/${encodeURIComponent(o.plot)}`, { waitUntil: 'load', timeout: ms });
    await page.waitForFunction(
      () => Number(document.querySelector('svg[data-metric="cpu_percent"]')?.dataset.points ?? 0) >= 2
        && document.querySelector('svg[data-metric="cpu_percent"] polyline'),
      { timeout: ms, polling: 200 });
    const points = await page.$eval('svg[data-metric="cpu_percent"]', (s) => Number(s.dataset.points));
    await page.screenshot({ path: o.screenshot, fullPage: true });
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    say({ event: 'plotted', device: o.plot, points, screenshot: o.screenshot });
  } finally {
    await browser.close();
  }
}

run(main);
