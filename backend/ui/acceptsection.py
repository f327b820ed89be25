"""Auto-accept on the model page and as JSON (`GET /projects/{id}/auto-accept`): per version the
threshold, coverage, estimated precision with its bound, the spot checks beside the target, and the
human work saved (tasks that need no person)."""

from __future__ import annotations

import html

from training.params import ParamError, TrainParams

esc = html.escape


def auto_accept_summary(m, pid: str) -> dict:
    """What auto-accept did for a project (`m`: the Backend)."""
    state = m.projects.state(pid)
    try:
        params = TrainParams.from_dict((state.params if state else None) or None)
    except ParamError:
        params = TrainParams()
    data = m.refresher.auto.store.load(pid)
    serving = m.serving.serving_version(pid)
    versions = sorted(data["versions"].values(), key=lambda v: v.get("at") or 0)
    current = data["versions"].get(serving) or {}
    checks = data["status"] or {}
    return {
        "project": pid,
        "enabled": params.auto_accept is not None,
        "target": params.auto_accept,
        "spot_check": params.spot_check,
        "serving": serving,
        "auto_user": data["auto_user"],
        "accepted": len(data["accepted"]),
        "pool": current.get("pool"),
        "human_work_saved": {"tasks": len(data["accepted"]), "share": current.get("coverage")},
        "spot_checks": {
            "pending": len(data["spot_pending"]),
            "answered": checks.get("checks", 0),
            "correct": checks.get("correct", 0),
            "precision": checks.get("precision"),
            "p_value": checks.get("p_value"),
        },
        "paused": bool(checks.get("paused")),
        "message": checks.get("message"),
        "versions": versions,
    }


def _pct(value) -> str:
    return "&ndash;" if value is None else f"{value:.1%}"


def _ratio(value) -> str:
    return "" if value is None else f" <span class='muted'>(ratio {value:.2f})</span>"


def auto_accept_section(m, pid: str) -> str:
    """The model page's auto-accept fragment (an empty string while auto-accept never ran)."""
    s = auto_accept_summary(m, pid)
    if not s["enabled"] and not s["versions"]:
        return ""
    state = "on" if s["enabled"] else "off"
    parts = [f"<h3>auto-accept ({state}{', target ' + _pct(s['target']) if s['target'] else ''})</h3>"]
    if s["paused"]:
        parts.append(f"<p class='err'><b>{esc(s['message'] or 'paused')}</b></p>")
    saved = s["human_work_saved"]
    spot = s["spot_checks"]
    share = f" ({_pct(saved['share'])} of the tasks without a human label)" if saved["share"] is not None else ""
    parts.append(
        f"<p>human work saved: <b>{saved['tasks']}</b> tasks labeled without a person"
        f"{share}. "
        f'Spot checks ({_pct(s["spot_check"])} of would-be-accepted tasks, tab "Spot checks"): '
        f"{spot['correct']} of {spot['answered']} right ({_pct(spot['precision'])}; target {_pct(s['target'])}), "
        f"{spot['pending']} waiting for a person.</p>"
    )
    parts.append(
        "<table><tr><th>version</th><th>target</th><th>threshold</th><th>labels above it</th>"
        "<th>their out-of-fold precision</th><th>estimated precision</th>"
        "<th title='estimated error times the calibration ratio bound (99 %)'>bound</th>"
        "<th>coverage</th><th>accepted</th><th>spot checks</th><th>paused</th></tr>"
    )
    for v in reversed(s["versions"]):
        rule = v.get("rule") or {}
        threshold = rule.get("threshold")
        parts.append(
            f"<tr{' class=serving' if v.get('version') == s['serving'] else ''}><td>{esc(str(v.get('version')))}</td>"
            f"<td>{_pct(v.get('target'))}</td>"
            f"<td>{'none (cannot keep the target yet)' if threshold is None else f'{threshold:.4f}'}</td>"
            f"<td>{rule.get('support', '&ndash;')}</td><td>{_pct(rule.get('observed_precision'))}</td>"
            f"<td>{_pct(rule.get('estimated_precision'))}</td><td>{_pct(rule.get('lower_bound'))}"
            f"{_ratio(rule.get('calibration_ratio'))}</td><td>{_pct(v.get('coverage'))}</td>"
            f"<td>{v.get('accepted', 0)} of {v.get('pool', 0)}</td><td>{v.get('spot_checks', 0)}</td>"
            f"<td>{'yes' if v.get('paused') else 'no'}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)
