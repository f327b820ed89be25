"""The per-project file locks, each an exclusive `flock` on a file in `projects/<id>/`, held by one
open file per holder, so threads of one process exclude each other as processes do, and the OS
drops a lock when its process dies. Not reentrant: a holder never asks for its lock again.

* `train.lock` (`training_lock`): one training of a project at a time, across processes (a restarted
  backend while the worker of a killed one still runs, two RQ workers): the second waits, then
  reads Label Studio afresh, so versions are published in the order of the data they saw. A
  request that must not wait (bulk labeling) asks with `wait=False` and is told whether it got it.
* `lswrite.lock` (`write_lock`): one writer of a project's predictions in Label Studio at a time.
  A write replaces what a batch of tasks holds (writeback/lswrite.py: delete, then import); two
  writers of the same tasks interleaved (the new tasks' write-back, a refresh on a training
  thread, in a training child or on an RQ worker) could delete before either imports and leave two
  predictions on a task. Held for one batch (about a second), never across a training or a fetch.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TRAIN_LOCK = "train.lock"
WRITE_LOCK = "lswrite.lock"


@contextmanager
def held(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the lock file `path` for the block (yields True); with `wait=False`, when another holds
    it, yields False at once and holds nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def training_lock(project_dir: Path, wait: bool = True):
    """The project's training lock (see the module docstring)."""
    return held(project_dir / TRAIN_LOCK, wait)


def write_lock(project_dir: Path):
    """The project's prediction-write lock (see the module docstring)."""
    return held(project_dir / WRITE_LOCK)
