"""The production version on the model page: which version applications get from `/classify` (apart
from the serving one that labeling moves), who deployed what when with the metrics it had then, a
rollback button, and the project's API key (its hint only; a new one is shown once). The buttons
are wired by static/page.js and post JSON (Content-Type: application/json), so no cross-site form
can press them."""

from __future__ import annotations

from backend.ui.html import esc, num, pct, when


def deploy_button(pid: str, vid: str) -> str:
    """The versions table's "deploy to production" button of one version."""
    return (
        f"<button class='deploy' data-action='deploy' data-project='{esc(pid)}' data-version='{esc(vid)}'>"
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
            f"<button data-action='rollback-production' data-project='{esc(pid)}'>roll back</button> "
            f"<a href='/projects/{esc(pid)}/versions/{esc(production)}/export'>download (ONNX)</a></p>"
        )
    hint = (
        f"API key <code>{esc(str(key.get('hint')))}</code> made {when(key.get('created_at'))}"
        if key
        else "no API key: <code>/classify</code> answers on this machine only (or with basic auth)"
    )
    out.append(
        f"<p class='small'>{hint} <button data-action='new-api-key' data-project='{esc(pid)}'>new API key</button></p>"
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
