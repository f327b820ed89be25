"""tasveer's data-manager tabs (views), and what a label check's order key means.

A prediction's `score` is the calibrated confidence of its predicted label (lsproto/notes.py). The
order people should work in is the acquisition priority, kept in the task data field
`cache_predictions_queue` (lower = more in need of a person), next to a readable note
(`cache_predictions_model`: label, confidence, why). The tabs order and filter by those fields and
by plain task fields only: a tab ordered or filtered by `predictions_score` fails in Label Studio
1.23.2 on a project without tasks ("Cannot resolve keyword 'predictions_score'").

* unlabeled task: the order key is the priority of the project's strategy
  (training.acquisition.priority, e.g. for `margin` top-1 minus top-2 probability); spot checks 0.
* annotated task: a label check from OUT-OF-FOLD probabilities (no model judges a label it was
  trained on). Only a suspected label error gets a note ("possible label error") and an order key,
  below `SUSPECT_BELOW`: the stronger the suspicion, the lower (`label_check_score`).

Two tabs show the collection (backend/collection/): "Duplicates", every member of a duplicate group
with its group's mark (`cache_predictions_group`), ordered by it so a group's members are together;
"Unusual photos", the photos marked unusual (`cache_predictions_unusual`), the strongest first.
"""

from __future__ import annotations

from .notes import GROUP_COLUMN, NOTE_COLUMN, QUEUE_COLUMN, UNUSUAL_COLUMN, WHY_LABEL_ERROR

SUSPECT_BELOW = 0.5

NEEDS_REVIEW = "Needs review"
MOST_USEFUL = NEEDS_REVIEW  # the tab's earlier name, kept for callers
LABEL_ERRORS = "Possible label errors"
AUTO_ACCEPTED = "Auto-accepted"
SPOT_CHECKS = "Spot checks"
DUPLICATES = "Duplicates"
UNUSUAL_PHOTOS = "Unusual photos"
RENAMED = {"Most useful first": NEEDS_REVIEW}  # an older title -> the tab that replaces it


def label_check_score(suspect_strength: float | None, given_prob: float) -> float:
    """The order key of an annotated task's label check: below SUSPECT_BELOW when suspected
    (`suspect_strength` in (0, 1], higher = stronger), else 0.5 + given_prob / 2."""
    if suspect_strength is not None:
        return max(0.0, SUSPECT_BELOW * (1.0 - min(1.0, float(suspect_strength))) - 1e-6)
    return SUSPECT_BELOW + 0.5 * min(1.0, max(0.0, float(given_prob)))


def _number(column: str, operator: str, value) -> dict:
    return {"filter": f"filter:tasks:{column}", "operator": operator, "type": "Number", "value": value}


def _contains(column: str, kind: str, value) -> dict:
    return {"filter": f"filter:tasks:{column}", "operator": "contains", "type": kind, "value": value}


NOTE_FIELD = f"tasks:data.{NOTE_COLUMN}"
QUEUE_FIELD = f"tasks:data.{QUEUE_COLUMN}"
GROUP_FIELD = f"tasks:data.{GROUP_COLUMN}"
UNUSUAL_FIELD = f"tasks:data.{UNUSUAL_COLUMN}"
# Every task column of Label Studio 1.23.2 (GET /api/dm/columns) besides the task data's own (the
# image stays shown: it is not named). A tab shows the columns it does not hide; naming them also
# makes Label Studio compute only those (data_manager/managers.py get_fields_for_evaluation).
COLUMNS = [
    "tasks:id",
    "tasks:inner_id",
    "tasks:completed_at",
    "tasks:total_annotations",
    "tasks:cancelled_annotations",
    "tasks:total_predictions",
    "tasks:annotators",
    "tasks:annotations_results",
    "tasks:annotations_ids",
    "tasks:predictions_score",
    "tasks:predictions_model_versions",
    "tasks:predictions_results",
    "tasks:file_upload",
    "tasks:storage_filename",
    "tasks:created_at",
    "tasks:updated_at",
    "tasks:updated_by",
    "tasks:avg_lead_time",
    "tasks:draft_exists",
    NOTE_FIELD,
    QUEUE_FIELD,
    GROUP_FIELD,
    UNUSUAL_FIELD,
]


def _tab(title: str, filters: list[dict], ordering: str, shown: list[str]) -> dict:
    """A tab's `data` as POST /api/dm/views takes it: the photo, the note and `shown`, nothing else."""
    hidden = [c for c in COLUMNS if c not in ["tasks:id", NOTE_FIELD, *shown]]
    return {
        "title": title,
        "filters": {"conjunction": "and", "items": filters},
        "ordering": [ordering],
        "hiddenColumns": {"explore": hidden, "labeling": hidden},
        "columnsWidth": {NOTE_FIELD: 320},
    }


# title -> the view's `data`
VIEWS = {
    # what is left for people: no annotation at all (an auto-accepted task has one), spot checks
    # first, then the most useful; sortable by the confidence ("Prediction score")
    NEEDS_REVIEW: _tab(
        NEEDS_REVIEW, [_number("total_annotations", "equal", 0)], QUEUE_FIELD, ["tasks:predictions_score"]
    ),
    # annotated tasks whose label check suspects the label, strongest suspicion first
    LABEL_ERRORS: _tab(
        LABEL_ERRORS,
        [_number("total_annotations", "greater", 0), _contains(NOTE_FIELD[len("tasks:") :], "String", WHY_LABEL_ERROR)],
        QUEUE_FIELD,
        ["tasks:predictions_score", "tasks:annotations_results"],
    ),
    # every member of a duplicate group, a group's members together (lsproto/notes.py group_mark)
    DUPLICATES: _tab(
        DUPLICATES,
        [_contains(GROUP_FIELD[len("tasks:") :], "String", "group")],
        GROUP_FIELD,
        [GROUP_FIELD, "tasks:annotations_results"],
    ),
    # the photos marked unusual, the strongest first (fixed-width marks: text order is number order)
    UNUSUAL_PHOTOS: _tab(
        UNUSUAL_PHOTOS,
        [_contains(UNUSUAL_FIELD[len("tasks:") :], "String", "far from")],
        f"-{UNUSUAL_FIELD}",
        [UNUSUAL_FIELD, "tasks:annotations_results"],
    ),
}


def views(auto_user_id: int | None = None) -> dict[str, dict]:
    """Every tab of a project; the auto-accept tabs need the id of the auto-accept user
    (lsproto/autoaccept.py) in this Label Studio."""
    from .autoaccept import SPOT_CHECK

    out = dict(VIEWS)
    if auto_user_id is not None:
        out[AUTO_ACCEPTED] = _tab(
            AUTO_ACCEPTED,
            [_contains("annotators", "List", int(auto_user_id))],
            "-tasks:completed_at",
            ["tasks:predictions_score", "tasks:completed_at"],
        )
        # would-be-accepted tasks left to people, open and done (the prediction's result is marked)
        out[SPOT_CHECKS] = _tab(
            SPOT_CHECKS,
            [_contains("predictions_results", "String", SPOT_CHECK)],
            "tasks:total_annotations",
            ["tasks:predictions_score", "tasks:total_annotations", "tasks:annotations_results"],
        )
    return out
