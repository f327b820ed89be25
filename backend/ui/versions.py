"""The versions of a project as the page shows them: one row per version (metrics always with an
explanation when there are none or they are rough), the selected version's details, and the
learning curve."""

from __future__ import annotations

from backend.ui import svg
from backend.ui.deploysection import deploy_button
from backend.ui.html import esc, num, pct, seconds, when
from training.params import TrainParams

DEFAULTS = TrainParams().to_dict()


def version_row(mf: dict, serving: str | None, production: str | None = None) -> dict:
    metrics = mf.get("metrics") or {}
    params = mf.get("params") or {}
    promotion = str((mf.get("extra") or {}).get("promotion") or "")
    return {
        "version": mf.get("version"),
        "created_at": mf.get("created_at"),
        "mode": mf.get("mode"),
        "model": params.get("model"),
        "n_train": mf.get("n_train"),
        "hyperparameters": {k: v for k, v in params.items() if DEFAULTS.get(k, object()) != v},
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "ece": metrics.get("ece"),
        "n_eval": metrics.get("n"),
        "metrics_source": mf.get("metrics_source"),
        "metrics_note": mf.get("metrics_note") or _missing_note(mf),
        "train_seconds": mf.get("train_seconds"),
        "serving": mf.get("version") == serving,
        "production": production is not None and mf.get("version") == production,
        "candidate": promotion.startswith("candidate") and mf.get("version") != serving,
        "promotion": promotion or None,
        "trigger": (mf.get("extra") or {}).get("trigger"),
        "recipe": (mf.get("extra") or {}).get("recipe"),
    }


def _missing_note(mf: dict) -> str:
    if (mf.get("metrics") or {}).get("accuracy") is not None:
        return ""
    n = mf.get("n_train") or 0
    if mf.get("mode") == "finetune":
        return f"not evaluated: {n} labels leave no validation split; train again to evaluate"
    return f"not evaluated: {n} labels were too few when it was trained; train again to estimate"


def _metric_cell(row: dict, key: str) -> str:
    value = row[key]
    if value is not None:
        rough = row["metrics_source"] in ("leave-one-out", "validation split")
        mark = f"<sup title='{esc(row['metrics_note'] or row['metrics_source'])}'>*</sup>" if rough else ""
        return f"{pct(value) if key != 'ece' else num(value)}{mark}"
    if key != "accuracy":
        return ""
    return f"<span class='muted small'>{esc(row['metrics_note'] or 'not evaluated')}</span>"


def _params_text(hp: dict) -> str:
    if not hp:
        return "<span class='muted'>defaults</span>"
    return "<br>".join(f"{esc(k)}={esc(str(v))}" for k, v in sorted(hp.items()))


def versions_table(pid: str, rows: list[dict], selected: str | None) -> str:
    if not rows:
        return (
            "<p class='muted'>No trained version yet: label photos of at least two labels in Label "
            "Studio (or press “train now” once there are some).</p>"
        )
    out = [
        "<table id='versions'><tr><th class='l'>version</th><th class='l'>created</th><th>labels</th>"
        "<th class='l'>mode / model</th><th class='l'>hyperparameters</th><th>accuracy</th><th>macro F1</th>"
        "<th>calibration error</th><th class='l'>evaluated by</th><th>training time</th>"
        "<th class='l'>status</th></tr>"
    ]
    for r in reversed(rows):
        vid = esc(str(r["version"]))
        if r["serving"]:
            status = "<span class='tag serving'>serving</span>"
        else:
            verb = "promote" if r["candidate"] else "serve this"
            tag = (
                f"<span class='tag candidate' title='{esc(r['promotion'] or '')}'>candidate</span> "
                if r["candidate"]
                else ""
            )
            status = (
                f"{tag}<button data-action='promote' data-project='{esc(pid)}' data-version='{vid}'>{verb}</button>"
            )
        status += (
            " <span class='tag production'>production</span>"
            if r.get("production")
            else " " + deploy_button(pid, str(r["version"]))
        )
        status += f" <a class='small' href='/projects/{esc(pid)}/versions/{vid}/export'>download</a>"
        klass = " ".join(k for k, on in (("serving", r["serving"]), ("selected", r["version"] == selected)) if on)
        source = esc(r["metrics_source"] or "none")
        if r["metrics_source"] in ("leave-one-out", "validation split") and r["metrics_note"]:
            source += f"<br><span class='muted small'>{esc(r['metrics_note'])}</span>"
        out.append(
            f"<tr class='{klass}' data-version='{vid}'><td class='l'><a href='?version={vid}'>{vid}</a></td>"
            f"<td class='l nw'>{when(r['created_at'])}</td><td>{num(r['n_train'])}</td>"
            f"<td class='l'>{esc(str(r['mode']))}{' (accurate)' if r['recipe'] == 'accurate' else ''}"
            f"<br><span class='small muted'>{esc(str(r['model']))}</span></td>"
            f"<td class='l small'>{_params_text(r['hyperparameters'])}</td>"
            f"<td class='acc'>{_metric_cell(r, 'accuracy')}</td><td>{_metric_cell(r, 'macro_f1')}</td>"
            f"<td>{_metric_cell(r, 'ece')}</td><td class='l small'>{source}</td>"
            f"<td>{seconds(r['train_seconds'])}</td><td class='l'>{status}</td></tr>"
        )
    out.append(
        "</table><p class='small muted'>* a rough estimate from few labels (hover for why). "
        "Click a version for its details.</p>"
    )
    return "".join(out)


def selected_version(mf: dict | None) -> str:
    if mf is None:
        return ""
    vid = esc(str(mf.get("version")))
    metrics = mf.get("metrics") or {}
    head = f"<h2 id='selected'>Version {vid}</h2>"
    if not metrics.get("confusion_matrix"):
        note = mf.get("metrics_note") or _missing_note(mf)
        return head + f"<p class='muted'>{esc(note or 'No evaluation recorded.')}</p>"
    src = esc(str(mf.get("metrics_source") or ""))
    out = [
        head,
        f"<p class='small muted'>evaluated by {src} on {metrics.get('n')} photo(s)"
        + (f"; {esc(mf['metrics_note'])}" if mf.get("metrics_note") else "")
        + "</p><div class='row'>",
        "<div><h3>confusion matrix</h3>",
        svg.confusion_matrix(metrics["labels"], metrics["confusion_matrix"]),
        "</div><div><h3>per class</h3><table><tr><th class='l'>label</th><th>precision</th><th>recall</th>"
        "<th>F1</th><th>support</th></tr>",
    ]
    for label, row in (metrics.get("per_class") or {}).items():
        out.append(
            f"<tr><td class='l'>{esc(label)}</td><td>{num(row.get('precision'), 2)}</td>"
            f"<td>{num(row.get('recall'), 2)}</td><td>{num(row.get('f1'), 2)}</td>"
            f"<td>{num(row.get('support'))}</td></tr>"
        )
    out.append(
        "</table></div><div><h3>reliability diagram</h3>"
        f"{svg.reliability_diagram(metrics.get('reliability') or [])}"
        f"<p class='small muted'>calibration error (ECE) {num(metrics.get('ece'))}</p></div></div>"
    )
    return "".join(out)


def learning_curve(rows: list[dict]) -> str:
    points = [
        {
            "n": r["n_train"],
            "accuracy": r["accuracy"],
            "version": r["version"],
            "serving": r["serving"],
            "candidate": r["candidate"],
            "source": r["metrics_source"],
        }
        for r in rows
    ]
    return svg.learning_curve(points)
