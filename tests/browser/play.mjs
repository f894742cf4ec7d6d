#!/usr/bin/env node
// Real-browser HLS playback check: hls.js in headless Chromium plays an HLS URL and this script reports, as one
// JSON document on stdout, every level (rendition) of the master playlist, how far the playback clock advanced,
// and any fatal hls.js error.  Exit status 0 only when it played for at least --min-seconds, saw no fatal error
// and (with --expect-levels K) found exactly K levels.  Diagnostics go to stderr.
//
//   node play.mjs URL [--min-seconds N] [--timeout S] [--expect-levels K]
//   node play.mjs --serve DIR [PATH] [...]     serve DIR on 127.0.0.1 and play PATH in it (default master.m3u8)
//
// Options:
//   --min-seconds N     seconds the video's clock must advance while playing (default 2)
//   --timeout S         give up after S seconds, counted from the page load (default 30)
//   --expect-levels K   require exactly K levels in the master playlist
//   --serve DIR         serve DIR at /media/ on the page's own server; a relative URL is resolved against it
//   --require-cors      keep the browser's same-origin policy (by default it is off, so any HLS server works
//                       without CORS headers; with this flag a cross-origin server must send them)
//   --verbose           copy the page's console and each hls.js event of interest to stderr
// Environment: CHROMIUM  the browser binary (default /usr/bin/chromium).
//
// Nothing is fetched from the internet: the page and hls.js (from node_modules) come from a local HTTP server
// this script starts on 127.0.0.1 with an ephemeral port.
import { createServer } from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const require = createRequire(import.meta.url);
const HLS_JS = require.resolve('hls.js/dist/hls.min.js');
const HLS_VERSION = require('hls.js/package.json').version;
const PUPPETEER_VERSION = require('puppeteer-core/package.json').version;

