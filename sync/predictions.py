"""Make sure tasks have predictions: wait for the backend, then ask LS to retrieve the rest.

The backend writes predictions itself when LS sends it the TASKS_CREATED webhook. Tasks still
without one after a short wait go through LS's Data Manager action "Retrieve Predictions"
(`retrieve_tasks_predictions`): LS calls the backend's /predict synchronously with those tasks and
stores what it returns (tasks that already have a prediction of the backend's current
model_version are left out by LS)."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lsclient import LabelStudioError

RETRIEVE_CHUNK = 50


@dataclass
class PredictionReport:
    task_ids: list[int]
    predicted: set[int] = field(default_factory=set)
    retrieved_for: set[int] = field(default_factory=set)   # tasks sent through the retrieve action
    errors: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return [t for t in self.task_ids if t not in self.predicted]

    @property
    def complete(self) -> bool:
        return not self.missing


def tasks_with_predictions(client, project_id: int) -> set[int]:
    """Ids of the project's tasks that have at least one prediction (does not make LS predict)."""
    return {row["task"] for row in client.project_predictions(project_id)}


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
    2. retrieve predictions through LS for the rest, in chunks;
    3. keep polling (and re-asking for stragglers every ~15 s) until done or timeout."""
    from tqdm import tqdm

    report = PredictionReport(list(task_ids))
    wanted = set(task_ids)
    start = clock()
    deadline = start + timeout
    bar = tqdm(total=len(wanted), desc="predictions", unit="task", disable=not progress)

    def refresh() -> None:
        got = tasks_with_predictions(client, project_id) & wanted
        bar.update(len(got) - len(report.predicted & wanted))
        report.predicted = got

    try:
        refresh()
        last_growth, last_count = clock(), len(report.predicted)
        # 1. the backend predicts on TASKS_CREATED: wait while it keeps producing, give up on it
        #    after `wait_backend` s without a new prediction
        while report.missing and clock() < deadline and clock() - last_growth < wait_backend:
            time.sleep(poll)
            refresh()
            if len(report.predicted) > last_count:
                last_growth, last_count = clock(), len(report.predicted)
        # 2. ask LS to retrieve the rest (again every 15 s for stragglers)
        last_ask = None
        while report.missing and clock() < deadline:
            if last_ask is None or clock() - last_ask > 15.0:
                missing = report.missing
                for i in range(0, len(missing), RETRIEVE_CHUNK):
                    chunk = missing[i:i + RETRIEVE_CHUNK]
                    try:
                        retrieve_predictions(client, project_id, chunk,
                                             timeout=max(5.0, deadline - clock()))
                        report.retrieved_for.update(chunk)
                    except LabelStudioError as exc:
                        report.errors.append(f"retrieve predictions action failed: {exc}")
                    refresh()
                    if clock() >= deadline:
                        break
                last_ask = clock()
            if report.missing:
                time.sleep(poll)
                refresh()
        if report.missing:
            report.errors.extend(backend_problems(client, project_id))
    finally:
        bar.close()
    return report
