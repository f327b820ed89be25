"""One writer of a project's predictions in Label Studio at a time, across threads and processes.

A write replaces what a batch of tasks holds (lswrite.py: delete, then import). Two writers of the
same tasks interleaved (the new tasks' write-back on the backend's write-back thread, a refresh on a
training thread, in a training child or on an RQ worker) can delete before either imports and leave
two predictions on a task. So every write takes this lock: an exclusive `flock` on
`projects/<id>/lswrite.lock`, one open file per holder, so threads of one process exclude each other
as processes do. It is held for one batch (about a second), never across a training or a fetch.
Not reentrant: a holder never asks for it again.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "lswrite.lock"


@contextmanager
def project_write_lock(project_dir: Path) -> Iterator[None]:
    """Hold the project's write lock for the `with` block (waits for the holder)."""
    project_dir.mkdir(parents=True, exist_ok=True)
    with open(project_dir / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
