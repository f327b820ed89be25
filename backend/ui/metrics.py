"""The metrics page (`GET /metrics`): per project, accuracy over versions as a chart, the version
table with a rollback button each, per-class metrics and the confusion matrix of the serving
version, and the recent training jobs. Plain HTML + inline SVG, no external assets; the buttons are
wired by static/page.js (data-action='serve', which asks first)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from backend.inference.models import INITIAL_VERSION
from backend.ui.acceptsection import auto_accept_section
from backend.ui.html import METRICS_STYLE, document

esc = html.escape


def version_summary(mf: dict) -> dict:
    metrics = mf.get("metrics") or {}
    return {
        "version": mf.get("version"),
        "created_at": mf.get("created_at"),
        "mode": mf.get("mode"),
        "n_train": mf.get("n_train"),
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "metrics_source": mf.get("metrics_source"),
        "metrics_note": mf.get("metrics_note") or None,
        "parent": mf.get("parent"),
        "promotion": (mf.get("extra") or {}).get("promotion"),
        # unlabeled photos the head also learned from (semi-supervised; params `unlabeled`)
        "unlabeled": (mf.get("extra") or {}).get("unlabeled"),
    }


def _fmt(value, pct=False) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:.1%}" if pct else f"{value:.3f}"
    return esc(str(value))


def accuracy_chart(summaries: list[dict], serving: str, width: int = 520, height: int = 220) -> str:
    """Inline SVG: accuracy and macro F1 per version (oldest left), serving version ringed."""
    points = [s for s in summaries if s["accuracy"] is not None]
    if not points:
        return "<p class='muted'>No evaluated version yet.</p>"
    left, right, top, bottom = 44, 28, 14, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(points) - 1)

    def xy(i, v):
        return left + (i * step if len(points) > 1 else plot_w / 2), top + (1 - v) * plot_h

    out = [f"<svg width='{width}' height='{height}' role='img' aria-label='accuracy by version' class='chart'>"]
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + (1 - frac) * plot_h
        out.append(
            f"<line x1='{left}' x2='{width - right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>"
            f"<text x='{left - 6}' y='{y + 4:.1f}' font-size='11' text-anchor='end'>{frac:.0%}</text>"
        )
    for key, colour in (("macro_f1", "#e08a2c"), ("accuracy", "#2c6fbb")):
        coords = [xy(i, s[key]) for i, s in enumerate(points) if s[key] is not None]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='2'/>")
        for x, y in coords:
            out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}'/>")
    for i, s in enumerate(points):
        x, y = xy(i, s["accuracy"])
        if s["version"] == serving:
            out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='7' fill='none' stroke='#2a2' stroke-width='2'/>")
        if len(points) <= 12 or i % max(1, len(points) // 12) == 0:
            out.append(
                f"<text x='{x:.1f}' y='{height - bottom + 16}' font-size='11' "
                f"text-anchor='middle'>{esc(str(s['version']))}</text>"
            )
    out.append(
        f"<text x='{left}' y='{height - 6}' font-size='11' fill='#2c6fbb'>&#9632; accuracy</text>"
        f"<text x='{left + 90}' y='{height - 6}' font-size='11' fill='#e08a2c'>&#9632; macro F1</text>"
        f"<text x='{left + 180}' y='{height - 6}' font-size='11' fill='#2a2'>&#9675; serving</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _project_section(m, pid: str) -> list[str]:
    serving = m.serving.model_version(pid)
    manifests = m.serving.versions(pid)
    summaries = [version_summary(mf) for mf in manifests]
    parts = [
        f"<h2>Project {esc(pid)}</h2><p>serving: <b>{esc(serving)}</b> &middot; "
        f"<a href='/projects/{esc(pid)}/page'>model page</a></p>"
    ]
    if serving == INITIAL_VERSION:
        parts.append(
            "<p class='muted'>No trained version yet: cold start, every task gets the first "
            "label with score 1/C until the first annotations of two labels arrive.</p>"
        )
    if summaries:
        current = next((mf for mf in manifests if mf.get("version") == serving), None)
        metrics = (current or {}).get("metrics") or {}
        parts += _chart_row(pid, serving, summaries, metrics)
        parts += _version_table(pid, serving, manifests, summaries)
        parts += _per_class_table(serving, metrics)
    parts.append(auto_accept_section(m, pid))
    parts += _jobs_table(m.jobs.jobs(pid)[-10:])
    return parts


def _chart_row(pid: str, serving: str, summaries: list[dict], metrics: dict) -> list[str]:
    """Accuracy by version beside the serving version's confusion matrix (when it has one)."""
    parts = [f"<div class='row'><div><h3>accuracy by version</h3>{accuracy_chart(summaries, serving)}</div>"]
    if metrics.get("confusion_matrix"):
        src = f"/projects/{esc(pid)}/versions/{esc(serving)}/confusion.png"
        parts.append(
            f"<div><h3>{esc(serving)}: confusion matrix</h3><img src='{src}' alt='confusion matrix' width='420'></div>"
        )
    parts.append("</div>")
    return parts


