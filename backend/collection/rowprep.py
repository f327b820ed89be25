"""The collection's part in a write-back (the refresh and the prediction of new tasks): update the
project's groups and scores, move duplicates after the queue, put the marks into the rows, and
afterwards copy the marks that changed. A failure here costs the marks, never the predictions:
the rows are written as they were, and the next write-back tries again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from backend.collection.curationstore import Curation, CurationStore
from backend.collection.lsmarks import changed, copy_changed, marks_of, with_marks
from backend.collection.queueorder import demote_duplicates

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    rows: list[dict]  # the unlabeled tasks' rows, most useful first, duplicates after the queue
    checks: list[dict]  # the label checks, with their marks
    curation: Curation | None = None
    marks: dict[int, list] = field(default_factory=dict)
    store: CurationStore | None = None
    moved: int = 0

    def copy_marks(self, api, project_id: int, task_ids) -> int:
        """After the rows of `task_ids` are written: copy their changed marks (see lsmarks.py)."""
        if self.store is None:
            return 0
        try:
            return copy_changed(api, project_id, task_ids, self.marks, self.store)
        except Exception:  # the marks wait for the next write; the predictions are in
            log.exception("project %s: copying the collection's marks failed", project_id)
            return 0


def prepare(curator, pid: str, api, rows: list[dict], checks: list[dict], labels=None, labeled=frozenset()) -> Prepared:
    """Update the collection (`labels`: task -> a person's label, None = the stored ones), then
    `arrange` the rows."""
    return arrange(curator, pid, update(curator, pid, api, labels), rows, checks, labeled)


def update(curator, pid: str, api, labels=None) -> Curation | None:
    """The collection brought up to date, or None (not set up, nothing embedded, or it failed)."""
    try:
        return curator.update(pid, api, labels)
    except Exception:  # logged with its traceback; the write-back goes on without the collection
        log.exception("project %s: updating the collection failed", pid)
        return None


def arrange(curator, pid: str, curation: Curation | None, rows, checks, labeled=frozenset()) -> Prepared:
    """Move duplicates after the queue (`labeled`: tasks a person labeled besides the curation's
    labels) and put every row's marks in; the rows as they are without a curation."""
    if curation is None:
        return Prepared(rows, checks)
    moved = demote_duplicates(rows, curation, set(labeled) | set(curation.labels))
    rows = sorted(rows, key=lambda r: r.get("priority", 1.0))
    marks = marks_of(curation)
    return Prepared(with_marks(rows, marks), with_marks(checks, marks), curation, marks, curator.store(pid), moved)


def changed_tasks(curator, pid: str, curation: Curation | None) -> set[int]:
    """The tasks whose marks differ from those last copied into Label Studio."""
    if curation is None:
        return set()
    marks, written = marks_of(curation), curator.store(pid).marks()
    todo = changed(set(marks) | set(written), marks, written)
    return {t for ids in todo.values() for t in ids}
