"""Active learning that never serves two members of one duplicate group before the rest of the queue.

In each group only one member keeps its place in the queue: the labeled member where one is
labeled (then every unlabeled member waits), else the most useful unlabeled one (lowest priority).
The others get a priority above 1 (`lsproto.notes.after_queue`: after every other task, their order
among themselves kept), the note "duplicate of #<the member served instead>" and, for "Label All
Tasks", the version's `waiting_version` (Label Studio serves a prediction of another version than
the project's only when none of the project's is left). The prediction's score is untouched: it
stays the calibrated confidence (lsproto/notes.py).
"""

from __future__ import annotations

from backend.collection.curationstore import Curation
from lsproto.notes import WHY_DUPLICATE, WHY_FIRST_BATCH, WHY_RANDOM, WHY_UNCERTAIN, after_queue, waiting_version

QUEUED = (WHY_UNCERTAIN, WHY_RANDOM, WHY_FIRST_BATCH)  # rows whose place in the queue is the strategy's


def demote_duplicates(rows: list[dict], curation: Curation | None, labeled: set[int]) -> int:
    """Move the duplicates among `rows` after the queue, in place; returns how many moved."""
    if curation is None or not curation.groups:
        return 0
    queued = {int(r["task"]): r for r in rows if r.get("why") in QUEUED and "priority" in r}
    moved = 0
    for group in curation.groups:
        members = [int(t) for t in group["tasks"]]
        done = [t for t in members if t in labeled]
        waiting = [queued[t] for t in members if t in queued and t not in labeled]
        if not waiting:
            continue
        if done:
            keeper = min(done)
        else:
            first = min(waiting, key=lambda r: (r["priority"], int(r["task"])))
            keeper = int(first["task"])
            waiting = [r for r in waiting if r is not first]
        for row in waiting:
            row["priority"] = after_queue(row["priority"])
            row["why"] = WHY_DUPLICATE.format(keeper)
            if row.get("model_version"):
                row["model_version"] = waiting_version(str(row["model_version"]))
            moved += 1
    return moved
