"""How auto-accepted labels and spot checks look in Label Studio (backend/autoaccept.py decides them).

* An auto-accepted label is an ordinary annotation whose `completed_by` is one dedicated user of the
  organization, `AUTO_EMAIL` ("tasveer auto-accept"): it exports like any label and the data
  manager can filter by it (`filter:tasks:annotators contains <its id>`). Its result item carries
  the model version and confidence (`score`, and a note in `meta.text` that the labeling screen
  shows). It is never a training label: training skips that user's annotations.
* A spot check is a task the model would auto-accept that is left to people instead; its
  prediction's result carries `SPOT_CHECK` in `meta.text`, which the data manager can filter on
  (`filter:tasks:predictions_results contains SPOT_CHECK`).
"""

from __future__ import annotations

from .config import LabelConfig
from .results import choice_result

AUTO_EMAIL = "tasveer-auto-accept@tasveer.local"
AUTO_USER = {
    "email": AUTO_EMAIL,
    "username": "tasveer-auto-accept",
    "first_name": "tasveer",
    "last_name": "auto-accept",
}
AUTO_NOTE = "tasveer-auto-accept"
SPOT_CHECK = "tasveer-spot-check"


def auto_result(cfg: LabelConfig, label: str, confidence: float, version: str) -> list[dict]:
    """The `result` of an auto-accepted annotation."""
    result = choice_result(cfg.from_name, cfg.to_name, label)
    result[0].update(
        origin="prediction",
        score=round(float(confidence), 4),
        model_version=version,
        meta={"text": [f"{AUTO_NOTE}: {version} at confidence {confidence:.4f}"]},
    )
    return result


def mark_spot_check(prediction: dict, confidence: float) -> dict:
    """Mark a prediction (in place) as a spot check; returns it."""
    for item in prediction.get("result") or []:
        item["meta"] = {
            "text": [f"{SPOT_CHECK}: the model would auto-accept this at {confidence:.4f}; your label checks it"]
        }
    return prediction


def annotator(annotation: dict) -> tuple[int | None, str | None]:
    """(user id, email) of an annotation's `completed_by` (an id, or an expanded user object)."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return who.get("id"), who.get("email")
    return (who if isinstance(who, int) else None), None


def is_auto(annotation: dict, auto_user_id: int | None = None) -> bool:
    """Whether an annotation is an auto-accepted label (by the auto user's id or email)."""
    uid, email = annotator(annotation)
    return email == AUTO_EMAIL or (auto_user_id is not None and uid == auto_user_id)