function usage(msg) {
  if (msg) process.stderr.write(`play.mjs: ${msg}\n`);
  process.stderr.write(
    'usage: node play.mjs URL [--min-seconds N] [--timeout S] [--expect-levels K] [--serve DIR] [--require-cors] [--verbose]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const o = { url: null, minSeconds: 2, timeout: 30, expectLevels: null, serve: null, requireCors: false, verbose: false };
  const num = (name, v, int) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0 || (int && !Number.isInteger(n))) usage(`${name} needs a ${int ? 'whole ' : ''}number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--min-seconds': o.minSeconds = num(flag, val(), false); break;
      case '--timeout': o.timeout = num(flag, val(), false); break;
      case '--expect-levels': o.expectLevels = num(flag, val(), true); break;
      case '--serve': o.serve = val(); if (!o.serve) usage('--serve needs a directory'); break;
      case '--require-cors': o.requireCors = true; break;
      case '--verbose': o.verbose = true; break;
      case '-h': case '--help': usage();
      default:
        if (a.startsWith('-')) usage(`unknown option ${a}`);
        if (o.url !== null) usage('only one URL');
        o.url = a;
    }
  }
  if (o.url === null && o.serve === null) usage('an HLS URL (or --serve DIR) is required');
  if (o.serve === null) { try { new URL(o.url); } catch { usage(`not an absolute URL: ${o.url} (use --serve DIR for a directory)`); } }
  if (o.timeout <= 0) usage('--timeout must be positive');
  return o;
}

const MIME = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.aac': 'audio/aac',
  '.vtt': 'text/vtt',
  '.key': 'application/octet-stream',
  '.json': 'application/json',
};

// The page: hls.js plays window.start(url)'s stream into a muted, autoplaying <video>; window.state is what the
// script polls.  Only fatal errors fail the check; the others (a retried fragment, a buffer stall) are counted.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>hls playback check</title></head>
<body>
<video id="v" muted autoplay playsinline width="640" height="360"></video>
<script src="/hls.js"></script>
<script>
'use strict';
const state = window.state = {
  hls_version: Hls.version, supported: Hls.isSupported(), manifest_parsed: false, levels: [], errors: [],
  non_fatal_errors: 0, non_fatal_samples: [], fragments_loaded: 0, level_switches: [], playing: false, ended: false,
};
const video = document.getElementById('v');
function ranges(r) { const out = []; for (let i = 0; i < r.length; i++) out.push([r.start(i), r.end(i)]); return out; }
window.snapshot = () => {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  const played = ranges(video.played);
  return Object.assign({}, state, {
    played_seconds: played.reduce((s, [a, b]) => s + (b - a), 0),
    current_time: video.currentTime,
    paused: video.paused,
    ready_state: video.readyState,
    buffered_ranges: ranges(video.buffered),
    played_ranges: played,
    video: { width: video.videoWidth, height: video.videoHeight,
             decoded_frames: q ? q.totalVideoFrames : null, dropped_frames: q ? q.droppedVideoFrames : null },
    media_error: video.error ? { code: video.error.code, message: video.error.message } : null,
  });
};
window.start = (url) => {
  if (!state.supported) { state.errors.push({ type: 'setup', details: 'Hls.isSupported() is false (no MediaSource)', fatal: true }); return; }
  const hls = window.hls = new Hls({ capLevelToPlayerSize: false });
  hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
    state.manifest_parsed = true;
    state.levels = data.levels.map((l) => ({
      width: l.width, height: l.height, bitrate: l.bitrate, average_bitrate: l.averageBitrate || null,
      codecs: (l.attrs && l.attrs.CODECS) || [l.videoCodec, l.audioCodec].filter(Boolean).join(','),
      video_codec: l.videoCodec || null, audio_codec: l.audioCodec || null,
      frame_rate: l.frameRate || null, url: l.uri || (Array.isArray(l.url) ? l.url[0] : l.url),
      mse_supported: l.videoCodec ? MediaSource.isTypeSupported('video/mp4; codecs="' + l.videoCodec + '"') : null,
    }));
    video.play().catch((err) => state.errors.push({ type: 'play', details: String(err), fatal: true }));
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => state.level_switches.push(data.level));
  hls.on(Hls.Events.FRAG_LOADED, () => { state.fragments_loaded++; });
  hls.on(Hls.Events.ERROR, (_e, data) => {
    const err = { type: data.type, details: data.details, fatal: !!data.fatal,
                  url: (data.frag && data.frag.url) || (data.context && data.context.url) || data.url || null,
                  reason: data.reason || (data.error && String(data.error)) || (data.response && data.response.code) || null };
    if (err.fatal) state.errors.push(err);
    else { state.non_fatal_errors++; if (state.non_fatal_samples.length < 10) state.non_fatal_samples.push(err); }
    console.log('hls.js error', JSON.stringify(err));
  });
  video.addEventListener('playing', () => { state.playing = true; });
  video.addEventListener('ended', () => { state.ended = true; });
  video.addEventListener('error', () => state.errors.push({ type: 'media', details: video.error ? video.error.message : 'video error', fatal: true }));
  hls.loadSource(url);
  hls.attachMedia(video);
};
</script>
</body></html>
`;

// Serves the page, hls.js and (with --serve) a directory of HLS files.
async function startServer(serveDir) {
  const root = serveDir ? await fs.realpath(serveDir) : null;
  const server = createServer(async (req, res) => {
    const headers = { 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' };
    const send = (code, type, body) => { res.writeHead(code, { ...headers, 'Content-Type': type }); res.end(body); };
    let pathname;
    try { pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { return send(400, 'text/plain', 'bad url'); }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed');
    if (pathname === '/' || pathname === '/index.html') return send(200, 'text/html; charset=utf-8', PAGE);
    if (pathname === '/favicon.ico') { res.writeHead(204, headers); return res.end(); }
    if (pathname === '/hls.js') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' });
      return createReadStream(HLS_JS).pipe(res);
    }
    if (root && pathname.startsWith('/media/')) {
      const file = path.resolve(root, '.' + pathname.slice('/media'.length));
      if (file !== root && !file.startsWith(root + path.sep)) return send(403, 'text/plain', 'forbidden');
      try {
        const st = await fs.stat(file);
        if (!st.isFile()) return send(404, 'text/plain', 'not found');
        res.writeHead(200, { ...headers, 'Content-Type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream', 'Content-Length': st.size });
        if (req.method === 'HEAD') return res.end();
        return createReadStream(file).pipe(res);
      } catch { return send(404, 'text/plain', 'not found'); }
    }
    return send(404, 'text/plain', 'not found');
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const { server, origin } = await startServer(o.serve);
  const url = o.serve ? new URL(o.url ?? 'master.m3u8', `${origin}/media/`).href : new URL(o.url).href;
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  const t0 = Date.now();
  let browser;
  const result = { url, ok: false, failures: [] };
  try {
    browser = await puppeteer.launch({
      executablePath,
      headless: true,
      // (puppeteer adds --headless=new and --mute-audio itself; they are listed so the set does not depend on it)
      args: [
        '--no-sandbox',
        '--headless=new',
        '--autoplay-policy=no-user-gesture-required',
        '--mute-audio',
        '--disable-dev-shm-usage',
        '--disable-gpu',
        ...(o.requireCors ? [] : ['--disable-web-security']),
      ],
    });
    const page = await browser.newPage();
    page.on('console', (m) => { if (o.verbose) process.stderr.write(`[page] ${m.text()}\n`); });
    page.on('pageerror', (e) => { result.failures.push(`page error: ${e.message}`); });
    await page.goto(`${origin}/`, { waitUntil: 'load', timeout: o.timeout * 1000 });
    const browserInfo = await page.evaluate(() => ({
      user_agent: navigator.userAgent,
      mse_avc1: typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f"'),
      mse_mp4a: typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"'),
    }));
    result.browser = { version: await browser.version(), ...browserInfo };
    await page.evaluate((u) => window.start(u), url);

    const deadline = t0 + o.timeout * 1000;
    let s;
    let lastLog = 0;
    for (;;) {
      s = await page.evaluate(() => window.snapshot());
      if (s.errors.length || result.failures.length) break;
      if (s.played_seconds >= o.minSeconds) break;
      if (s.ended) break; // a stream shorter than --min-seconds: reported below
      if (Date.now() >= deadline) { result.failures.push(`timed out after ${o.timeout} s`); break; }
      if (o.verbose && Date.now() - lastLog > 1000) {
        lastLog = Date.now();
        process.stderr.write(`[play] t=${s.current_time.toFixed(2)} played=${s.played_seconds.toFixed(2)} frags=${s.fragments_loaded} ready=${s.ready_state}\n`);
      }
      await sleep(100);
    }
    Object.assign(result, {
      hls_js: s.hls_version,
      puppeteer_core: PUPPETEER_VERSION,
      levels: s.levels,
      played_seconds: Number(s.played_seconds.toFixed(3)),
      current_time: Number(s.current_time.toFixed(3)),
      errors: s.errors,
      non_fatal_errors: s.non_fatal_errors,
      non_fatal_samples: s.non_fatal_samples,
      buffered_ranges: s.buffered_ranges.map(([a, b]) => [Number(a.toFixed(3)), Number(b.toFixed(3))]),
      played_ranges: s.played_ranges.map(([a, b]) => [Number(a.toFixed(3)), Number(b.toFixed(3))]),
      fragments_loaded: s.fragments_loaded,
      level_switches: s.level_switches,
      video: s.video,
      media_error: s.media_error,
    });
    if (!s.manifest_parsed) result.failures.push('manifest never parsed');
    if (s.errors.length) result.failures.push(`${s.errors.length} fatal error(s): ${s.errors.map((e) => `${e.type}/${e.details}`).join(', ')}`);
    if (s.played_seconds < o.minSeconds) result.failures.push(`played ${s.played_seconds.toFixed(3)} s < ${o.minSeconds} s${s.ended ? ' (the stream ended)' : ''}`);
    if (o.expectLevels !== null && s.levels.length !== o.expectLevels) result.failures.push(`found ${s.levels.length} level(s), expected ${o.expectLevels}`);
    if (s.played_seconds >= o.minSeconds && !(s.video.decoded_frames > 0)) result.failures.push('the clock advanced but no video frame was decoded');
  } catch (e) {
    result.failures.push(`${e.name || 'Error'}: ${e.message}`);
    result.hls_js ??= HLS_VERSION;
    result.puppeteer_core ??= PUPPETEER_VERSION;
    result.levels ??= [];
    result.played_seconds ??= 0;
    result.errors ??= [];
    result.buffered_ranges ??= [];
    result.fragments_loaded ??= 0;
  } finally {
    result.wall_seconds = Number(((Date.now() - t0) / 1000).toFixed(3));
    if (browser) await browser.close().catch(() => {});
    server.close();
  }
  result.ok = result.failures.length === 0;
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  if (!result.ok) process.stderr.write(`play.mjs: FAIL: ${result.failures.join('; ')}\n`);
  process.exit(result.ok ? 0 : 1);
}

main().catch((e) => { process.stderr.write(`play.mjs: ${e.stack || e}\n`); process.exit(1); });
