"""Make sure tasks have predictions: wait for the backend, then ask LS to retrieve the rest.

The backend writes predictions itself when LS sends it the TASKS_CREATED webhook. Tasks still
without one after a short wait go through LS's Data Manager action "Retrieve Predictions"
(`retrieve_tasks_predictions`): LS calls the backend's /predict synchronously with those tasks and
stores what it returns (tasks that already have a prediction of the backend's current
model_version are left out by LS).

Each poll asks Label Studio about this import's tasks only, never the whole project: the tasks
still without a prediction, oldest first, `POLL_CHUNK` ids per request (lsclient `predicted_among`:
the task list filtered to those ids and to `total_predictions > 0`), at most `POLL_WINDOW` of them
and no further than the first chunk with nothing new: the backend predicts uploads in their order,
so while it is behind a poll is one request. A last full pass over every missing task settles the
report. A poll's cost is thus bounded by the window, not by the project: listing every prediction
of the project, as the poll did before, took Label Studio 104 / 783 / 2,067 ms at 1,100 / 8,200 /
20,300 tasks, once a second for the whole import; asking about 100 ids 84 / 75 / 72 ms
(`bench/scale_poll.py`, 2026-12-05)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsclient import LabelStudioError
from lsproto.notes import is_waiting_version

RETRIEVE_CHUNK = 50
POLL_CHUNK = 100  # task ids per poll request (~1 KB of URL; proxies cut request lines at 4-8 KB)
POLL_WINDOW = 500  # the oldest missing tasks one poll asks about (5 requests at most)


@dataclass
class PredictionReport:
    task_ids: list[int]
    predicted: set[int] = field(default_factory=set)
    retrieved_for: set[int] = field(default_factory=set)  # tasks sent through the retrieve action
    errors: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return [t for t in self.task_ids if t not in self.predicted]

    @property
    def complete(self) -> bool:
        return not self.missing


def tasks_with_predictions(client, project_id: int, task_ids: Sequence[int] | None = None) -> set[int]:
    """Ids of the project's tasks that have at least one prediction (does not make LS predict);
    with `task_ids`, only those of them (asked about those tasks only, `POLL_CHUNK` per request)."""
    if task_ids is None:
        return {row["task"] for row in client.project_predictions(project_id)}
    ids = list(dict.fromkeys(task_ids))
    got: set[int] = set()
    for i in range(0, len(ids), POLL_CHUNK):
        got |= client.predicted_among(project_id, ids[i : i + POLL_CHUNK])
    return got


def retrieve_predictions(client, project_id: int, task_ids: Sequence[int], *, timeout: float = 300.0) -> None:
    """Run LS's "Retrieve Predictions" action for `task_ids` (LS calls the backend's /predict);
    a LabelStudioError when LS refuses it."""
    client.task_action(project_id, "retrieve_tasks_predictions", task_ids, timeout=timeout)


def backend_problems(client, project_id: int) -> list[str]:
    """Why LS may not get predictions: no ML backend, or one not in the connected state."""
    try:
        backends = list(client.ml.list(project=project_id))
    except Exception as exc:  # reporting only
        return [f"cannot read the project's ML backends: {exc}"]
    if not backends:
        return ["the project has no ML backend connected"]
    problems = []
    for ml in backends:
        state = str(getattr(ml.state, "value", ml.state))
        if state != "CO":
            problems.append(f"ML backend {ml.url} is in state {state}: {ml.error_message or 'no error message'}")
    return problems


@dataclass
class _Watch:
    """One `ensure_predictions` call: what it waits for, its clock, deadline and progress bar."""

    client: Any
    project_id: int
    report: PredictionReport
    deadline: float
    poll: float
    clock: Callable[[], float]
    bar: Any

    def refresh(self, full: bool = False) -> None:
        """Ask about the missing tasks, oldest first, `POLL_CHUNK` at a time: up to `POLL_WINDOW` of
        them, and no further than the first chunk without a new prediction (the backend predicts
        in upload order: the later ones wait for it); every missing task when `full`. A task, once
        seen with a prediction, stays counted."""
        missing = self.report.missing
        asked = missing if full else missing[:POLL_WINDOW]
        for i in range(0, len(asked), POLL_CHUNK):
            got = self.client.predicted_among(self.project_id, asked[i : i + POLL_CHUNK])
            self.bar.update(len(got))
            self.report.predicted |= got
            if not got and not full:
                break

    def open(self) -> bool:
        return bool(self.report.missing) and self.clock() < self.deadline

    def wait_for_backend(self, quiet: float) -> None:
        """The backend predicts on TASKS_CREATED: wait while it keeps producing; give up on it
        after `quiet` s without a new prediction."""
        last_growth, last_count = self.clock(), len(self.report.predicted)
        while self.open() and self.clock() - last_growth < quiet:
            time.sleep(self.poll)
            self.refresh()
            if len(self.report.predicted) > last_count:
                last_growth, last_count = self.clock(), len(self.report.predicted)

    def ask_label_studio(self) -> None:
        """Run the retrieve action for the tasks still missing, in chunks, the newest first (the
        backend predicts in upload order: it gets to those last); stop as soon as the backend is
        seen writing again (a prediction of a task not asked for), so the two do not predict the
        same tasks and fight over Label Studio's writes."""
        missing = self.report.missing
        for end in range(len(missing), 0, -RETRIEVE_CHUNK):
            chunk = missing[max(0, end - RETRIEVE_CHUNK) : end]
            try:
                retrieve_predictions(
                    self.client, self.project_id, chunk, timeout=max(5.0, self.deadline - self.clock())
                )
                self.report.retrieved_for.update(chunk)
            except LabelStudioError as exc:
                self.report.errors.append(f"retrieve predictions action failed: {exc}")
            got = self.client.predicted_among(self.project_id, chunk) - self.report.predicted
            self.bar.update(len(got))
            self.report.predicted |= got
            before = set(self.report.predicted)
            self.refresh()
            if self.clock() >= self.deadline or (self.report.predicted - before) - self.report.retrieved_for:
                break

    def retrieve_rest(self, quiet: float, every: float = 15.0) -> None:
        """Ask Label Studio for the rest while the backend writes nothing, back to waiting for the
        backend whenever it does; stragglers are asked for again every `every` s, until done."""
        last_ask: float | None = None
        while self.open():
            if last_ask is None or self.clock() - last_ask > every:
                self.ask_label_studio()
                last_ask = self.clock()
                self.wait_for_backend(quiet)
            if self.report.missing:
                time.sleep(self.poll)
                self.refresh()


