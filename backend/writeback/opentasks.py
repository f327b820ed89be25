"""The tasks a person may have open in Label Studio's labeling view: every write leaves them as they are.

Why: the labeling view pre-selects the prediction of the task it serves and, on submit, sends that
prediction's id as the annotation's `parent_prediction`; Label Studio 1.23.2 refuses the annotation
(400, "Invalid pk ... object does not exist") when the prediction was deleted meanwhile. A write
replaces predictions (lswrite.py: delete, then import), and a new version's head replaces exactly
the tasks at the top of the queue, the ones people are being served: before this record, a person
who took longer over a photo than the correction before it took to publish lost their label. Label
Studio's API says nothing about which task is locked to whom (`TaskLock`), so the backend works it
out from what it sees, in `projects/<id>/open.json`:

* `note_queue`: every write records the first QUEUE_TOP tasks of its version in the two orders Label
  Studio serves from: the score (uncertainty sampling, "Label All Tasks") and the queue key (a tab's
  "Label tasks as displayed"). A write of a new version starts a new queue; the first FIRST_SERVED
  tasks of the one it replaces stay held (someone may have opened one without a submit before)
  until the next version's write, which replaces what they hold.
* `note_submit`: an annotation webhook says its person (`completed_by`) is served next. Their
  candidates are the first tasks of both orders that nobody annotated, as deep as Label Studio may
  serve them (PER_PERSON, plus one for each other person active: tasks locked to others are passed
  over, and with several annotators Label Studio picks at random among the first of them). They
  replace that person's previous candidates: the task they just submitted drops out.
* `held`: the candidates of the people active in the last HOLD seconds, with the version each was
  served with, and the first tasks of the replaced queue.

A held task keeps the prediction it was served with (lswrite.py `keep`): a write puts the new one
beside it, which is what the labeling view shows on a reload (it lists the project's version only)
and what uncertainty sampling orders by, and leaves the task's notes as they were; the removal of
old versions spares its version. The first write after its person submits again replaces all of
them. The cost: up to 2 x (PER_PERSON + others) tasks per active person, plus the first tasks of
the last two queues, show the notes of the version they were served with in the task list. Not
covered: a task opened from the task list by a click, or left open longer than HOLD while others'
corrections publish versions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backend.locks import held as file_lock
from training.atomic import write_json_atomic

RECORD = "open.json"
LOCK = "open.lock"
QUEUE_TOP = 50  # tasks recorded per order: the deepest a person can be served from
FIRST_SERVED = 2  # tasks per order of a replaced queue held: someone may have opened one
PER_PERSON = 3  # candidates per order for one person alone
HOLD = 1800.0  # seconds a person's candidates are held after their last submit
DONE_KEPT = 2000  # annotated tasks remembered (never candidates)
QUIET_S = 60.0  # seconds without a submit after which nobody is taken to be labeling


def _orders(queue: dict) -> tuple[list[int], list[int]]:
    """A queue's tasks in the two orders Label Studio serves from: by score and by queue key."""
    rows = queue.get("rows", [])
    by_score = sorted(rows, key=lambda r: (r["score"], r["priority"]))
    by_key = sorted(rows, key=lambda r: (r["priority"], r["score"]))
    return [r["task"] for r in by_score], [r["task"] for r in by_key]


def _firsts(queue: dict) -> dict:
    """The first tasks of a queue, which someone may have opened: held once the queue is replaced."""
    by_score, by_key = _orders(queue)
    return {"version": queue.get("version"), "tasks": by_score[:FIRST_SERVED] + by_key[:FIRST_SERVED]}


def _parsed(text) -> dict:
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


