// The behaviour of the backend's pages (the model page and the metrics page), served as
// /static/page.js so that their Content-Security-Policy allows no inline script. Nothing here runs
// from an attribute: buttons say what they do in data-action (with data-project, data-version,
// data-preset) and are wired by one click listener; the data rendered server-side comes from
// <script type="application/json"> blocks (#training-data, #params-data), which are never executed.
// Every change is a JSON request (Content-Type: application/json), so no cross-site form can make one.
// The model page's other scripts have one job each: static/similar.js (the similar-photos panel) and
// static/map.js (the embedding map).
'use strict';
(() => {
  const byId = id => document.getElementById(id);

  function readData(id) {
    const block = byId(id);
    return block ? JSON.parse(block.textContent) : null;
  }

  function sendJson(url, body, method = 'POST') {
    return fetch(url, {method, headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  }

  async function reloadOrSay(answer) {
    if (answer.ok) location.reload(); else alert((await answer.json()).error || answer.statusText);
  }

  // -- versions: serve one (model page: "promote" / "serve this"; metrics page: asks first) ----------
  function serveVersion(project, version) {
    return sendJson('/projects/' + project + '/rollback', {version}).then(reloadOrSay);
  }

  // -- production: deploy, roll back, a new API key -----------------------------------------------------
  function deployVersion(project, version) {
    if (confirm('Deploy ' + version + ' to production? Applications calling /classify get its answers from now on.'))
      sendJson('/projects/' + project + '/deploy', {version}).then(reloadOrSay);
  }

  function rollbackProduction(project) {
    if (confirm('Roll production back to the version deployed before?'))
      sendJson('/projects/' + project + '/deploy', {rollback: true}).then(reloadOrSay);
  }

  async function newApiKey(project) {
    if (!confirm('Make a new API key? The old one stops working.')) return;
    const answer = await sendJson('/projects/' + project + '/api-key', {});
    const body = await answer.json();
    if (!answer.ok) { alert(body.error || answer.statusText); return; }
    const out = byId('newkey');
    out.textContent = body.key;
    out.parentElement.hidden = false;
  }

  // -- training: status polled every second, "train now" ------------------------------------------------
  function describeProgress(p) {
    if (!p) return '';
    const parts = [p.phase || ''];
    if (p.epochs) parts.push('epoch ' + (p.epoch || 0) + '/' + p.epochs);
    if (p.steps) parts.push('step ' + (p.step || 0) + '/' + p.steps);
    if (p.eta_s != null) parts.push('ETA ' + Math.round(p.eta_s) + ' s');
    return parts.filter(Boolean).join(' · ');
  }

  function lastJobText(last) {
    if (!last) return '';
    const r = last.result || {};
    const t = r.trained || {};
    return 'last job ' + last.id + ': ' + last.state
      + (r.version ? ' → ' + r.version + (r.serving ? ' (serving)' : ' (candidate)') : '')
      + (t.epochs ? ', trained ' + t.epoch + '/' + t.epochs + ' epochs' : '')
      + (last.state !== 'done' && last.progress ? ' — stopped at ' + describeProgress(last.progress) : '');
  }

  function sayNew(text, version) {
    byId('train-new').innerHTML = text;
    document.querySelector('#train-new b').textContent = version;
  }

  function showTraining(s, first) {
    const job = s.running || s.pending;
    byId('train-state').textContent = s.state;
    byId('train-detail').textContent = job ? ('job ' + job.id + ' (' + job.reason + ')') : '';
    const p = s.running ? s.running.progress : null;
    byId('train-progress').textContent = describeProgress(p);
    const frac = p && p.steps ? Math.min(1, (p.step || 0) / p.steps) : 0;
    byId('train-bar').style.width = (100 * frac) + '%';
    const last = s.last;
    byId('train-last').textContent = lastJobText(last);
    const msg = byId('train-msg');
    if (last && msg.dataset.job === last.id) { msg.textContent = ''; delete msg.dataset.job; }
    const err = s.last_error;
    byId('train-error').textContent = err ? ('last error (job ' + err.job + '): ' + err.error) : '';
    if (s.model_version !== first.model_version)
      sayNew('now serving <b></b>: <a href="">reload the page</a> for its metrics', s.model_version);
    if (last && (!first.last || first.last.id !== last.id) && last.result && last.result.version
        && !document.querySelector('tr[data-version="' + CSS.escape(last.result.version) + '"]'))
      sayNew('new version <b></b>: <a href="">reload the page</a> to see it', last.result.version);
  }

  async function pollTraining(project, first) {
    try {
      const answer = await fetch('/projects/' + project + '/training', {cache: 'no-store'});
      if (answer.ok) showTraining(await answer.json(), first);
    } catch (e) { /* the backend restarting: try again in a second */ }
    setTimeout(() => pollTraining(project, first), 1000);
  }

  async function trainNow(project, preset) {
    const msg = byId('train-msg');
    msg.textContent = 'starting…';
    const ask = {reason: 'train now (model page)'};
    if (preset) ask.preset = preset;
    const answer = await sendJson('/projects/' + project + '/train', ask);
    const body = await answer.json();
    msg.textContent = answer.ok ? ('job ' + body.job + ' ' + body.status) : (body.error || answer.statusText);
    if (answer.ok) msg.dataset.job = body.job;
    msg.className = 'small ' + (answer.ok ? 'ok' : 'err');
  }

  // -- the parameters form: only what differs from the defaults is sent ----------------------------------
  function formValue(el) {
    const raw = el.value.trim();
    if (el.tagName === 'SELECT') return raw;
    if (raw === '') return null;
    const n = Number(raw);
    return Number.isNaN(n) ? raw : n;
  }

  function paramsBody(form, P) {
    const body = {};
    for (const [k, v] of Object.entries(P.explicit)) if (!P.fields.includes(k)) body[k] = v;
    for (const name of P.fields) {
      const v = formValue(form.elements[name]);
      if (v !== null && v !== P.defaults[name]) body[name] = v;
    }
    return body;
  }

  async function saveParams(form, P) {
    const body = paramsBody(form, P);
    for (const m of form.querySelectorAll('.msg')) {
      m.classList.remove('err');
      if (m.dataset.help === undefined) m.dataset.help = m.innerHTML;
      m.innerHTML = m.dataset.help;
    }
    const msg = byId('params-msg');
    msg.textContent = 'saving…'; msg.className = 'small';
    const answer = await sendJson('/projects/' + form.dataset.project + '/params', body, 'PUT');
    const said = await answer.json();
    if (answer.ok) {
      P.explicit = said.params;
      msg.textContent = 'saved'; msg.className = 'small ok';
      return;
    }
    let placed = false;
    for (const [name, text] of Object.entries(said.fields || {})) {
      const slot = form.querySelector('.msg[data-for="' + CSS.escape(name) + '"]');
      if (slot) { slot.textContent = text; slot.classList.add('err'); placed = true; }
    }
    msg.textContent = placed ? 'not saved: see the messages above' : (said.error || answer.statusText);
    msg.className = 'small err';
  }

  // -- the latest batch: filtered by predicted label, sorted by confidence or age -------------------------
  function arrangeGallery() {
    const box = byId('gallery');
    if (!box) return;
    const want = byId('gallery-filter').value;
    const how = byId('gallery-sort').value;
    const cards = [...box.querySelectorAll('.card')];
    const conf = c => c.dataset.conf === '' ? 2 : parseFloat(c.dataset.conf);
    cards.sort((a, b) => how === 'newest' ? a.dataset.order - b.dataset.order
      : how === 'uncertain' ? conf(a) - conf(b) : conf(b) - conf(a));
    let shown = 0;
    for (const c of cards) {
      const on = !want || c.dataset.label === want;
      c.style.display = on ? '' : 'none';
      shown += on;
      box.appendChild(c);
    }
    byId('gallery-count').textContent = shown + ' shown';
  }

  // -- wiring ------------------------------------------------------------------------------------------------
  const ACTIONS = {
    promote: b => serveVersion(b.dataset.project, b.dataset.version),
    serve: b => {
      if (confirm('Serve ' + b.dataset.version + ' for project ' + b.dataset.project + '?'))
        serveVersion(b.dataset.project, b.dataset.version);
    },
    deploy: b => deployVersion(b.dataset.project, b.dataset.version),
    'rollback-production': b => rollbackProduction(b.dataset.project),
    'new-api-key': b => newApiKey(b.dataset.project),
    train: b => trainNow(b.dataset.project, b.dataset.preset),
  };

  // listening on the document from the start (this script is loaded in <head>, before the body):
  // a button on screen always has its handler
  document.addEventListener('click', ev => {
    const button = ev.target.closest('button[data-action]');
    if (button && ACTIONS[button.dataset.action]) ACTIONS[button.dataset.action](button);
  });
  let params = null;  // the form's data (#params-data), read at the first save; each save updates it
  document.addEventListener('submit', ev => {
    if (ev.target.id !== 'params') return;
    params = params || readData('params-data');
    if (!params) return;
    ev.preventDefault();
    saveParams(ev.target, params);
  });
  document.addEventListener('change', ev => {
    if (ev.target.id === 'gallery-filter' || ev.target.id === 'gallery-sort') arrangeGallery();
  });

  function start() {
    arrangeGallery();
    const box = byId('training');
    const first = readData('training-data');
    if (box && first) {
      showTraining(first, first);
      pollTraining(box.dataset.project, first);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