def show_retrieved_version(client, project_id: int, report: PredictionReport) -> None:
    """Point the project at the version the retrieved predictions carry, when it shows none of
    the versions it has predictions of.

    Connecting an ML backend makes Label Studio show the backend's title as the project's
    model_version; the backend moves it to its serving version once it has written predictions
    of it. When it was too slow and the retrieve action filled the tasks instead, the project would
    show no prediction (an empty score column, tasks served in id order, not by uncertainty) until
    the backend's own write ends. A project that already shows a version with predictions (the
    backend's, or one a person chose) is left alone."""
    try:
        # a waiting duplicate's version is never the one to show (lsproto/notes.py waiting_version)
        versions = {v for v, count in client.model_versions(project_id).items() if count and not is_waiting_version(v)}
        if not versions or client.model_version(project_id) in versions:
            return
        wanted = [v for v in client.backend_versions(project_id) if v in versions]
        if not wanted and len(versions) == 1:
            wanted = list(versions)
        if wanted:
            client.set_model_version(project_id, wanted[0])
    except LabelStudioError as exc:  # the predictions are there; only what LS shows first is off
        report.errors.append(f"could not set the project's model version: {exc}")


def ensure_predictions(
    client,
    project_id: int,
    task_ids: Sequence[int],
    *,
    wait_backend: float = 15.0,
    timeout: float = 300.0,
    poll: float = 1.0,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> PredictionReport:
    """Return when every task in `task_ids` has a prediction or `timeout` seconds have passed.

    1. poll while the backend writes predictions, until `wait_backend` s pass without a new one;
    2. retrieve predictions through LS for the rest, in chunks, newest first, back to 1 as soon as
       the backend writes again;
    3. keep polling (and re-asking for stragglers every ~15 s) until done or timeout;
    4. when LS retrieved any, make sure the project shows their version (`show_retrieved_version`)."""
    from tqdm import tqdm

    report = PredictionReport(list(task_ids))
    bar = tqdm(total=len(set(task_ids)), desc="predictions", unit="task", disable=not progress)
    watch = _Watch(client, project_id, report, clock() + timeout, poll, clock, bar)
    try:
        watch.refresh()
        watch.wait_for_backend(wait_backend)
        watch.retrieve_rest(wait_backend)
        watch.refresh(full=True)  # the tasks past the window that got a prediction meanwhile
        if report.retrieved_for:
            show_retrieved_version(client, project_id, report)
        if report.missing:
            report.errors.extend(backend_problems(client, project_id))
    finally:
        bar.close()
    return report
