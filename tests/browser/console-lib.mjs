// What the operator console's browser checks (console.mjs, rollout.mjs) share: their `--key value` options,
// the JSON lines they report on stdout, and a logged-in page in headless Chromium.
import puppeteer from 'puppeteer-core';

/** `--key value` pairs into an object (`timeout` defaults to 60 s); every name in `required` must be given. */
export function options(argv, required) {
  const o = { timeout: 60 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (argv[i + 1] === undefined) throw new Error(`--${k} needs a value`);
    o[k] = argv[i + 1];
  }
  for (const k of required) {
    if (!o[k]) throw new Error(`--${k} is required`);
  }
  o.timeout = Number(o.timeout);
  return o;
}

/** One report, one JSON line on stdout. */
export const say = (doc) => process.stdout.write(`${JSON.stringify(doc)}\n`);

/** Headless Chromium (CHROMIUM, default /usr/bin/chromium) and a 1280x900 page logged in as `user`; page
 * errors go to stderr and into the returned list. */
export async function openConsole(o) {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors = [];
  page.on('pageerror', (e) => { errors.push(e.message); process.stderr.write(`page error: ${e.message}\n`); });
  await page.authenticate({ username: o.user, password: o.password });
  return { browser, page, errors };
}

/** Runs `main`, reporting a failure as {"event":"failed","error":...} and exit status 1. */
export function run(main) {
  main().catch((e) => {
    say({ event: 'failed', error: String(e && e.message ? e.message : e) });
    process.exit(1);
  });
}