def _serve_button(pid: str, summary: dict, is_serving: bool) -> str:
    if is_serving:
        return "serving"
    candidate = str(summary.get("promotion") or "").startswith("candidate")
    label = "promote" if candidate else "serve this"
    button = (
        f"<button data-action='serve' data-project='{esc(pid)}' "
        f"data-version='{esc(str(summary['version']))}'>{label}</button>"
    )
    if candidate:
        button += f" <span class='muted' title='{esc(summary['promotion'])}'>candidate</span>"
    return button


def _version_table(pid: str, serving: str, manifests: list[dict], summaries: list[dict]) -> list[str]:
    """Every version, newest first, with a button to serve (or promote) each but the serving one."""
    parts = [
        "<h3>versions</h3><table><tr><th>version</th><th>created</th><th>mode</th>"
        "<th>examples</th><th>accuracy</th><th>macro F1</th><th>evaluated by</th>"
        "<th>trigger</th><th></th></tr>"
    ]
    for mf, s in zip(reversed(manifests), reversed(summaries)):
        is_serving = s["version"] == serving
        trigger = (mf.get("extra") or {}).get("trigger")
        parts.append(
            f"<tr{' class=serving' if is_serving else ''}><td>{esc(str(s['version']))}</td>"
            f"<td>{_fmt((s['created_at'] or '')[:19].replace('T', ' '))}</td><td>{_fmt(s['mode'])}</td>"
            f"<td>{_fmt(s['n_train'])}</td><td>{_fmt(s['accuracy'], True)}</td>"
            f"<td>{_fmt(s['macro_f1'], True)}</td><td>{_fmt(s['metrics_source'])}</td>"
            f"<td>{_fmt(trigger)}</td><td>{_serve_button(pid, s, is_serving)}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _per_class_table(serving: str, metrics: dict) -> list[str]:
    if not metrics.get("per_class"):
        return []
    parts = [
        f"<h3>{esc(serving)}: per class</h3><table><tr><th>label</th><th>precision</th>"
        "<th>recall</th><th>F1</th><th>support</th></tr>"
    ]
    for label, row in metrics["per_class"].items():
        parts.append(
            f"<tr><td>{esc(label)}</td><td>{_fmt(row.get('precision'))}</td>"
            f"<td>{_fmt(row.get('recall'))}</td><td>{_fmt(row.get('f1'))}</td>"
            f"<td>{_fmt(row.get('support'))}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _jobs_table(jobs: list) -> list[str]:
    """The given training jobs, newest first."""
    if not jobs:
        return []
    parts = [
        "<h3>training jobs</h3><table><tr><th>job</th><th>state</th><th>trigger</th>"
        "<th>requests</th><th>seconds</th><th>result / error</th></tr>"
    ]
    for job in reversed(jobs):
        took = (job.finished_at - job.started_at) if job.finished_at and job.started_at else None
        outcome = job.error or ((job.result or {}).get("version") if isinstance(job.result, dict) else None)
        parts.append(
            f"<tr><td>{esc(job.id)}</td><td>{esc(job.state)}</td><td>{esc(job.reason)}</td>"
            f"<td>{job.requests}</td><td>{_fmt(took)}</td><td>{_fmt(outcome)}</td></tr>"
        )
    parts.append("</table>")
    return parts


def metrics_page(m, projects: list[str]) -> str:
    parts = [
        "<h1>tasveer ML backend</h1>",
        f"<p class='muted'>{esc(datetime.now(UTC).isoformat(timespec='seconds'))}</p>",
    ]
    if not projects:
        parts.append("<p>No project has been set up yet.</p>")
    for pid in projects:
        parts += _project_section(m, pid)
    return document("tasveer models", "".join(parts), METRICS_STYLE)
