"""Background training runner: in-process threads, one training at a time per project.

Coalescing: a project has at most one *running* and one *pending* job. With `min_interval`, a
project's job that stands for a burst of requests (more than one per PERSON_GAP seconds since the
previous job started: a script, a bulk action) starts no sooner than `min_interval` seconds after
the previous one started, and requests arriving before it starts merge into it; at a person's pace
(a few labelers) it starts as soon as the previous one ends. A request that arrives
while a job runs becomes the pending job; further requests merge into that same pending job
(its `requests` count grows). The pending job starts only after the running one ends, and the
training function reads the project's annotations from Label Studio when it *starts*, so the
pending job always covers the newest annotation, however long the burst.

A job that raises is recorded as `failed` with its error (and logged); nothing is published, so
the previously published version keeps serving.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from backend.jobs.recipe import merge_reason

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, SKIPPED = "queued", "running", "done", "failed", "skipped"
# Requests at most one per this many seconds (since the previous job started) are people labeling:
# their job does not wait for `min_interval`. A person takes longer than this over a photo; a burst
# of webhooks (bench/load.py: one every 50 ms) comes far faster.
PERSON_GAP = 2.0


class SkipJob(Exception):
    """Raised by a job function when there is nothing to do (e.g. too few labels); not a failure."""


@dataclass
class Job:
    id: str
    project: str
    reason: str
    state: str = QUEUED
    requests: int = 1  # how many triggers this job covers (coalesced webhooks)
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: str | None = None
    # what a running job is doing, for status pages: {"phase": str, "epoch": int, "epochs": int,
    # "step": int, "steps": int, "eta_s": float, ...}; set through `report`, readable any time
    progress: dict | None = None

    def report(self, **fields) -> None:
        """Record progress (merged into `progress`; a new `phase` starts a fresh record)."""
        if "phase" in fields and (self.progress or {}).get("phase") != fields["phase"]:
            self.progress = {}
        self.progress = {**(self.progress or {}), **fields, "at": time.time()}

    def to_dict(self) -> dict:
        d = asdict(self)
        if not isinstance(self.result, (str, int, float, dict, list, type(None))):
            d["result"] = str(self.result)
        return d


class JobTrainer(Protocol):
    """What trains a job: trainer.Trainer in this process, childtrainer.ProcessTrainer in a child."""

    def run(self, pid: str, job: Job) -> dict: ...


class Runner(Protocol):
    """What the service asks of its job runner: JobRunner (threads here) or
    redisrunner.RQJobRunner (RQ workers)."""

    def submit(self, project: str, reason: str) -> Job: ...
    def get(self, job_id) -> Job | None: ...
    def jobs(self, project: str | None = None) -> list[Job]: ...
    def status(self, project: str) -> dict: ...
    def busy(self, project: str | None = None) -> bool: ...
    def wait_idle(self, project: str | None = None, timeout: float = 60.0) -> bool: ...
    def shutdown(self, timeout: float = 30.0) -> None: ...


@dataclass
class _Slot:
    running: Job | None = None
    pending: Job | None = None
    last_start: float = float("-inf")  # monotonic time the project's last job started


class JobRunner:
    """`submit(project, reason)` schedules `work(project, job)` in a thread; returns the Job."""

    def __init__(
        self,
        work: Callable[[str, Job], Any],
        history: int = 200,
        on_submit: Callable[[str, str], None] | None = None,
        on_idle: Callable[[str], None] | None = None,
        min_interval: float = 0.0,
    ):
        self._work = work
        # a project's next job, when it stands for a burst of requests, starts no sooner than this
        # many seconds after its last one started (requests meanwhile merge into it): a burst of
        # webhooks costs at most two trainings; at a person's pace the job starts at once
        self.min_interval = min_interval
        # called under the runner's lock: when a training is asked for, and when a project has no
        # job running or waiting any more (not at shutdown: what was asked for is still owed)
        self._on_submit = on_submit
        self._on_idle = on_idle
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._history: deque[Job] = deque(maxlen=history)
        self._ids = itertools.count(1)
        self._threads: set[threading.Thread] = set()
        self._closed = False

    def submit(self, project: str, reason: str) -> Job:
        project = str(project)
        with self._lock:
            if self._closed:
                raise RuntimeError("job runner is shut down")
            slot = self._slots.setdefault(project, _Slot())
            if self._on_submit is not None:
                self._on_submit(project, reason)
            started = slot.running is None or slot.running.state != QUEUED or not self.min_interval
            waiting = slot.pending or (None if started else slot.running)
            if waiting is not None:  # not started yet: it will read the newest annotations
                waiting.requests += 1
                waiting.reason = merge_reason(waiting.reason, reason)
                return waiting
            job = Job(id=f"{project}-{next(self._ids)}", project=project, reason=reason)
            self._history.append(job)
            if slot.running is None:
                slot.running = job
                self._start(slot, job)
            else:
                slot.pending = job
            return job

    def _start(self, slot: _Slot, job: Job) -> None:
        thread = threading.Thread(target=self._run, args=(slot, job), name=f"train-{job.id}", daemon=True)
        self._threads.add(thread)
        thread.start()

    def _run(self, slot: _Slot, first: Job) -> None:
        project = first.project
        job: Job | None = first
        while job is not None:
            self._wait_turn(slot, job)
            with self._lock:
                if self._closed:  # shut down while waiting its turn: still owed, run after a restart
                    job.state, job.error, job.finished_at = SKIPPED, "backend shut down", time.time()
                    slot.running = None
                    self._threads.discard(threading.current_thread())
                    return
                job.state, job.started_at = RUNNING, time.time()
                slot.last_start = time.monotonic()
            log.info("training job %s started (%s, %d request(s))", job.id, job.reason, job.requests)
            try:
                job.result = self._work(job.project, job)
                job.state = DONE
            except SkipJob as exc:
                job.state, job.error = SKIPPED, str(exc)
                log.info("training job %s skipped: %s", job.id, exc)
            except Exception as exc:  # a failed job must not kill the runner
                job.state, job.error = FAILED, f"{type(exc).__name__}: {exc}"
                log.exception("training job %s failed: %s", job.id, job.error)
            job.finished_at = time.time()
            with self._lock:
                job = slot.pending
                slot.pending = None
                slot.running = job
                if job is None or self._closed:
                    slot.running = None
                    if job is None and not self._closed and self._on_idle is not None:
                        self._idle(self._on_idle, project)
                    job = None
                    self._threads.discard(threading.current_thread())

    def _wait_turn(self, slot: _Slot, job: Job) -> None:
        """Until `min_interval` after the project's last start, while `job`'s requests came in a burst."""
        while not self._closed:
            since = time.monotonic() - slot.last_start
            if since >= self.min_interval or job.requests <= 1 + since / PERSON_GAP:
                return
            time.sleep(min(self.min_interval - since, 0.1))

    def _idle(self, hook: Callable[[str], None], project: str) -> None:
        try:
            hook(project)
        except Exception:  # noqa: BLE001 - bookkeeping must not kill the runner
            log.exception("project %s: idle hook failed", project)

    # -- status -------------------------------------------------------------------------------------
    def get(self, job_id) -> Job | None:
        with self._lock:
            return next((j for j in self._history if j.id == job_id), None)

    def jobs(self, project: str | None = None) -> list[Job]:
        with self._lock:
            return [j for j in self._history if project is None or j.project == str(project)]

    def status(self, project: str) -> dict:
        with self._lock:
            slot = self._slots.get(str(project))
            running = slot.running.to_dict() if slot and slot.running else None
            pending = slot.pending.to_dict() if slot and slot.pending else None
        return {"running": running, "pending": pending}

    def busy(self, project: str | None = None) -> bool:
        with self._lock:
            slots = self._slots.values() if project is None else [self._slots.get(str(project))]
            return any(s is not None and (s.running or s.pending) for s in slots)

    def wait_idle(self, project: str | None = None, timeout: float = 60.0) -> bool:
        """Block until no job runs or waits (for the project, or at all). True if idle in time."""
        deadline = time.monotonic() + timeout
        while self.busy(project):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def shutdown(self, timeout: float = 30.0) -> None:
        """Drop pending jobs and wait (bounded) for running ones."""
        with self._lock:
            self._closed = True
            for slot in self._slots.values():
                if slot.pending is not None:
                    slot.pending.state, slot.pending.error = SKIPPED, "backend shut down"
                    slot.pending = None
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
