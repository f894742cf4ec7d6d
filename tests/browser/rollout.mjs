#!/usr/bin/env node
// Rollouts driven from the operator console's page in headless Chromium, as an operator clicks them, by a test
// that owns the boxes (agent/fleet/tests/fleet_console.rs). It logs in, opens #/rollouts and reports on stdout,
// one JSON document per line:
//   {"event":"started", "id":I}        the form started a config rollout of --config to --select
//   {"event":"paused"|"resumed"|"aborted", "id":I}
//                                      each button, clicked in turn, and the rollout's phase shown after it
//   {"event":"halted", "id":J, "failed":[[box, reason], ...], "screenshot":PATH}
//                                      a second rollout, of --bad-config to --bad-select, halted by itself with
//                                      its failed boxes and their reasons listed; the page is written to PATH
//   {"event":"rolled_back", "id":J}    its rollback button, and the phase reaching rolled_back
//   {"event":"image_halted", "id":K, "failed":[[box, reason], ...]}
//                                      a third rollout, of an image fetched from the site's swarm
//                                      (--swarm ROOT, --peers, --sha256, --version) to --select, typed into
//                                      the form's image fields, halted by the box's answer
// and exits 0, or prints {"event":"failed","error":...} and exits 1. Diagnostics go to stderr.
//
//   node rollout.mjs --url URL --user U --password P --select S --config JSON --bad-select S2
//                    --bad-config JSON2 --swarm ROOT --peers P --sha256 H --version V --screenshot FILE
//                    [--timeout S]
// Environment: CHROMIUM  the browser binary (default /usr/bin/chromium).
import { openConsole, options, run, say } from './console-lib.mjs';

async function main() {
  const o = options(process.argv.slice(2),
    ['url', 'user', 'password', 'select', 'config', 'bad-select', 'bad-config', 'swarm', 'peers', 'sha256',
      'version', 'screenshot']);
  const { browser, page, errors } = await openConsole(o);
  try {
    const ms = o.timeout * 1000;
    await page.goto(`${o.url.replace(/\/$/, '')}/#/rollouts`, { waitUntil: 'load', timeout: ms });
    await page.waitForSelector('#start-rollout', { timeout: ms });

    // start: typed into the form as an operator would
    const start = async (select, config, soak) => {
      const before = await page.$$eval('section[data-rollout]', (s) => s.map((e) => e.dataset.rollout));
      await page.$eval('#start-rollout', (f) => { f.selector.value = ''; f.config.value = ''; f.soak.value = ''; f.waves.value = ''; });
      await page.type('#start-rollout input[name="selector"]', select);
      await page.type('#start-rollout textarea[name="config"]', config);
      await page.type('#start-rollout input[name="soak"]', String(soak));
      await page.type('#start-rollout input[name="waves"]', '50');
      await page.click('#start-rollout button[type="submit"]');
      const handle = await page.waitForFunction(
        (seen) => [...document.querySelectorAll('section[data-rollout]')].map((e) => e.dataset.rollout)
          .find((id) => !seen.includes(id)),
        { timeout: ms, polling: 100 }, before);
      return handle.jsonValue();
    };
    const phase = (id, want) => page.waitForFunction(
      (i, p) => document.querySelector(`section[data-rollout="${i}"]`)?.dataset.phase === p,
      { timeout: ms, polling: 100 }, id, want);
    const click = async (id, action) => {
      await page.waitForSelector(`section[data-rollout="${id}"] button[data-action="${action}"]`, { timeout: ms });
      await page.click(`section[data-rollout="${id}"] button[data-action="${action}"]`);
    };

    // a long soak keeps the first rollout running while the operator pauses, resumes and aborts it
    const id = await start(o.select, o.config, 600);
    await phase(id, 'running');
    say({ event: 'started', id });
    for (const [action, shown] of [['pause', 'paused'], ['resume', 'running'], ['abort', 'aborted']]) {
      await click(id, action);
      await phase(id, shown);
      say({ event: action === 'resume' ? 'resumed' : shown, id });
    }

    const bad = await start(o['bad-select'], o['bad-config'], 1);
    await phase(bad, 'halted');
    const failed = await page.$$eval(`section[data-rollout="${bad}"] tr[data-state="failed"]`,
      (trs) => trs.map((tr) => [tr.dataset.device, tr.cells[3].textContent.trim()]));
    await page.screenshot({ path: o.screenshot, fullPage: true });
    say({ event: 'halted', id: bad, failed, screenshot: o.screenshot });
    await click(bad, 'rollback');
    await phase(bad, 'rolled_back');
    say({ event: 'rolled_back', id: bad });

    // an image from the site's swarm: the kind switched to image, its root and seeders in the bundle fields
    const before = await page.$$eval('section[data-rollout]', (s) => s.map((e) => e.dataset.rollout));
    await page.select('#start-rollout select[name="kind"]', 'image');
    await page.$eval('#start-rollout', (f) => { f.selector.value = ''; f.soak.value = ''; f.waves.value = ''; });
    await page.type('#start-rollout input[name="selector"]', o.select);
    await page.type('#start-rollout input[name="url"]', o.swarm);
    await page.type('#start-rollout input[name="peers"]', o.peers);
    await page.type('#start-rollout input[name="sha256"]', o.sha256);
    await page.type('#start-rollout input[name="version"]', o.version);
    await page.type('#start-rollout input[name="soak"]', '1');
    await page.click('#start-rollout button[type="submit"]');
    const img = await (await page.waitForFunction(
      (seen) => [...document.querySelectorAll('section[data-rollout]')].map((e) => e.dataset.rollout)
        .find((i) => !seen.includes(i)),
      { timeout: ms, polling: 100 }, before)).jsonValue();
    await phase(img, 'halted');
    const refused = await page.$$eval(`section[data-rollout="${img}"] tr[data-state="failed"]`,
      (trs) => trs.map((tr) => [tr.dataset.device, tr.cells[3].textContent.trim()]));
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    say({ event: 'image_halted', id: img, failed: refused });
  } finally {
    await browser.close();
  }
}

run(main);
