// The rollouts view of the operator console's page (#/rollouts): a form that starts a staged rollout of a desired
// config or of an image, and every rollout with its waves, each box's state and failure reason, and the
// operator's actions (pause, resume, abort, rollback). Uses esc() and api() of app.js; refreshed with the rest of
// the page. The form is built once, so a refresh never takes a field the operator is typing in.
'use strict';

// POSTs carry a JSON content type: the console refuses others, so a form on another site cannot act with the
// login the browser holds.
async function post(path, body) {
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(answer.error ?? `${path}: HTTP ${r.status}`);
  return answer;
}

const ACTIONS = {
  pause: ['running'],
  resume: ['paused', 'halted'],
  abort: ['running', 'paused', 'halted', 'rolling_back'],
  rollback: ['running', 'paused', 'halted', 'aborted', 'completed'],
};

// A bundle is named by its address, or by its swarm root (64 hex digits) and the peers that seed it: the
// boxes then fetch it from the site's swarm (the `update` command's two forms).
function bundleOf(form, prefix) {
  const where = form[`${prefix}url`].value.trim();
  if (!where) return null;
  const what = { sha256: form[`${prefix}sha256`].value.trim(), version: form[`${prefix}version`].value.trim() };
  if (/^[0-9a-fA-F]{64}$/.test(where)) {
    return { swarm: where, peers: form[`${prefix}peers`].value.trim(), ...what };
  }
  return { url: where, ...what };
}

function specOf(form) {
  const spec = {
    selector: form.selector.value.trim(),
    canary: Number(form.canary.value),
    waves: form.waves.value.split(',').map((w) => w.trim()).filter(Boolean).map(Number),
    soak_s: Number(form.soak.value),
    report_timeout_s: Number(form.timeout.value),
    max_failure_ratio: Number(form.failures.value),
    auto_rollback: form.auto.checked,
  };
  if (form.kind.value === 'image') {
    spec.image = bundleOf(form, '');
    const back = bundleOf(form, 'rb-');
    if (back) spec.rollback_image = back;
  } else {
    try {
      spec.config = JSON.parse(form.config.value);
    } catch (e) {
      throw new Error(`config: ${e.message}`);
    }
  }
  return spec;
}

function targetState(r, t) {
  const s = t.state;
  const what = r.spec.image ? `image ${r.spec.image.version}` : `v${t.version}`;
  const old = r.spec.rollback_image ? `image ${r.spec.rollback_image.version}` : `v${s.version}`;
  switch (s.state) {
    case 'sent': return [`sent ${what}`, ''];
    case 'applied': return [`applied ${what}`, ''];
    case 'failed': return ['failed', s.reason];
    case 'rolling_back': return [`rolling back to ${old}`, ''];
    case 'rolled_back': return [`rolled back to ${old}`, ''];
    case 'rollback_failed': return ['rollback failed', s.reason];
    default: return [s.state, ''];
  }
}

function rolloutHtml(r) {
  const change = r.spec.image ? `image ${r.spec.image.version}` : `config ${JSON.stringify(r.spec.config)}`;
  const buttons = Object.entries(ACTIONS).filter(([, phases]) => phases.includes(r.phase))
    .map(([a]) => `<button data-action="${a}" data-id="${esc(r.id)}">${a}</button>`).join(' ');
  const rows = r.targets.map((t) => {
    const [state, why] = targetState(r, t);
    const answer = t.answer === undefined ? '' : JSON.stringify(t.answer);
    return `<tr data-device="${esc(t.device)}" data-state="${esc(t.state.state)}">
      <td><a href="#/device/${encodeURIComponent(t.device)}">${esc(t.device)}</a></td><td class="num">${t.wave + 1}</td>
      <td>${esc(state)}</td><td>${esc(why)}</td><td class="muted">${esc(answer)}</td></tr>`;
  }).join('');
  return `<section class="rollout" data-rollout="${esc(r.id)}" data-phase="${esc(r.phase)}">
    <h3>rollout ${esc(r.id)} <span class="phase ${esc(r.phase)}">${esc(r.phase.replace('_', ' '))}</span>
      <span class="muted">wave ${Math.min(r.wave + 1, r.waves)} of ${r.waves} · ${esc(r.spec.selector)} · ${esc(change)}</span>
      ${buttons}</h3>
    ${r.note ? `<p class="muted">${esc(r.note)}</p>` : ''}
    <table><thead><tr><th>box</th><th>wave</th><th>state</th><th>why</th><th>last answer</th></tr></thead>
      <tbody>${rows}</tbody></table></section>`;
}