class OpenTasks:
    """The record in `projects/<id>/open.json`; with `redis` (RQ workers: the webhook reaches an API
    replica, the refresh runs on a worker, neither sees the other's files) under `<prefix>:open:<id>`."""

    def __init__(self, root: Path, redis=None, prefix: str = "tasveer"):
        self.root = Path(root)
        self.redis = redis
        self.prefix = prefix

    def _key(self, pid: str) -> str:
        return f"{self.prefix}:open:{pid}"

    def _path(self, pid: str) -> Path:
        return self.root / str(pid) / RECORD

    def _read(self, pid: str) -> dict:
        if self.redis is not None:
            return _parsed(self.redis.get(self._key(pid)))
        try:
            return _parsed(self._path(pid).read_text())
        except OSError:
            return {}

    @contextmanager
    def _locked(self, pid: str) -> Iterator[None]:
        if self.redis is not None:
            with self.redis.lock(self._key(pid) + ":lock", timeout=10, blocking_timeout=10):
                yield
        else:
            with file_lock(self.root / str(pid) / LOCK):
                yield

    def _update(self, pid: str, change) -> dict:
        """Read the record, `change(record)` in place, write it back: one writer at a time."""
        with self._locked(pid):
            record = self._read(pid)
            change(record)
            if self.redis is not None:
                self.redis.set(self._key(pid), json.dumps(record))
            else:
                write_json_atomic(self._path(pid), record, fsync=False)
        return record

    def note_queue(self, pid: str, version: str, rows: list[dict]) -> None:
        """Rows just written with `version` (a head, a batch of the rest, new tasks): the tops of
        the queue grow by them; a new version's first write starts its queue."""
        scored = [r for r in rows if "task" in r and "score" in r]
        if not scored:
            return

        def change(record: dict) -> None:
            queue = record.get("queue") or {}
            if queue.get("version") != version:
                if queue:
                    record["replaced"] = _firsts(queue)
                queue = {"version": version, "rows": []}
            merged = {r["task"]: r for r in queue.get("rows", [])}
            for r in scored:
                task = int(r["task"])
                merged[task] = {"task": task, "score": r["score"], "priority": r.get("priority", 1.0)}
            queue["rows"] = list(merged.values())
            by_score, by_key = _orders(queue)
            keep = set(by_score[:QUEUE_TOP]) | set(by_key[:QUEUE_TOP])  # the rest is never served first
            queue["rows"] = [merged[t] for t in merged if t in keep]
            record["queue"] = queue

        self._update(pid, change)

    def note_submit(self, pid: str, person, task, now: float | None = None) -> list[int]:
        """`person` annotated `task`: what they may be served next is held (returned)."""
        now = time.time() if now is None else now

        def change(record: dict) -> None:
            done = [t for t in record.get("done", []) if t != task][-(DONE_KEPT - 1) :] + [task]
            record["done"] = done
            people = {k: v for k, v in (record.get("people") or {}).items() if v.get("at", 0) > now - HOLD}
            queue = record.get("queue") or {}
            depth = PER_PERSON + len(set(people) - {str(person)})
            skip = set(done)
            by_score, by_key = ([t for t in order if t not in skip][:depth] for order in _orders(queue))
            picks = by_score + [t for t in by_key if t not in by_score]
            people[str(person)] = {"at": now, "version": queue.get("version"), "tasks": picks}
            record["people"] = people

        record = self._update(pid, change)
        return record["people"][str(person)]["tasks"]

    def labeling(self, pid: str, now: float | None = None) -> bool:
        """Whether someone submitted within the last QUIET_S seconds (the webhooks' record)."""
        now = time.time() if now is None else now
        people = (self._read(pid).get("people") or {}).values()
        return any(p.get("at", 0.0) > now - QUIET_S for p in people)

    def done(self, pid: str) -> set[int]:
        """The tasks annotated lately (webhooks), newer than any version's training: a duplicate
        group with one of them waits behind it (backend/collection/queueorder.py)."""
        return {int(t) for t in self._read(pid).get("done", [])}

    def held(self, pid: str, writing: str | None = None, now: float | None = None) -> dict[int, str | None]:
        """Task id -> the version it was served with, for every task someone may have open; a
        write of version `writing` other than the queue's replaces that queue: its first tasks too."""
        now = time.time() if now is None else now
        record = self._read(pid)
        done = set(record.get("done", []))
        out: dict[int, str | None] = {}
        queue = record.get("queue") or {}
        # a write of a new version replaces the queue: its first tasks are held from now on, and
        # those of the queue before it are let go (this write replaces what they hold, once)
        replacing = writing is not None and queue and queue.get("version") != writing
        first = _firsts(queue) if replacing else record.get("replaced") or {}
        out.update({int(t): first.get("version") for t in first.get("tasks", [])})
        for person in (record.get("people") or {}).values():
            if person.get("at", 0) > now - HOLD:
                out.update({int(t): person.get("version") for t in person.get("tasks", [])})
        return {t: v for t, v in out.items() if t not in done}
