"""What the data manager shows about a prediction, and the key it orders the queue by.

A prediction's `score` is the calibrated confidence of its predicted label (see `confidence_score`):
Label Studio prints it as a percent on the prediction's tab and in its "Prediction score" column.
What a person also needs in the task list (the label, the confidence as a percent, why the photo is
where it is) and the order the tabs serve (the acquisition priority) live in two task data fields:

* `cache_predictions_model`: "forest · 87.5% · uncertain" (`note_text`);
* `cache_predictions_queue`: the priority as fixed-width text, "0.012345" (`queue_key`): lower =
  served earlier, and text order equals number order (the "Label tasks as displayed" request sends
  no column types, so Label Studio compares the field as text).

How they get there (Label Studio 1.23.2, docs/labelstudio.md "What the data manager shows"): the
prediction's result carries two textarea items under `from_name` NOTE and QUEUE (`note_items`). The
labeling view drops items of a control its config lacks (nothing shows); the import of predictions
keeps them with the flag `fflag_fix_back_4620_..._short` (on in every Label Studio tasveer starts;
without it they are PATCHed on: backend/writeback/lswrite.py). Label Studio's data-manager action
`cache_labels` (source predictions, control tag NOTE or QUEUE, no counters) then copies their text
into `data.cache_predictions_<tag>` of the tasks written, one request per field.

Two more fields say where a photo stands in the collection (backend/collection/lsmarks.py), carried
the same way by items under GROUP and UNUSUAL, but copied (`cache_labels`) only onto the tasks whose
mark changed since it was last copied: a write whose marks are unchanged costs no request for them.

* `cache_predictions_group`: "group 000123 · 3 photos · near" (`group_mark`): the smallest task id of
  the task's duplicate group (so a tab ordered by it lists each group's members together), its size;
* `cache_predictions_unusual`: "007.3 · far from every class" (`unusual_mark`): how unusual, fixed
  width so that text order is number order, and which of the two parts made it so.

A duplicate that waits behind another member of its group has a priority above 1 (`after_queue`):
it comes after every other task of the queue, and its note says "duplicate of #<task id>". Its
prediction carries the version's `waiting_version`, so that "Label All Tasks" serves it last too.
"""

from __future__ import annotations

NOTE = "model"  # from_name of the readable note
QUEUE = "queue"  # from_name of the order key
NOTE_COLUMN = f"cache_predictions_{NOTE}"  # the task data key Label Studio's cache_labels writes
QUEUE_COLUMN = f"cache_predictions_{QUEUE}"
GROUP = "group"  # from_name of the duplicate group's mark
UNUSUAL = "unusual"  # from_name of the unusual photo's mark
GROUP_COLUMN = f"cache_predictions_{GROUP}"
UNUSUAL_COLUMN = f"cache_predictions_{UNUSUAL}"
ITEM_TAGS = (NOTE, QUEUE, GROUP, UNUSUAL)  # every textarea item tasveer puts into a prediction

# why a photo is where it is
WHY_UNCERTAIN = "uncertain"
WHY_RANDOM = "random pick"
WHY_FIRST_BATCH = "representative first batch"
WHY_SPOT_CHECK = "spot check"
WHY_LABEL_ERROR = "possible label error"
WHY_AUTO_ACCEPTED = "auto-accepted"
WHY_DUPLICATE = "duplicate of #{}"  # .format(the task id served instead)

# Far below what Label Studio prints (a score as a percent with 2 decimals, the data manager's
# column with 3): ties of the printed confidence are broken by the priority, so the cold start's
# equal 1/C scores still serve the medoids first, and they stay below an answer of the same
# confidence that Label Studio fetched from /predict itself (1/C exactly at the cold start).
TIE_BREAK = 1e-6


