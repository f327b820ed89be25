"""Active learning that never serves two members of one duplicate group before the rest of the queue.

In each group only one member keeps its place in the queue: the labeled member where one is
labeled (then every unlabeled member waits), else the first imported (the lowest task id). The
others get a priority above 1 (`lsproto.notes.after_queue`: after every other task, their order
among themselves kept), the note "duplicate of #<the member served instead>" and, for "Label All
Tasks", the version's `waiting_version` (Label Studio serves a prediction of another version than
the project's only when none of the project's is left). The prediction's score is untouched: it
stays the calibrated confidence (lsproto/notes.py).

Why the first imported and not the most useful: the member that keeps its place must not depend on
which rows a write holds or on the version. A write often holds some members only (the collection
rewrites the tasks whose marks changed; new photos are written alone), and a new version ranks two
near-identical photos either way: a keeper chosen among the rows, or by the version's ranking,
handed the place to a twin whose sibling someone had just labeled before the backend heard of it,
and "Label All Tasks" served both.
"""

from __future__ import annotations

from backend.collection.curationstore import Curation
from lsproto.notes import WHY_DUPLICATE, WHY_FIRST_BATCH, WHY_RANDOM, WHY_UNCERTAIN, after_queue, waiting_version

QUEUED = (WHY_UNCERTAIN, WHY_RANDOM, WHY_FIRST_BATCH)  # rows whose place in the queue is the strategy's


def keeper(members: list[int], labeled: set[int]) -> int:
    """The member of a group that keeps its place: the first labeled, else the first imported."""
    done = [t for t in members if t in labeled]
    return min(done or members)


def demote_duplicates(rows: list[dict], curation: Curation | None, labeled: set[int]) -> int:
    """Move the duplicates among `rows` after the queue, in place (the members not among `rows`
    count as well); returns how many moved."""
    if curation is None or not curation.groups:
        return 0
    queued = {int(r["task"]): r for r in rows if r.get("why") in QUEUED and "priority" in r}
    moved = 0
    for group in curation.groups:
        members = [int(t) for t in group["tasks"]]
        first = keeper(members, labeled)
        for task in members:
            row = queued.get(task)
            if task == first or task in labeled or row is None:
                continue
            row["priority"] = after_queue(row["priority"])
            row["why"] = WHY_DUPLICATE.format(first)
            if row.get("model_version"):
                row["model_version"] = waiting_version(str(row["model_version"]))
            moved += 1
    return moved
