"""What auto-accept remembers per project (`<data_dir>/projects/<id>/autoaccept.json`) and the
spot-check statistics built on it.

    auto_user      the id of the auto-accept user in the project's Label Studio
    accepted       task -> {annotation, label, confidence, version}: the labels it wrote
    spot_pending   task -> {label, confidence, version}: would-be-accepted tasks left to people
    checks         [{task, predicted, human, confidence, version}]: spot checks people answered
    versions       version -> what its threshold was and what it accepted (the model page's table)

Written by the refresh (one writer per project) and read by the webhook handler, which ignores
the webhooks of the backend's own annotations, and by the model page.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from training.atomic import write_json_atomic

ALPHA = 0.05  # auto-accept pauses when the spot checks reject "precision >= target" at this level
WINDOW = 100  # the newest spot checks that count (older ones judged older models)


def empty() -> dict:
    return {"auto_user": None, "accepted": {}, "spot_pending": {}, "checks": [], "versions": {}, "status": {}}


class AutoAcceptStore:
    def __init__(self, projects_root: Path):
        self.root = Path(projects_root)

    def path(self, pid: str) -> Path:
        return self.root / str(pid) / "autoaccept.json"

    def load(self, pid: str) -> dict:
        try:
            data = json.loads(self.path(pid).read_text())
        except (OSError, ValueError):
            return empty()
        return {**empty(), **data} if isinstance(data, dict) else empty()

    def save(self, pid: str, data: dict) -> None:
        write_json_atomic(self.path(pid), data)

    def own_annotation(self, pid: str, annotation_ids, completed_by=None) -> bool:
        """Whether annotation ids (from a webhook) are all the backend's own auto-accepted labels."""
        data = self.load(pid)
        if completed_by is not None and completed_by == data.get("auto_user"):
            return True
        ours = {int(a["annotation"]) for a in data["accepted"].values()}
        ids = [i for i in annotation_ids if isinstance(i, int)]
        return bool(ids) and all(i in ours for i in ids)


def is_spot_check(task_id: int, share: float) -> bool:
    """A stable draw per task: the same task is a spot check every time, whatever the model."""
    digest = hashlib.sha256(f"tasveer-spot-check:{int(task_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def check_status(checks: list[dict], target: float | None) -> dict:
    """Realised precision of the newest WINDOW spot checks beside the target, and whether they fall
    below it beyond chance: a one-sided binomial test of "precision >= target" (p-value
    P[X <= correct] for X ~ Binomial(n, target)) below ALPHA pauses auto-accept."""
    recent = checks[-WINDOW:]
    n = len(recent)
    correct = sum(1 for c in recent if c.get("predicted") == c.get("human"))
    out: dict[str, Any] = {
        "checks": n,
        "correct": correct,
        "precision": (correct / n) if n else None,
        "target": target,
        "p_value": None,
        "paused": False,
        "message": None,
    }
    if not n or target is None:
        return out
    from scipy.stats import binom

    p = float(binom.cdf(correct, n, target))
    out["p_value"] = round(p, 5)
    if p < ALPHA:
        out["paused"] = True
        out["message"] = (
            f"auto-accept paused: spot checks found {correct} of {n} right ({correct / n:.1%}), below "
            f"the {target:.1%} target beyond chance (one-sided binomial p = {p:.3g} < {ALPHA}); "
            "auto-accepted labels went back to review. It resumes by itself once newer spot "
            "checks agree with the target."
        )
    return out
