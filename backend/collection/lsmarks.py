"""What of the collection reaches Label Studio's data manager, and at what cost.

Each task in a duplicate group gets a group mark and each of the most unusual photos an unusual mark
(lsproto/notes.py: `group_mark`, `unusual_mark`), the tabs "Duplicates" and "Unusual photos" filter
and order by them (lsproto/views.py). They travel like the notes: textarea items inside the
prediction's result (`with_marks`, on every row a write-back sends, so a refresh that rewrites the
predictions keeps them), copied into the task data by Label Studio's `cache_labels` action. Unlike
the notes they are copied only onto the tasks whose mark differs from the one last copied
(`copy_changed`, remembered in curationstore.py's marks.json): a write whose marks did not change
costs Label Studio nothing more, and one that did costs one request per changed field, whatever the
number of tasks (bulk, like the notes). A task's data field is left as it is until its mark changes.

Why not PATCH the task data: one request per task (0.14 s at 10,000 tasks, docs/labelstudio.md) and
a PATCH sends the whole data dict, racing the `cache_labels` of the notes on the same tasks.
"""

from __future__ import annotations

from backend.collection.curationstore import Curation, CurationStore
from lsproto.notes import GROUP, UNUSUAL, group_mark, mark_items, unusual_mark

UNUSUAL_MIN = 3.0  # robust z: three typical spreads above the usual distance
UNUSUAL_SHOWN = 200  # at most this many photos carry an unusual mark, the strongest


def marks_of(curation: Curation | None) -> dict[int, list]:
    """task id -> [group mark or None, unusual mark or None], for the tasks with a mark."""
    if curation is None:
        return {}
    out: dict[int, list] = {}
    for group in curation.groups:
        text = group_mark(group["id"], len(group["tasks"]), group["exact"])
        for task in group["tasks"]:
            out[int(task)] = [text, None]
    for entry in curation.unusual[:UNUSUAL_SHOWN]:
        if entry["score"] < UNUSUAL_MIN:
            break
        known = entry.get("known") is not None and entry["known"] >= entry["rest"]
        out.setdefault(int(entry["task"]), [None, None])[1] = unusual_mark(entry["score"], known)
    return out


def with_marks(rows: list[dict], marks: dict[int, list]) -> list[dict]:
    """The rows with their tasks' mark items appended to the result (rows without a mark as they are)."""
    out = []
    for row in rows:
        mark = marks.get(int(row["task"]))
        if mark and row.get("result"):
            row = {**row, "result": list(row["result"]) + mark_items(row["result"][0]["to_name"], *mark)}
        out.append(row)
    return out


def changed(task_ids, marks: dict[int, list], written: dict[int, list]) -> dict[str, list[int]]:
    """tag -> the tasks among `task_ids` whose mark under that tag differs from the one copied."""
    out: dict[str, list[int]] = {GROUP: [], UNUSUAL: []}
    for task in sorted({int(t) for t in task_ids}):
        now, before = marks.get(task, [None, None]), written.get(task, [None, None])
        for pos, tag in enumerate((GROUP, UNUSUAL)):
            if (now[pos] or None) != (before[pos] or None):
                out[tag].append(task)
    return out


def copy_changed(api, project_id: int, task_ids, marks: dict[int, list], store: CurationStore) -> int:
    """Copy the changed marks of `task_ids` (whose predictions carry `marks` now) into their task
    data; returns how many tasks changed. One `cache_labels` request per field with a change."""
    written = store.marks()
    todo = changed(task_ids, marks, written)
    for tag, ids in todo.items():
        if ids:
            api.cache_notes(project_id, ids, tags=(tag,))
    touched = set(todo[GROUP]) | set(todo[UNUSUAL])
    if touched:
        for task in touched:
            now = marks.get(task)
            if now and any(now):
                written[task] = list(now)
            else:
                written.pop(task, None)
        store.save_marks(written)
    return len(touched)
