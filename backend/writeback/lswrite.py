"""Write scored rows into Label Studio as the tasks' only prediction, with their notes, in bulk.

A row is `{"task", "result", "score", "model_version"}` plus, where it has a place in a queue,
`why` (the note: label, confidence, why) and `priority` (the queue key), lsproto/notes.py. For a
batch of rows, whatever its size, Label Studio gets four requests:

1. `delete_tasks_predictions` on the batch's tasks (a task keeps one prediction: the newest, and
   `cache_labels` joins the notes of every prediction of a task; Label Studio counts each deleted
   prediction's task again, three queries per prediction);
2. `import/predictions` with the note items inside each result (flag `fflag_fix_back_4620_..._short`,
   on in every Label Studio tasveer starts: it checks and recounts only the batch's tasks and keeps
   the result as given);
3. and 4. `cache_labels` for the note and the queue key, on the batch's tasks only.

A new version's head is served before its delete (`write_head`, then `tidy_parts`: the import and
the version switch first, the delete and the import again after).

A Label Studio without the flag drops a prediction whose result holds an item its config lacks (or
refuses the whole request): those rows go in again without their notes, and the notes follow by
PATCH (`patch_notes`: slow, one request per prediction, but correct).
"""

from __future__ import annotations

import logging

from lsclient import LabelStudioError
from lsproto.notes import note_items, note_text, waiting_version

log = logging.getLogger(__name__)


def names_version(rows: list[dict], vid: str) -> bool:
    """Whether `rows` hold a prediction of `vid` itself (not only waiting duplicates' version):
    Label Studio takes a project's model_version only once a prediction of it exists."""
    return any(r.get("model_version") == vid for r in rows)


def notes_of(row: dict) -> list[dict]:
    """The note items of a row with a `why` (none for a row without)."""
    if not row.get("why"):
        return []
    item = row["result"][0]
    text = note_text(item["value"]["choices"][0], item.get("score", row["score"]), row["why"])
    return note_items(item["to_name"], text, row.get("priority"))


def plain(row: dict) -> dict:
    """What Label Studio stores of a row, without the notes."""
    return {k: row[k] for k in ("task", "result", "score", "model_version") if k in row}


def with_notes(row: dict) -> dict:
    out = plain(row)
    out["result"] = list(row["result"]) + notes_of(row)
    return out


# rows per delete + import under the project's write lock in a refresh's rest while someone labels,
# so another writer gets its turn between. A write holds Label Studio's SQLite (its delete recounts
# each prediction's task: three queries a prediction), so a labeler's `/next` and the next
# correction's head wait for it: 250 rows held it ~3 s at 8,741 tasks (bench/scale.py, 2026-12-06);
# 60 hold it well under a second
ROWS_PER_WRITE = 60
# rows per write where nobody waits for a write to end: the refresh's rest once nobody has labeled
# for a while (opentasks.QUIET_S), and the collection's rewrites, which give way to corrections
# between two writes instead. At 50,000 photos on PostgreSQL, 60 a write took ~1.5 s each (most of
# it fixed costs), so writing every task took longer than 20 minutes
BULK_ROWS = 250
SETTLE_PAUSE = 0.5  # seconds between two writes of a refresh's rest while someone labels
QUIET_PAUSE = 0.1  # and once nobody has for a while (opentasks.QUIET_S)


def pace(open_tasks, pid: str) -> tuple[int, float]:
    """Rows of a refresh's next write of the rest and the pause after it: small writes with a pause
    for a labeler's requests while someone labels (`open_tasks.labeling`: a submit within
    opentasks.QUIET_S), BULK_ROWS once nobody has for a while."""
    if open_tasks.labeling(pid):
        return ROWS_PER_WRITE, SETTLE_PAUSE
    return BULK_ROWS, QUIET_PAUSE


def write_rows(api, project_id: int, rows: list[dict], *, replace: bool = True, written=None, keep=()) -> int:
    """Make `rows` the predictions of their tasks (`replace`: delete what the tasks had first) and
    copy their notes into the tasks' data; `written()` is called once the predictions are in,
    before the notes. The tasks of `keep` (someone may have one open: opentasks.py) keep what they
    had beside the new prediction, and their notes. Returns how many predictions Label Studio created."""
    if not rows:
        return 0
    task_ids = sorted({int(r["task"]) for r in rows} - set(keep))
    if replace and task_ids:
        api.delete_task_predictions(project_id, task_ids)
    created = _import(api, project_id, rows)
    if created and written is not None:
        written()
    api.cache_notes(project_id, task_ids)
    return created


def write_head(api, project_id: int, rows: list[dict], *, written=None) -> int:
    """The queue's top, served first: its rows imported beside what the tasks hold, without the
    delete, and `written()` (the version switch) once they are in; `tidy_head` then writes them again
    in place of everything else. Label Studio's delete of 32 tasks' predictions took ~0.5 s of a
    head at 10,000 tasks on PostgreSQL (bench/scale.py, 2026-12-06); until the tidy, a task holds the
    old prediction beside the new, which Label Studio's queue ignores (not the project's version)."""
    if not rows:
        return 0
    created = _import(api, project_id, rows)
    if created and written is not None:
        written()
    return created


def tidy_parts(rows: list[dict], keep=()) -> list[list[dict]]:
    """The head's rows to write again (`write_rows`) after `write_head`, in two halves, the lower
    first: while one half's tasks are between their delete and import, the other half's serve (a
    task Label Studio's queue left with no prediction of the version would not be served). The
    tasks of `keep` stay as they are: they hold the new prediction beside what they had."""
    mine = [r for r in rows if int(r["task"]) not in set(keep)]
    half = (len(mine) + 1) // 2
    return [part for part in (mine[half:], mine[:half]) if part]


def _import(api, project_id: int, rows: list[dict]) -> int:
    noted = [r for r in rows if r.get("why")]
    try:
        created = api.import_predictions(project_id, [with_notes(r) for r in rows])
        dropped = created < len(rows) and bool(noted)
    except LabelStudioError as exc:
        if exc.status != 400 or not noted:
            raise
        log.warning("project %s: Label Studio refused the predictions' notes (%s); writing them apart", project_id, exc)
        created = api.import_predictions(project_id, [plain(r) for r in rows if not r.get("why")])
        dropped = True
    if dropped:  # a Label Studio without the import flag: the noted rows again, notes by PATCH
        created += api.import_predictions(project_id, [plain(r) for r in noted])
        by_version: dict[str, dict[int, list]] = {}
        for r in noted:
            by_version.setdefault(r["model_version"], {})[int(r["task"])] = notes_of(r)
        for version, notes in by_version.items():
            api.patch_notes(project_id, version, notes)
    return created


def drop_other_versions(api, project_id: int, vid: str, others: list[int], spared: set) -> list[str]:
    """After a refresh's complete pass: the predictions of other versions that are left go (on
    `others`, the tasks the pass did not write: labeled since the version's training), but for the
    `spared` versions, which tasks someone may have open still hold; those tasks' notes are cleared
    with them (as many as the labels, not the project: `cache_labels` over every task holds Label
    Studio for a minute at 10,000 tasks)."""
    kept = {vid, waiting_version(vid)} | set(spared)  # this version's waiting duplicates too
    removed = [v for v in api.model_versions(project_id) if v not in kept]
    for old in removed:
        api.delete_model_version(project_id, old)
    if removed:
        api.cache_notes(project_id, others)
    return removed
