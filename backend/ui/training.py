"""The training section: idle / queued / running with the job's progress (Job.progress: phase,
epoch, step, ETA) and the last error, kept current by polling GET /projects/<id>/training."""
from __future__ import annotations

from backend.jobs.runner import FAILED
from backend.ui.html import esc, script_json


def training_status(service, pid: str) -> dict:
    slot = service.jobs.status(pid)
    jobs = service.jobs.jobs(pid)
    finished = [j for j in jobs if j.finished_at]
    failed = [j for j in finished if j.state == FAILED]
    state = "running" if slot["running"] else ("queued" if slot["pending"] else "idle")
    last = finished[-1].to_dict() if finished else None
    return {
        "project": pid, "state": state, "running": slot["running"], "pending": slot["pending"],
        "last": last, "last_error": ({"job": failed[-1].id, "error": failed[-1].error, "at": failed[-1].finished_at}
                                     if failed else None),
        "model_version": service.serving.model_version(pid),
        "annotations_since_training": service.counter.count(pid),
    }


def training_section(pid: str, status: dict) -> str:
    return ("<h2>Training</h2><div id='training' data-project='" + esc(pid) + "'>"
            "<p><b id='train-state'>" + esc(status["state"]) + "</b> <span id='train-detail'></span></p>"
            "<p><span class='progress'><i id='train-bar' style='width:0'></i></span> "
            "<span id='train-progress' class='small'></span></p>"
            "<p id='train-last' class='small muted'></p><p id='train-error' class='small err'></p>"
            "<p id='train-new' class='small'></p>"
            "<button id='train-now' onclick=\"trainNow('" + esc(pid) + "')\">train now</button> "
            "<button id='train-accurate' title='the accurate preset: a fine-tuned network, minutes; "
            "serves only if better' onclick=\"trainNow('" + esc(pid) + "', 'accurate')\">train accurate now</button> "
            "<span id='train-msg' class='small'></span></div>"
            f"<script>window.TRAINING = {script_json(status)};</script>")


SCRIPT = r"""
function describeProgress(p) {
  if (!p) return '';
  const parts = [p.phase || ''];
  if (p.epochs) parts.push('epoch ' + (p.epoch || 0) + '/' + p.epochs);
  if (p.steps) parts.push('step ' + (p.step || 0) + '/' + p.steps);
  if (p.eta_s != null) parts.push('ETA ' + Math.round(p.eta_s) + ' s');
  return parts.filter(Boolean).join(' · ');
}
function showTraining(s) {
  const job = s.running || s.pending;
  document.getElementById('train-state').textContent = s.state;
  document.getElementById('train-detail').textContent = job ? ('job ' + job.id + ' (' + job.reason + ')') : '';
  const p = s.running ? s.running.progress : null;
  document.getElementById('train-progress').textContent = describeProgress(p);
  const frac = p && p.steps ? Math.min(1, (p.step || 0) / p.steps) : 0;
  document.getElementById('train-bar').style.width = (100 * frac) + '%';
  const last = s.last;
  let text = '';
  if (last) {
    const r = last.result || {};
    const t = r.trained || {};
    text = 'last job ' + last.id + ': ' + last.state + (r.version ? ' → ' + r.version + (r.serving ? ' (serving)' : ' (candidate)') : '')
      + (t.epochs ? ', trained ' + t.epoch + '/' + t.epochs + ' epochs' : '')
      + (last.state !== 'done' && last.progress ? ' — stopped at ' + describeProgress(last.progress) : '');
  }
  document.getElementById('train-last').textContent = text;
  const msg = document.getElementById('train-msg');
  if (last && msg.dataset.job === last.id) { msg.textContent = ''; delete msg.dataset.job; }
  const err = s.last_error;
  document.getElementById('train-error').textContent = err ? ('last error (job ' + err.job + '): ' + err.error) : '';
  if (window.TRAINING && s.model_version !== window.TRAINING.model_version) {
    document.getElementById('train-new').innerHTML = 'now serving <b></b>: <a href="">reload the page</a> for its metrics';
    document.querySelector('#train-new b').textContent = s.model_version;
  }
  if (last && window.TRAINING && (!window.TRAINING.last || window.TRAINING.last.id !== last.id) && last.result && last.result.version
      && !document.querySelector('tr[data-version="' + last.result.version + '"]')) {
    document.getElementById('train-new').innerHTML = 'new version <b></b>: <a href="">reload the page</a> to see it';
    document.querySelector('#train-new b').textContent = last.result.version;
  }
}
async function pollTraining() {
  const box = document.getElementById('training');
  try {
    const r = await fetch('/projects/' + box.dataset.project + '/training', {cache: 'no-store'});
    if (r.ok) showTraining(await r.json());
  } catch (e) {}
  setTimeout(pollTraining, 1000);
}
async function trainNow(project, preset) {
  const msg = document.getElementById('train-msg');
  msg.textContent = 'starting…';
  const ask = {reason: 'train now (model page)'};
  if (preset) ask.preset = preset;
  const r = await fetch('/projects/' + project + '/train', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(ask)});
  const body = await r.json();
  msg.textContent = r.ok ? ('job ' + body.job + ' ' + body.status) : (body.error || r.statusText);
  if (r.ok) msg.dataset.job = body.job;
  msg.className = 'small ' + (r.ok ? 'ok' : 'err');
}
document.addEventListener('DOMContentLoaded', () => { if (window.TRAINING) showTraining(window.TRAINING); pollTraining(); });
"""
