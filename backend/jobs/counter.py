"""How many annotation changes a project has had since its last training was scheduled, for the
`retrain_every` parameter ("retrain after every N new annotations"); when a training was last asked
for (`training_asked_at`).

One small JSON file per project (`projects/<id>/retrain.json`), so the count survives a restart
and is shared by every process of the backend; a lock keeps concurrent webhooks of one process
from losing a count.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from training.atomic import write_json_atomic

FILE = "retrain.json"


class AnnotationCounter:
    def __init__(self, projects_root: Path):
        self.root = Path(projects_root)
        self._lock = threading.Lock()

    def _path(self, pid: str) -> Path:
        return self.root / str(pid) / FILE

    def count(self, pid: str) -> int:
        try:
            return int(json.loads(self._path(pid).read_text()).get("since_training", 0))
        except (OSError, ValueError, AttributeError, TypeError):
            return 0

    def add(self, pid: str, n: int, every: int) -> tuple[bool, int]:
        """Count `n` annotation changes. Returns (train now?, count so far); when the count reaches
        `every` it starts again from 0 and the answer is True."""
        with self._lock:
            total = self.count(pid) + max(0, n)
            due = total >= every
            self._write(pid, 0 if due else total)
            return due, total

    def reset(self, pid: str) -> None:
        with self._lock:
            if self._path(pid).parent.is_dir():
                self._write(pid, 0)

    def _write(self, pid: str, value: int) -> None:
        write_json_atomic(self._path(pid), {"since_training": value})


TRAINING_OWED = "TRAINING_OWED"  # projects/<id>/TRAINING_OWED: a training was asked for and has not run


def training_asked_at(projects_root: Path, pid: str) -> float:
    """When a training of the project was last asked for and has not run yet (0.0 when none is
    owed): a refresh stops writing the rest once this is newer than its own job's start. Written
    by the in-process runner's `on_submit` (service.py), visible to a child trainer of the machine."""
    try:
        return float(json.loads((Path(projects_root) / str(pid) / TRAINING_OWED).read_text()).get("at", 0.0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0.0
