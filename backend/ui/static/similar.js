// The model page's similar-photos panel (backend/ui/gallery.py's #similar, under the latest batch): a
// plain click on a photo of the batch shows its nearest neighbours by the backend's embeddings
// (GET /projects/<id>/tasks/<task>/similar); the ticked ones get one label in one action
// (POST /projects/<id>/label-like), written to Label Studio as the chosen person's. A script of its own,
// served as /static/similar.js (the page's policy runs no inline script), so that static/page.js keeps
// the page's other buttons. Loaded at the top of the body, before the gallery: its click listener is on
// the document before any photo is on screen.
'use strict';
(() => {
  const byId = id => document.getElementById(id);

  function sendJson(url, body) {
    return fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  }

  // -- the panel's cards: the clicked photo first, then its neighbours, each with a box to tick ------------
  function similarCard(item, isQuery) {
    const card = document.createElement('div');
    card.className = 'card';
    card.dataset.task = item.task;
    const img = document.createElement('img');
    img.src = item.image; img.alt = 'task ' + item.task; img.loading = 'lazy';
    const lab = document.createElement('div');
    lab.className = 'lab';
    const pred = document.createElement('span');
    pred.className = 'pred'; pred.textContent = item.predicted || 'no prediction';
    const sim = document.createElement('span');
    sim.className = 'cv'; sim.textContent = isQuery ? 'this one' : item.similarity.toFixed(2);
    lab.append(pred, sim);
    const known = document.createElement('div');
    known.className = item.label ? 'small' : 'small muted';
    known.textContent = item.label ? 'labeled: ' + item.label : 'not labeled';
    const conf = document.createElement('div');
    conf.className = 'small muted';
    conf.textContent = item.confidence == null ? 'no confidence' : 'confidence ' + Math.round(100 * item.confidence) + '%';
    const pick = document.createElement('label');
    pick.className = 'small';
    const box = document.createElement('input');
    box.type = 'checkbox'; box.className = 'pick'; box.value = item.task;
    pick.append(box, ' select ');
    const link = document.createElement('a');
    link.href = item.link; link.target = '_blank'; link.rel = 'noopener'; link.textContent = '#' + item.task;
    pick.append(link);
    card.append(img, lab, known, conf, pick);
    return card;
  }

  function fillLabels(body) {
    const select = byId('similar-label');
    select.replaceChildren(...body.classes.map(c => new Option(c, c)));
    select.value = body.query.label || body.query.predicted || body.classes[0];
  }

  async function fillAnnotators(project) {
    const select = byId('similar-annotator');
    if (select.options.length) return;
    const answer = await fetch('/projects/' + project + '/annotators', {cache: 'no-store'});
    if (!answer.ok) return;  // the action then names the backend's own Label Studio user
    const body = await answer.json();
    select.replaceChildren(...body.people.map(p => new Option(p.email, p.id, false, p.id === body.default)));
  }

  async function showSimilar(project, task, keepMessage) {
    const panel = byId('similar');
    panel.hidden = false;
    panel.dataset.project = project;
    panel.dataset.task = task;
    byId('similar-title').textContent = 'Similar to task ' + task;
    const info = byId('similar-info');
    info.textContent = 'looking…';
    if (!keepMessage) byId('similar-msg').textContent = '';
    const answer = await fetch('/projects/' + project + '/tasks/' + task + '/similar?k=8', {cache: 'no-store'});
    const body = await answer.json();
    const cards = byId('similar-cards');
    cards.replaceChildren();
    if (!answer.ok) { info.textContent = body.error || answer.statusText; return; }
    info.textContent = 'its ' + body.neighbours.length + ' most similar of ' + body.collection
      + ' predicted photos (cosine similarity of the embeddings, model ' + (body.version || 'none yet')
      + '). Tick the ones that look like it, choose their label and who labels them.';
    cards.append(similarCard(body.query, true), ...body.neighbours.map(n => similarCard(n, false)));
    fillLabels(body);
    await fillAnnotators(project);
    if (!keepMessage) panel.scrollIntoView({block: 'start'});
  }

  function labelLikeText(body) {
    const n = body.created.length;
    let text = 'Labeled ' + n + (n === 1 ? ' photo' : ' photos') + ' as ' + body.label
      + ' in Label Studio, as ' + body.annotator.email;
    if (body.unchanged.length) text += '; ' + body.unchanged.length + ' had that label already';
    if (body.failed.length) text += '; ' + body.failed.length + ' failed: ' + body.failed[0].error;
    return text + (n ? '. The next training learns from them.' : '.');
  }

  async function labelLike() {
    const panel = byId('similar');
    const msg = byId('similar-msg');
    const ids = [...panel.querySelectorAll('input.pick:checked')].map(b => Number(b.value));
    if (!ids.length) { msg.textContent = 'tick the photos to label first'; msg.className = 'small err'; return; }
    const ask = {task_ids: ids, label: byId('similar-label').value};
    const who = byId('similar-annotator').value;
    if (who) ask.annotator = Number(who);
    msg.textContent = 'labeling ' + ids.length + '…'; msg.className = 'small';
    const answer = await sendJson('/projects/' + panel.dataset.project + '/label-like', ask);
    const body = await answer.json();
    if (!answer.ok) { msg.textContent = body.error || answer.statusText; msg.className = 'small err'; return; }
    msg.textContent = labelLikeText(body);
    msg.className = body.failed.length ? 'small err' : 'small ok';
    showSimilar(panel.dataset.project, panel.dataset.task, true);
  }

  // -- wiring: a plain click on a card of the batch (not ctrl/shift: those still open Label Studio) ----------
  document.addEventListener('click', ev => {
    const card = ev.target.closest('#gallery .card');
    if (card && ev.button === 0 && !(ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey)) {
      ev.preventDefault();
      showSimilar(byId('gallery').dataset.project, card.dataset.task);
      return;
    }
    const button = ev.target.closest('button[data-action]');
    if (!button) return;
    if (button.dataset.action === 'label-like') labelLike();
    else if (button.dataset.action === 'similar-close') byId('similar').hidden = true;
  });
})();
