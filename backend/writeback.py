"""Predict tasks in the background and write the predictions into Label Studio.

Label Studio's TASKS_CREATED webhook (an upload in the import dialog, an API import) names the new
tasks; the backend answers the webhook at once and predicts them here, then stores the predictions
with `POST /api/projects/<id>/import/predictions`, so the data manager shows a label and a score
for every new task without anybody pressing "Retrieve predictions". One run at a time per
process; the newest 100 runs are kept as records for the jobs page and tests.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class PredictionWriter:
    def __init__(self, projects, predictor):
        self.projects = projects
        self.predictor = predictor
        self._records: deque[dict] = deque(maxlen=100)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-predictions")

    def submit(self, pid: str, tasks: list[dict]) -> dict:
        record = {"project": pid, "tasks": len(tasks), "state": "queued", "submitted_at": time.time()}
        with self._lock:
            self._records.append(record)
        self._pool.submit(self._run, pid, tasks, record)
        return record

    def records(self, pid: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._records if pid is None or r.get("project") == pid]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, pid: str, tasks: list[dict], record: dict) -> None:
        record["state"] = "running"
        try:
            state = self.projects.state(pid)
            results = self.predictor.predict(tasks, project=pid, label_config=state.label_config if state else None)
            rows = [
                {"task": t["id"], **{k: r[k] for k in ("result", "score", "model_version", "cluster") if k in r}}
                for t, r in zip(tasks, results)
                if r.get("result") and isinstance(t.get("id"), int)
            ]
            written = self.projects.api(state).import_predictions(int(pid), rows)
            record.update(state="done", written=written, errors=sum(1 for r in results if "error" in r))
        except Exception as exc:  # recorded and logged with its traceback; the service goes on
            log.exception("project %s: predicting %d new task(s) failed", pid, len(tasks))
            record.update(state="failed", error=f"{type(exc).__name__}: {exc}")
        record["finished_at"] = time.time()
