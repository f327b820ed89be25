"""The backend's write-back (backend/writeback/newtasks.py): new photos' predictions are written
while the collection's update runs, never after it.

At 50,000 photos one collection update took minutes; on the write-back's one thread every new
photo's prediction waited for it (bench/scale.py, 2026-12-05). The update now has a thread of its
own. Checked on the writer's own queue with two pieces of work that stand in for the update and a
write-back (the real ones need a trained version and a Label Studio: tests/test_curation_labelstudio.py
and tests/test_scale_labelstudio.py run them)."""

from __future__ import annotations

import threading
import time

from backend.writeback import newtasks
from backend.writeback.newtasks import PredictionWriter


def test_a_write_back_finishes_while_a_collection_update_runs():
    writer = PredictionWriter(projects=None, predictor=None, refresher=None)
    update_started, update_may_end, written = threading.Event(), threading.Event(), threading.Event()

    def update(pid):
        update_started.set()
        assert update_may_end.wait(30)
        return {"photos": 1}

    def write_back(pid):
        written.set()
        return {"written": 1}

    try:
        writer._queue({"project": "1", "collection": True}, update, "1")
        assert update_started.wait(10)
        writer._queue({"project": "1", "tasks": 1}, write_back, "1")
        assert written.wait(10), "the write-back waited for the collection update"
        states = {("collection" in r): r["state"] for r in writer.records("1")}
        assert states == {True: "running", False: "done"}
    finally:
        update_may_end.set()
        writer.close()
    assert all(r["state"] == "done" for r in writer.records("1"))


def test_a_collection_update_starts_after_the_write_backs_queued_before_it(monkeypatch):
    writer = PredictionWriter(projects=None, predictor=None, refresher=None)
    writing, write_may_end = threading.Event(), threading.Event()
    order = []

    def write_back(pid):
        writing.set()
        assert write_may_end.wait(30)
        order.append("written")
        return {}

    monkeypatch.setattr(newtasks, "update_and_rewrite", lambda refresher, pid, labels: order.append("update") or {})
    try:
        writer._queue({"project": "1", "tasks": 1}, write_back, "1")
        assert writing.wait(10)
        writer.collection("1")
        time.sleep(1.5)
        assert order == []  # the update waits for the predictions queued before it
        write_may_end.set()
        deadline = time.monotonic() + 10
        while len(order) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert order == ["written", "update"]
    finally:
        write_may_end.set()
        writer.close()


def test_a_burst_asks_for_one_more_collection_update():
    writer = PredictionWriter(projects=None, predictor=None, refresher=None)
    release = threading.Event()
    try:
        writer._queue({"project": "1", "collection": True}, lambda pid: release.wait(30) and {}, "1")
        ran = []
        writer._collection = lambda pid: ran.append(pid) or {}  # what collection() queues
        queued = [writer.collection("1") for _ in range(5)]
        assert len({r["submitted_at"] for r in queued}) == 1  # one pending update covers the burst
        release.set()
        deadline = time.monotonic() + 10
        while any(r["state"] != "done" for r in writer.records("1")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ran == ["1"]
    finally:
        release.set()
        writer.close()


def test_the_collection_thread_yields_the_cpu_to_the_write_backs():
    """After a big import the update takes minutes of CPU; trainings and write-backs come first."""
    import os

    writer = PredictionWriter(projects=None, predictor=None, refresher=None)

    def nice(pid):
        return {"nice": os.getpriority(os.PRIO_PROCESS, threading.get_native_id())}

    try:
        update = writer._queue({"project": "1", "collection": True}, nice, "1")
        write_back = writer._queue({"project": "1", "tasks": 1}, nice, "1")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and {update["state"], write_back["state"]} != {"done"}:
            time.sleep(0.05)
    finally:
        writer.close()
    assert update["nice"] == write_back["nice"] + newtasks.COLLECTION_NICE, (update, write_back)
