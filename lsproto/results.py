"""Shapes of what goes into and comes out of Label Studio for one choice on one image.

A *result* is the list Label Studio stores in an annotation's or a prediction's `result`:
`[{"from_name", "to_name", "type": "choices", "value": {"choices": [label]}}]`. A *prediction* is
`{"result", "score", "model_version"}` (plus `cluster` and `task` where they apply): the ML
backend's answer to `/predict` and the rows of `POST /api/projects/<id>/import/predictions`.
"""

from __future__ import annotations

from .config import LabelConfig


def choice_result(from_name: str, to_name: str, label: str) -> list[dict]:
    return [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": [label]}}]


def prediction(cfg: LabelConfig, label: str, score: float, model_version: str, cluster: int | None = None) -> dict:
    """One prediction; `score` is clipped to [0, 1] (Label Studio shows it as the prediction's
    confidence, and sorts and samples by it: lsproto/notes.py `confidence_score`)."""
    out = {
        "result": choice_result(cfg.from_name, cfg.to_name, label),
        "score": min(1.0, max(0.0, float(score))),
        "model_version": model_version,
    }
    if cluster is not None:
        out["cluster"] = int(cluster)
    return out


def error_prediction(model_version: str | None, message: str) -> dict:
    """The answer for a task that could not be predicted: no result, the reason in `error`."""
    return {"result": [], "score": 0.0, "model_version": model_version, "error": message}


def result_label(result, from_name: str) -> str | None:
    """The first choice a result list gives for the `<Choices name=from_name>` control, or None."""
    for item in result or []:
        if isinstance(item, dict) and item.get("type") == "choices" and item.get("from_name") == from_name:
            choices = (item.get("value") or {}).get("choices") or []
            if choices and isinstance(choices[0], str):
                return choices[0]
    return None


def newest_label(task: dict, cfg: LabelConfig, skip=None) -> tuple[int, str] | None:
    """(annotation id, label) of a task's newest usable annotation: not cancelled (skipped), with a
    choice for `cfg`'s control, and not one `skip(annotation)` says to leave out (auto-accepted
    labels, say). None when there is none. The label may be outside `cfg.labels`: the caller
    decides what to do with it."""
    usable = []
    for ann in task.get("annotations") or []:
        if not isinstance(ann, dict) or ann.get("was_cancelled") or (skip is not None and skip(ann)):
            continue
        label = result_label(ann.get("result"), cfg.from_name)
        if label is not None:
            usable.append((str(ann.get("updated_at") or ""), ann.get("id") or 0, label))
    if not usable:
        return None
    _, ann_id, label = max(usable)
    return ann_id, label
