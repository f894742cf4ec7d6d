// The operator console's page: the fleet table (filter by label, board, encoder), one box's page (plots of
// its recent telemetry, its command history) and the rollouts (rollouts.js). Everything comes from the console's JSON API on the same origin,
// with the login the browser already holds; the view refreshes every REFRESH_MS without reloading.
'use strict';

const REFRESH_MS = 2000;
const filters = { label: '', board: '', encoder: '' };

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function num(v, digits) {
  return v === null || v === undefined ? '' : Number(v).toFixed(digits);
}

function ago(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function matches(d) {
  if (filters.board && (d.board ?? '') !== filters.board) return false;
  if (filters.encoder && (d.encoder ?? '') !== filters.encoder) return false;
  if (filters.label) {
    const [k, v] = filters.label.split('=');
    const have = (d.labels ?? {})[k.trim()];
    if (have === undefined || (v !== undefined && have !== v.trim())) return false;
  }
  return true;
}

function options(devices, key, selected) {
  const values = [...new Set(devices.map((d) => d[key] ?? '').filter((x) => x !== ''))].sort();
  return ['<option value="">all</option>']
    .concat(values.map((v) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(v)}</option>`))
    .join('');
}

function fleetRows(devices) {
  return devices.map((d) => {
    const state = d.online ? 'online' : 'offline';
    const image = [d.image_slot, d.image_version].filter(Boolean).join(' ');
    const config = d.desired_version === null ? '' : `${d.applied_version ?? '–'} / ${d.desired_version}`;
    const stake = d.stake_wei ? (Number(d.stake_wei) / 1e18).toFixed(2) : '';
    return `<tr data-device="${esc(d.device)}" data-online="${d.online}">
      <td><a href="#/device/${encodeURIComponent(d.device)}">${esc(d.device)}</a></td>
      <td><span class="state ${state}">${state}</span></td>
      <td>${esc(ago(d.last_seen_ms))}</td>
      <td>${esc(d.board)}</td><td>${esc(d.encoder)}</td>
      <td class="num">${esc(d.streams ?? '')}</td><td class="num">${num(d.fps, 1)}</td>
      <td class="num">${num(d.realtime_factor, 2)}</td><td class="num">${num(d.cpu_percent, 0)}</td>
      <td class="num">${num(d.temperature_c, 0)}</td><td>${esc(image)}</td>
      <td class="num">${esc(stake)}</td><td>${esc(config)}</td>
    </tr>`;
  }).join('');
}

// The fleet view: the filter bar is built once (a refresh never replaces a control the operator is using),
// the table and the filters' choices follow every refresh.
function fleetView(view, devices) {
  if (!document.getElementById('fleet')) {
    view.innerHTML = `<div class="filters">
        <label>label <input id="f-label" placeholder="site=ams"></label>
        <label>board <select id="f-board"></select></label>
        <label>encoder <select id="f-encoder"></select></label>
        <span class="muted" id="shown"></span>
      </div>
      <table id="fleet"><thead><tr>
        <th>box</th><th>state</th><th>last seen</th><th>board</th><th>encoder</th><th>streams</th><th>fps</th>
        <th>realtime</th><th>CPU %</th><th>°C</th><th>image</th><th>stake</th><th>config applied / desired</th>
      </tr></thead><tbody></tbody></table>`;
    const bind = (id, key, ev) => {
      const el = document.getElementById(id);
      el.value = filters[key];
      el.addEventListener(ev, () => { filters[key] = el.value; fleetView(view, lastDevices); });
    };
    bind('f-label', 'label', 'input');
    bind('f-board', 'board', 'change');
    bind('f-encoder', 'encoder', 'change');
  }
  for (const key of ['board', 'encoder']) {
    const el = document.getElementById(`f-${key}`);
    const choices = options(devices, key, filters[key]);
    if (el.dataset.choices !== choices) {
      el.innerHTML = choices;
      el.dataset.choices = choices;
    }
  }
  const shown = devices.filter(matches);
  document.getElementById('shown').textContent = `${shown.length} of ${devices.length} boxes`;
  document.querySelector('#fleet tbody').innerHTML = fleetRows(shown);
}

// A line plot of one telemetry figure over the kept history, drawn as SVG (no plotting library needed).
function plot(history, key, title, unit) {
  const pts = history.filter((s) => s[key] !== undefined && s[key] !== null).map((s) => [s.ts_ms, Number(s[key])]);
  const W = 360, H = 140, L = 40, B = 18;
  if (pts.length === 0) {
    return `<div class="plot"><h3>${esc(title)}</h3><svg class="empty" data-metric="${key}" data-points="0" viewBox="0 0 ${W} ${H}">
      <text class="axis" x="${W / 2}" y="${H / 2}" text-anchor="middle">no samples</text></svg></div>`;
  }
  const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (hi === lo) { hi += 1; lo = Math.max(0, lo - 1); }
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - 4);
  const y = (v) => 4 + (1 - (v - lo) / (hi - lo)) * (H - B - 8);
  const line = pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const span = Math.round((t1 - t0) / 1000);
  return `<div class="plot"><h3>${esc(title)}</h3>
    <svg data-metric="${key}" data-points="${pts.length}" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">
      <text class="axis" x="2" y="12">${esc(num(hi, 1))}${esc(unit)}</text>
      <text class="axis" x="2" y="${H - B}">${esc(num(lo, 1))}${esc(unit)}</text>
      <text class="axis" x="${W - 4}" y="${H - 4}" text-anchor="end">last ${span} s</text>
      <polyline points="${line}"></polyline>
    </svg></div>`;
}

function deviceView(d) {
  const t = d.telemetry ?? {};
  const online = (d.status?.state ?? '') === 'online';
  const results = (d.results ?? []).slice().reverse().map((r) => `<tr>
      <td>${esc(r.name ?? '')}</td><td>${esc(r.id ?? '')}</td><td>${r.ok ? 'ok' : 'failed'}</td>
      <td>${esc(r.ts_ms ? new Date(r.ts_ms).toLocaleTimeString() : '')}</td>
      <td>${esc(r.error ?? (r.result === undefined ? '' : JSON.stringify(r.result)))}</td></tr>`);
  const history = d.history ?? [];
  return `<p><a href="#/">← all boxes</a></p>
    <h2 id="device" data-device="${esc(d.id)}" data-online="${online}">${esc(d.id)}
      <span class="state ${online ? 'online' : 'offline'}">${online ? 'online' : 'offline'}</span></h2>
    <p class="muted">board ${esc(t.daemon?.board ?? '–')} · agent ${esc(t.agent_version ?? '–')} ·
      image ${esc(t.daemon?.image_slot ?? '–')} ${esc(t.daemon?.image_version ?? '')} ·
      labels ${esc(Object.entries(t.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '–')}</p>
    <div class="plots">
      ${plot(history, 'cpu_percent', 'CPU', ' %')}
      ${plot(history, 'fps', 'Output frames per second', '')}
      ${plot(history, 'realtime_factor', 'Realtime factor (slowest stream)', 'x')}
      ${plot(history, 'temperature_c', 'Temperature', ' °C')}
      ${plot(history, 'load1', 'Load (1 min)', '')}
      ${plot(history, 'streams', 'Streams', '')}
    </div>
    <h3>Commands</h3>
    <table id="commands"><thead><tr><th>command</th><th>id</th><th>result</th><th>at</th><th>detail</th></tr></thead>
      <tbody>${results.join('') || '<tr><td colspan="5" class="muted">none</td></tr>'}</tbody></table>`;
}

let busy = false;
let lastDevices = [];
async function refresh() {
  if (busy) return;
  busy = true;
  const view = document.getElementById('view');
  try {
    const m = location.hash.match(/^#\/device\/(.+)$/);
    const rolloutsShown = location.hash.startsWith('#/rollouts');
    document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('here', (a.hash === '#/rollouts') === rolloutsShown));
    const devices = await api('/api/devices');
    const online = devices.filter((d) => d.online).length;
    document.getElementById('summary').textContent = `${online} online, ${devices.length - online} offline`;
    lastDevices = devices;
    if (m) {
      view.innerHTML = deviceView(await api(`/api/devices/${m[1]}`));
    } else if (rolloutsShown) {
      await rolloutsView(view, () => setTimeout(refresh, 0));
    } else {
      fleetView(view, devices);
    }
    document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    document.getElementById('updated').innerHTML = `<span class="error">${esc(e.message)}</span>`;
  } finally {
    busy = false;
  }
}

window.addEventListener('hashchange', refresh);
refresh();
setInterval(refresh, REFRESH_MS);