const ROLLOUT_FORM = `<form id="start-rollout" class="rollout-form">
    <label>boxes <input name="selector" placeholder="label.site=ams" required></label>
    <label>change <select name="kind"><option value="config">desired config</option><option value="image">image</option></select></label>
    <label class="for-config">config (JSON) <textarea name="config" rows="2" cols="40">{"session_limit": 4}</textarea></label>
    <fieldset class="for-image" hidden><legend>signed bundle: its address, or its swarm root and seeders</legend>
      <input name="url" placeholder="https://…/edge-1.2.raucb or swarm root" size="36">
      <input name="peers" placeholder="seeders IP:PORT,… (swarm)" size="20">
      <input name="sha256" placeholder="sha256" size="20"><input name="version" placeholder="version" size="10"></fieldset>
    <fieldset class="for-image" hidden><legend>rollback bundle (the version the boxes run now)</legend>
      <input name="rb-url" placeholder="https://…/edge-1.1.raucb or swarm root" size="36">
      <input name="rb-peers" placeholder="seeders IP:PORT,… (swarm)" size="20">
      <input name="rb-sha256" placeholder="sha256" size="20"><input name="rb-version" placeholder="version" size="10"></fieldset>
    <label>canary <input name="canary" type="number" min="0" value="1" size="3"></label>
    <label>waves % <input name="waves" value="25,50" size="8"></label>
    <label>soak s <input name="soak" type="number" min="0" value="60" size="5"></label>
    <label>report timeout s <input name="timeout" type="number" min="1" value="120" size="5"></label>
    <label>halt above failed share <input name="failures" type="number" min="0" max="1" step="0.05" value="0" size="4"></label>
    <label><input name="auto" type="checkbox"> roll back when halted</label>
    <button type="submit">start rollout</button> <span id="start-result"></span>
  </form><div id="rollouts"></div>`;

function bindRolloutForm(form, again) {
  form.kind.addEventListener('change', () => {
    const image = form.kind.value === 'image';
    form.querySelectorAll('.for-image').forEach((e) => { e.hidden = !image; });
    form.querySelector('.for-config').hidden = image;
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = document.getElementById('start-result');
    try {
      const r = await post('/api/rollouts', specOf(form));
      out.textContent = `started rollout ${r.id} over ${r.targets.length} boxes`;
      out.className = '';
      again();
    } catch (e) {
      out.textContent = e.message;
      out.className = 'error';
    }
  });
  document.getElementById('rollouts').addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    b.disabled = true;
    const out = document.getElementById('start-result');
    try {
      await post(`/api/rollouts/${encodeURIComponent(b.dataset.id)}/${b.dataset.action}`);
      out.textContent = `${b.dataset.action}: rollout ${b.dataset.id}`;
      out.className = '';
    } catch (e) {
      out.textContent = e.message;
      out.className = 'error';
    }
    again();
  });
}

// The view: newest rollout first. `again` asks the page for a refresh (after an action).
async function rolloutsView(view, again) {
  const rollouts = await api('/api/rollouts');
  if (!document.getElementById('start-rollout')) {
    view.innerHTML = ROLLOUT_FORM;
    bindRolloutForm(document.getElementById('start-rollout'), again);
  }
  const html = rollouts.slice().reverse().map(rolloutHtml).join('') || '<p class="muted">no rollouts yet</p>';
  const list = document.getElementById('rollouts');
  if (list.dataset.html !== html) {
    list.innerHTML = html;
    list.dataset.html = html;
  }
}
