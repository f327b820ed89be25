"""The production version on the model page: which version applications get from `/classify` (apart
from the serving one that labeling moves), who deployed what when with the metrics it had then, a
rollback button, and the project's API key (its hint only; a new one is shown once)."""

from __future__ import annotations

from backend.ui.html import esc, num, pct, when

# every button posts JSON (Content-Type: application/json), so no cross-site form can press it
SCRIPT = r"""
async function deployAction(project, body) {
  const r = await fetch('/projects/' + project + '/deploy', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  if (r.ok) location.reload(); else alert((await r.json()).error || r.statusText);
}
function deployVersion(project, version) {
  if (confirm('Deploy ' + version + ' to production? Applications calling /classify get its answers from now on.'))
    deployAction(project, {version});
}
function rollbackProduction(project) {
  if (confirm('Roll production back to the version deployed before?')) deployAction(project, {rollback: true});
}
async function newApiKey(project) {
  if (!confirm('Make a new API key? The old one stops working.')) return;
  const r = await fetch('/projects/' + project + '/api-key', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: '{}'});
  const body = await r.json();
  if (!r.ok) { alert(body.error || r.statusText); return; }
  const out = document.getElementById('newkey');
  out.textContent = body.key;
  out.parentElement.hidden = false;
}
"""


def deploy_button(pid: str, vid: str) -> str:
    """The versions table's "deploy to production" button of one version."""
    return (
        f"<button class='deploy' data-version='{esc(vid)}' onclick=\"deployVersion('{esc(pid)}','{esc(vid)}')\">"
        "deploy to production</button>"
    )


def production_section(pid: str, production: str | None, history: list[dict], key: dict | None) -> str:
    out = ["<h2>Production</h2>"]
    if production is None:
        out.append(
            "<p class='muted'>No production version yet: applications calling <code>/classify</code> get "
            "an error until one is deployed (“deploy to production” below, or <code>tasveer deploy "
            f"vNNNN --project {esc(pid)}</code>). Labeling keeps its own serving version.</p>"
        )
    else:
        last = history[-1] if history else {}
        out.append(
            f"<p>production <b id='production'>{esc(production)}</b> <span class='muted small'>since "
            f"{when(last.get('at'))}, by {esc(str(last.get('by') or '?'))}</span> "
            f"<button onclick=\"rollbackProduction('{esc(pid)}')\">roll back</button> "
            f"<a href='/projects/{esc(pid)}/versions/{esc(production)}/export'>download (ONNX)</a></p>"
        )
    hint = (
        f"API key <code>{esc(str(key.get('hint')))}</code> made {when(key.get('created_at'))}"
        if key
        else "no API key: <code>/classify</code> answers on this machine only (or with basic auth)"
    )
    out.append(
        f"<p class='small'>{hint} <button onclick=\"newApiKey('{esc(pid)}')\">new API key</button></p>"
        "<p hidden class='small'>new key (shown once; send it as <code>Authorization: Bearer &lt;key&gt;"
        "</code>): <code id='newkey'></code></p>"
    )
    if history:
        out.append(_history_table(history))
    return "".join(out)


def _history_table(history: list[dict]) -> str:
    rows = [
        "<table id='production-history'><tr><th class='l'>when</th><th class='l'>version</th>"
        "<th class='l'>by</th><th class='l'>via</th><th>accuracy then</th><th>macro F1</th>"
        "<th>calibration error</th><th class='l'>evaluated by</th></tr>"
    ]
    for entry in reversed(history):
        metrics = entry.get("metrics") or {}
        what = esc(str(entry.get("version")))
        if entry.get("rollback"):
            what += f" <span class='muted small'>(rollback from {esc(str(entry.get('previous')))})</span>"
        by, via = esc(str(entry.get("by") or "")), esc(str(entry.get("via") or ""))
        rows.append(
            f"<tr><td class='l nw'>{when(entry.get('at'))}</td><td class='l'>{what}</td>"
            f"<td class='l'>{by}</td><td class='l'>{via}</td>"
            f"<td>{pct(metrics.get('accuracy'))}</td><td>{num(metrics.get('macro_f1'))}</td>"
            f"<td>{num(metrics.get('ece'))}</td><td class='l small'>{esc(str(metrics.get('source') or ''))}"
            "</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)
