"""The collection's catch-up gives way to corrections (issue "Ten thousand photos"): after a big
import the duplicate finder and the nearest-photo lists take minutes, and at 50,000 photos they
shared the 2 cores with every correction's training and refresh (a py-spy put 90 % of the backend's
samples in them, bench/RESULTS.md). Between steps the update now waits while a training runs or waits
its turn, or a version's refresh is written, at most GIVE_WAY_MAX seconds a step."""

from __future__ import annotations

import threading
import time

import numpy as np

from backend.collection.curator import ADD_CHUNK, give_way
from backend.jobs.runner import JobRunner
from backend.service import Backend
from backend.settings import Settings
from training import nearest
from training.nearest import NearestKept


def test_give_way_waits_while_busy_and_no_longer_than_its_limit():
    assert give_way(lambda: False) < 0.05
    until = time.monotonic() + 0.5
    waited = give_way(lambda: time.monotonic() < until, most=5.0, poll=0.02)
    assert 0.45 < waited < 1.0
    assert 0.25 < give_way(lambda: True, most=0.3, poll=0.02) < 0.6  # a session never starves it


def test_the_nearest_lists_give_way_between_chunks_and_stay_the_same():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2 * nearest.CHUNK + 10, 16)).astype(np.float32)
    calls: list[int] = []
    plain, paused = NearestKept(), NearestKept()
    plain.add(list(range(len(x))), x, x)
    paused.add(list(range(len(x))), x, x, between=lambda: calls.append(1))
    assert len(calls) == 3  # before each chunk of new photos
    assert np.array_equal(plain.nbrs, paused.nbrs) and np.array_equal(plain.sims, paused.sims)
    assert ADD_CHUNK <= 500  # the finder's step: about a second of work on 2 cores


def test_the_backends_collection_waits_for_a_training(tmp_path):
    """A real JobRunner whose training blocks: the curator's pause holds until it is done."""
    backend = Backend(Settings(data_dir=tmp_path), resume=False)
    gate = threading.Event()
    backend.jobs = JobRunner(lambda pid, job: gate.wait(10) and {})
    try:
        assert backend.curator.pause() is not None and not backend.jobs.busy()
        backend.jobs.submit("1", "a correction")
        assert backend.jobs.busy()
        done = threading.Event()
        threading.Thread(target=lambda: (backend.curator.pause(), done.set()), daemon=True).start()
        assert not done.wait(0.6)  # the training runs: the collection waits
        gate.set()
        assert done.wait(5)
    finally:
        gate.set()
        backend.jobs.shutdown()
        backend.close()
