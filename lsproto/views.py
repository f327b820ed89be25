"""What tasveer's prediction `score` means, and the data-manager tabs (views) built on it.

Label Studio sorts by a prediction's `score` and its uncertainty sampling serves the task with the
LOWEST score first, so tasveer writes scores where lower = more in need of a person:

* unlabeled task: the acquisition priority of the project's strategy (training.acquisition.priority:
  e.g. for `margin`, top-1 minus top-2 probability), in [0, 1]; the calibrated confidence of the
  predicted label stays visible in the result's own `score` field (`result[0]["score"]`).
* annotated task: a label check from OUT-OF-FOLD probabilities (no model judges a label it was trained
  on). A suspected label error scores below `SUSPECT_BELOW` (the stronger the suspicion, the lower);
  every other annotated task scores `SUSPECT_BELOW` or more (0.5 + half the probability the model
  gives the human label).

Only predictions of the project's `model_version` count in the score column, its sorting and
uncertainty sampling; the backend moves `model_version` to the serving version after every publish
and rollback.
"""
from __future__ import annotations

SUSPECT_BELOW = 0.5

NEEDS_REVIEW = "Needs review"
MOST_USEFUL = NEEDS_REVIEW  # the tab's earlier name, kept for callers
LABEL_ERRORS = "Possible label errors"
AUTO_ACCEPTED = "Auto-accepted"
SPOT_CHECKS = "Spot checks"
RENAMED = {"Most useful first": NEEDS_REVIEW}  # an older title -> the tab that replaces it


def label_check_score(suspect_strength: float | None, given_prob: float) -> float:
    """The score of an annotated task: below SUSPECT_BELOW when suspected (`suspect_strength` in
    (0, 1], higher = stronger), else 0.5 + given_prob / 2."""
    if suspect_strength is not None:
        return max(0.0, SUSPECT_BELOW * (1.0 - min(1.0, float(suspect_strength))) - 1e-6)
    return SUSPECT_BELOW + 0.5 * min(1.0, max(0.0, float(given_prob)))


# Label Studio computes only the fields a view filters or sorts by unless its data names the hidden
# columns (data_manager/managers.py get_fields_for_evaluation): without this the "Prediction results"
# and "Annotation results" columns stay empty, and a label check needs both side by side.
HIDDEN = {"explore": ["tasks:inner_id"], "labeling": ["tasks:inner_id"]}


def _number(column: str, operator: str, value) -> dict:
    return {"filter": f"filter:tasks:{column}", "operator": operator, "type": "Number", "value": value}


def _contains(column: str, kind: str, value) -> dict:
    return {"filter": f"filter:tasks:{column}", "operator": "contains", "type": kind, "value": value}


# title -> the view's `data` as POST /api/dm/views takes it
VIEWS = {
    # what is left for people: no annotation at all (an auto-accepted task has one), lowest score
    # (most useful, spot checks first) first
    NEEDS_REVIEW: {
        "title": NEEDS_REVIEW,
        "filters": {"conjunction": "and", "items": [_number("total_annotations", "equal", 0)]},
        "ordering": ["tasks:predictions_score"],
        "hiddenColumns": HIDDEN,
    },
    LABEL_ERRORS: {
        "title": LABEL_ERRORS,
        "filters": {"conjunction": "and", "items": [
            _number("total_annotations", "greater", 0),
            _number("predictions_score", "less", SUSPECT_BELOW),
        ]},
        "ordering": ["tasks:predictions_score"],
        "hiddenColumns": HIDDEN,
    },
}


def views(auto_user_id: int | None = None) -> dict[str, dict]:
    """Every tab of a project; the auto-accept tabs need the id of the auto-accept user
    (lsproto/autoaccept.py) in this Label Studio."""
    from .autoaccept import SPOT_CHECK

    out = dict(VIEWS)
    if auto_user_id is not None:
        out[AUTO_ACCEPTED] = {
            "title": AUTO_ACCEPTED,
            "filters": {"conjunction": "and", "items": [_contains("annotators", "List", int(auto_user_id))]},
            "ordering": ["-tasks:completed_at"],
            "hiddenColumns": HIDDEN,
        }
        out[SPOT_CHECKS] = {  # would-be-accepted tasks left to people, open and done
            "title": SPOT_CHECKS,
            "filters": {"conjunction": "and", "items": [_contains("predictions_results", "String", SPOT_CHECK)]},
            "ordering": ["tasks:total_annotations"],
            "hiddenColumns": HIDDEN,
        }
    return out
