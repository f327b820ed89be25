"""The project write lock (backend/locks.py) that keeps two writers of a project's
predictions from interleaving their delete and import (which left two predictions on a task in
tests/test_scale_labelstudio.py test 3): it excludes another process and another thread of the same
process, and a holder's release lets the next one in."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from backend.locks import training_lock, write_lock

REPO = Path(__file__).resolve().parents[1]
HOLDER = """
import sys, time
from pathlib import Path
from backend.locks import training_lock, write_lock
with write_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(1.0)
    (Path(sys.argv[1]) / "log").write_text("released by the other process")
"""


def test_another_process_holding_the_lock_makes_a_writer_wait(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with write_lock(tmp_path):
        seen = (tmp_path / "log").read_text()  # the other process wrote before it let go
    assert proc.wait(timeout=30) == 0
    assert seen == "released by the other process"


def test_threads_of_one_process_exclude_each_other(tmp_path):
    inside, overlaps = [], []
    guard = threading.Lock()

    def writer():
        for _ in range(20):
            with write_lock(tmp_path):
                with guard:
                    inside.append(1)
                    if len(inside) > 1:
                        overlaps.append(len(inside))
                threading.Event().wait(0.002)
                with guard:
                    inside.pop()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not overlaps and not inside
    assert (tmp_path / "lswrite.lock").exists()


def test_a_request_that_must_not_wait_is_told_the_training_lock_is_taken(tmp_path):
    with training_lock(tmp_path):
        with training_lock(tmp_path, wait=False) as got:
            assert got is False
    with training_lock(tmp_path, wait=False) as got:
        assert got is True
