"""The serving process's refreshes, beside the next training instead of before it.

A correction's training job publishes its version and hands the refresh (refresh.py: the head,
then the rest) to this lane, one thread of its own, and ends: the next training starts at once while
Label Studio gets the head. A job's cycle is then its read and fit (about 4 s at 1,000 photos, not
6.7 s with the head), so corrections at a labeler's pace no longer queue behind writes. The lane
runs one refresh at a time; a refresh whose version no longer serves when its turn comes is
skipped (the newer one's follows), and one that runs stops at the next batch once a newer training
is asked for (as before). The report lands in the job's result (`refresh`, or `refresh_error`)
when it is done; the jobs page lists the lane's refreshes with the write-backs (`background`).
Only the serving process uses it: a training child or an RQ worker refreshes before it reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class RefreshLane:
    def __init__(self, refresher):
        self.refresher = refresher
        self._records: deque[dict] = deque(maxlen=100)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refresh")

    def submit(self, pid: str, vid: str, superseded: Callable[[], bool], answer: dict) -> None:
        """Refresh `vid` of project `pid` when its turn comes; the report goes into `answer`."""
        record = {"project": pid, "refresh": True, "version": vid, "state": "queued", "submitted_at": time.time()}
        with self._lock:
            self._records.append(record)
        self._pool.submit(self._run, record, pid, vid, superseded, answer)

    def records(self, pid: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._records if pid is None or r.get("project") == pid]

    def busy(self, pid: str) -> dict | None:
        """The project's refresh being written (else the one queued), shaped like a running job for
        status pages: a training that published is not done for its users until Label Studio
        serves the version."""
        open_ = [r for r in self.records(pid) if r["state"] in ("queued", "running")]
        if not open_:
            return None
        record = next((r for r in open_ if r["state"] == "running"), open_[0])
        return {
            "id": f"refresh-{record['version']}",
            "project": pid,
            "reason": "refresh",
            "state": "running",
            "started_at": record["submitted_at"],
            "progress": {"phase": "writing predictions to Label Studio", "version": record["version"]},
        }

    def active(self, pid: str | None = None) -> bool:
        """Whether a refresh (of the project, or of any) is queued or being written."""
        return any(r["state"] in ("queued", "running") for r in self.records(pid))

    def wait_idle(self, pid: str, timeout: float) -> bool:
        """Block until none of the project's refreshes is queued or running; True if in time."""
        deadline = time.monotonic() + timeout
        while self.active(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        """Finish what was handed over (a published version's head still reaches Label Studio)."""
        self._pool.shutdown(wait=True)

    def _run(self, record: dict, pid: str, vid: str, superseded, answer: dict) -> None:
        record["state"] = "running"
        answer["refresh_waited_s"] = round(time.time() - record["submitted_at"], 2)  # behind the lane's last
        try:
            answer["refresh"] = self.refresher.refresh(pid, superseded, version=vid)
            record.update(state="done")
        except Exception as exc:  # recorded and logged; the version serves either way, and Label
            # Studio's copy catches up on the next refresh
            log.exception("project %s: writing the predictions of %s to Label Studio failed", pid, vid)
            answer["refresh_error"] = f"{type(exc).__name__}: {exc}"
            record.update(state="failed", error=answer["refresh_error"])
        record["finished_at"] = time.time()
