"""The tasks of a project the backend knows: task id, the image as Label Studio stores it, and the
image's digest (the key of the image and embedding caches) once it was fetched.

Why: a correction's training (the semi-supervised head) and its refresh need the embedding of every
unlabeled task. Listing 8,000 tasks from Label Studio per correction took 30 s and more and made
Label Studio slow for the people labeling; the index makes that a local read. It is written as tasks
are predicted (TASKS_CREATED, refresh) and caught up from Label Studio in bounded steps
(`catch_up`): the tasks above the highest id it holds (Label Studio's ids only grow), and a full
listing only when the counts still disagree (tasks were deleted, or the index is new).

One SQLite file per project (`projects/<id>/tasks.sqlite`, WAL), shared by the processes of one
machine; a worker on another machine keeps its own. Losing it costs one full listing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FILE = "tasks.sqlite"


@dataclass(frozen=True)
class IndexedTask:
    id: int
    image: str | None  # the task's image as stored in Label Studio (its data key's value)
    digest: str | None  # sha256 of the image's bytes, once fetched

    def as_task(self, data_key: str) -> dict:
        """The task as the fetcher and embedder take it."""
        return {"id": self.id, "data": {data_key: self.image}}


class TaskIndex:
    def __init__(self, project_dir: Path):
        self.path = Path(project_dir) / FILE
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, image TEXT, digest TEXT)")
            self._local.conn = conn
        return conn

    def add(self, tasks: Iterable[IndexedTask]) -> None:
        """Insert or update; a known digest is kept when the new row has none."""
        rows = [(t.id, t.image, t.digest) for t in tasks]
        with self._conn() as conn:
            conn.executemany(
                "INSERT INTO tasks (id, image, digest) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "image = excluded.image, digest = COALESCE(excluded.digest, tasks.digest)",
                rows,
            )

    def remove(self, ids: Iterable[int]) -> None:
        with self._conn() as conn:
            conn.executemany("DELETE FROM tasks WHERE id = ?", [(int(i),) for i in ids])

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM tasks").fetchone()[0])

    def max_id(self) -> int:
        return int(self._conn().execute("SELECT COALESCE(MAX(id), 0) FROM tasks").fetchone()[0])

    def tasks(self, exclude: Iterable[int] = ()) -> list[IndexedTask]:
        """Every task but `exclude`, by id."""
        skip = {int(i) for i in exclude}
        rows = self._conn().execute("SELECT id, image, digest FROM tasks ORDER BY id").fetchall()
        return [IndexedTask(int(i), image, digest) for i, image, digest in rows if int(i) not in skip]

    def digests(self, exclude: Iterable[int] = ()) -> list[str]:
        """The image digests of every task but `exclude` that has one, by task id: what a training's
        sample of unlabeled photos needs, without a task object per row (~0.3 s of each correction's
        training at 50,000 tasks)."""
        skip = {int(i) for i in exclude}
        rows = self._conn().execute("SELECT id, digest FROM tasks WHERE digest IS NOT NULL ORDER BY id").fetchall()
        return [digest for i, digest in rows if i not in skip]


def indexed(task: dict, data_key: str, digest: str | None = None) -> IndexedTask:
    image = (task.get("data") or {}).get(data_key)
    return IndexedTask(int(task["id"]), image if isinstance(image, str) else json.dumps(image), digest)


def catch_up(index: TaskIndex, api, project_id: int, data_key: str) -> list[IndexedTask]:
    """Bring the index to Label Studio's tasks; returns the tasks it did not hold before. One request
    when nothing changed (the task count); the tasks above the highest known id when tasks were
    added; a listing of every task only when the counts disagree after that."""
    total = api.task_count(project_id)
    if index.count() == total:
        return []
    added = [indexed(t, data_key) for t in api.tasks_after(project_id, index.max_id())]
    index.add(added)
    if index.count() == total:
        return added
    every = [indexed(t, data_key) for t in api.iter_tasks(project_id)]
    known = {t.id for t in index.tasks()}
    present = {t.id for t in every}
    index.remove(known - present)
    fresh = [t for t in every if t.id not in known]
    index.add(fresh)
    return added + fresh