def confidence_score(confidence: float, priority: float = 0.0) -> float:
    """A prediction's `score`: the confidence less TIE_BREAK x (2 - priority) (priority in [0, 1],
    lower = more useful), within [0, 1]: of two equal confidences the more useful scores lower,
    and every score is below its confidence."""
    conf = min(1.0, max(0.0, float(confidence)))
    return max(0.0, conf - TIE_BREAK * (2.0 - min(1.0, max(0.0, float(priority)))))


def queue_key(priority: float) -> str:
    """The order key of a priority in [0, 2] (above 1: after the queue, `after_queue`): fixed
    width, so text order is number order."""
    return f"{min(2.0, max(0.0, float(priority))):.6f}"


WAITING_SUFFIX = "-after-queue"


def waiting_version(version: str) -> str:
    """The `model_version` of a waiting duplicate's prediction. Label Studio 1.23.2's uncertainty
    sampling ("Label All Tasks") considers only tasks with a prediction of the project's
    model_version, and serves the others only once none of those is left (then at random:
    `next_task.py` `_try_uncertainty_sampling`), so a twin comes after the whole queue there as in
    the tabs. The labeling stream pre-fills only from the project's version: a twin shows no
    pre-annotation (its note in the task list says whose duplicate it is)."""
    return version if version.endswith(WAITING_SUFFIX) else f"{version}{WAITING_SUFFIX}"


def is_waiting_version(version: str | None) -> bool:
    return bool(version) and str(version).endswith(WAITING_SUFFIX)


def after_queue(priority: float) -> float:
    """The priority of a task that waits until the rest of the queue is done (a duplicate of a
    task served instead): in (1, 1.5], keeping the order of the priorities among such tasks."""
    return 1.0 + 0.5 * min(1.0, max(0.0, float(priority)))


def group_mark(group_id: int, size: int, exact: bool) -> str:
    return f"group {int(group_id):06d} · {int(size)} photos · {'exact' if exact else 'near'}"


def unusual_mark(score: float, known_class: bool) -> str:
    where = "far from every class" if known_class else "far from the rest"
    return f"{min(999.9, max(0.0, float(score))):05.1f} · {where}"


def mark_items(to_name: str, group: str | None, unusual: str | None) -> list[dict]:
    """The result items that carry a task's collection marks (none for a mark of None)."""
    return [
        {"from_name": tag, "to_name": to_name, "type": "textarea", "value": {"text": [text]}}
        for tag, text in ((GROUP, group), (UNUSUAL, unusual))
        if text
    ]


def note_text(label: str, confidence: float, why: str) -> str:
    return f"{label} · {100 * float(confidence):.1f}% · {why}"


def note_items(to_name: str, text: str, priority: float | None) -> list[dict]:
    """The result items that carry a task's note (and its order key, where it has a place in a queue)."""
    items = [{"from_name": NOTE, "to_name": to_name, "type": "textarea", "value": {"text": [text]}}]
    if priority is not None:
        items.append(
            {"from_name": QUEUE, "to_name": to_name, "type": "textarea", "value": {"text": [queue_key(priority)]}}
        )
    return items


def without_notes(result) -> list:
    """A result with the note (and mark) items taken out."""
    return [item for item in result or [] if not (isinstance(item, dict) and item.get("from_name") in ITEM_TAGS)]


def read_note(result, from_name: str = NOTE) -> str | None:
    """The text of a result's note (`from_name` NOTE) or order key (QUEUE), or None."""
    for item in result or []:
        if isinstance(item, dict) and item.get("from_name") == from_name:
            text = (item.get("value") or {}).get("text") or []
            if text and isinstance(text[0], str):
                return text[0]
    return None


def cache_request(tag: str) -> dict:
    """The body fields of Label Studio's `cache_labels` action that copy the note `tag` (NOTE or
    QUEUE) of the tasks' predictions into `data.cache_predictions_<tag>`."""
    return {"control_tag": tag, "custom_control_tag": tag, "with_counters": "No", "source": "Predictions"}
