"""backend/rqjobs.py's rules on the real Redis, in seconds: coalescing, status and progress read by
another API replica, and a job abandoned more often than its retries allow.

A real RQ worker process (`python -m backend.workers.rqworker`, as deployed) runs a tiny job function
(tests/rqtasks.py) through rqjobs.execute, the part it shares with the training job; no Label
Studio, no training (tests/test_cluster.py runs the whole deployment). Each test has a Redis key
prefix of its own (rqfix.py), deleted afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsfixture import REPO_ROOT, poll
from rqfix import REDIS, redis_prefix, stop_worker  # noqa: F401 (fixture)

TASK = "rqtasks.run"
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def workers(redis_prefix, tmp_path):
    """start(name) -> a worker process on the test's queue; all stopped at the end."""
    procs, logs = [], []

    def start(name: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "REDIS_URL": REDIS,
            "TASVEER_QUEUE_PREFIX": redis_prefix,
            "TASVEER_DATA_DIR": str(tmp_path / name),
            "TASVEER_LOG_LEVEL": "info",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        log = open(tmp_path / f"{name}.log", "wb")
        logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.workers.rqworker", f"{redis_prefix}-{name}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    start.log = lambda: "".join(f"\n--- {p.name}\n" + p.read_text()[-2000:] for p in sorted(tmp_path.glob("*.log")))
    try:
        yield start
    finally:
        for proc in procs:
            stop_worker(proc)
        for log in logs:
            log.close()


def test_jobs_coalesce_and_any_replica_reads_status_and_progress(redis_prefix, workers):
    from backend.jobs.recipe import accurate_reason
    from backend.jobs.redisrunner import RQJobRunner

    api1 = RQJobRunner(REDIS, prefix=redis_prefix, task=TASK)
    api2 = RQJobRunner(REDIS, prefix=redis_prefix, task=TASK)  # another API replica: only Redis is shared
    release = lambda job_id: api1.conn.set(f"{redis_prefix}:release:{job_id}", 1)  # noqa: E731
    first = api1.submit("7", "hold first")
    assert (first.state, first.requests) == ("queued", 1)
    second = api2.submit("7", "hold second")
    merged = [(api1 if n % 2 else api2).submit("7", f"hold {n}") for n in range(3, 6)]
    assert second.id != first.id and {j.id for j in merged} == {second.id}
    status = api2.status("7")
    assert (status["running"]["id"], status["pending"]["id"]) == (first.id, second.id)
    assert (status["pending"]["requests"], status["pending"]["reason"]) == (4, "hold 5")
    other = api2.submit("8", "quick")  # another project: a slot of its own
    assert api1.status("8")["running"]["id"] == other.id and api1.status("8")["pending"] is None
    assert api1.busy("7") and api1.busy("8") and not api1.busy("9")

    workers("w1")
    running = poll(
        lambda: (j := api2.get(first.id)) and j.progress and j,
        "progress of the first job",
        60,
        interval=0.05,
        detail=workers.log,
    )
    assert running.state == "running" and running.started_at and running.progress["phase"] == "holding"
    assert (running.progress["step"], running.progress["steps"]) == (1, 2)
    late = api1.submit("7", "hold late")  # while the first runs: still merged into the pending one
    assert (late.id, late.requests) == (second.id, 5)

    release(first.id)  # the slot passes to the pending job, queued by the worker that ran the first
    poll(
        lambda: api2.get(second.id).state == "running", "the pending job running", 60, interval=0.05, detail=workers.log
    )
    done = api1.get(first.id)
    assert (done.state, done.error) == ("done", None)
    assert done.result == {"job": first.id, "reason": "hold first", "requests": 1}
    assert api2.get(other.id).state == "done" and not api2.busy("8")
    status = api1.status("7")
    assert status["running"]["id"] == second.id and status["pending"] is None
    third = api2.submit("7", accurate_reason("hold third"))
    assert third.id not in (first.id, second.id) and api1.status("7")["pending"]["id"] == third.id
    assert api1.submit("7", "hold plain").id == third.id  # merged; a plain request keeps the accurate one
    assert api2.status("7")["pending"]["reason"] == "hold third [accurate]"
    assert api1.submit("7", accurate_reason("hold again")).id == third.id
    assert api2.status("7")["pending"]["reason"] == "hold again [accurate]"

    release(second.id)
    release(third.id)
    assert api2.wait_idle("7", timeout=60), workers.log()
    jobs = {j.id: j for j in api1.jobs("7")}
    assert [j.state for j in jobs.values()] == ["done"] * 3
    assert jobs[second.id].result == {"job": second.id, "reason": "hold late", "requests": 5}
    assert not api1.busy()


def test_a_work_horse_killed_more_often_than_retry_allows_fails_the_job_and_frees_its_slot(redis_prefix, workers):
    """The worker lives and handles it (rqworker.TasveerWorker): re-queued once, then failed."""
    from backend.jobs.redisrunner import RQJobRunner

    api = RQJobRunner(REDIS, prefix=redis_prefix, task=TASK, retries=1)
    doomed = api.submit("3", "vanish")
    after = api.submit("3", "quick after")
    worker = workers("w1")
    assert api.wait_idle("3", timeout=60), workers.log()
    job = api.get(doomed.id)
    assert (job.state, job.error) == ("failed", "worker lost (WorkHorseKilled); no retries left"), job.to_dict()
    assert int(api.conn.get(f"{redis_prefix}:attempts:{doomed.id}")) == 2  # the first try and one retry
    assert api.get(after.id).state == "done" and not api.busy()  # the slot was handed on, then freed
    assert worker.poll() is None


def test_a_job_abandoned_by_lost_workers_more_often_than_retry_allows_fails_and_frees_its_slot(redis_prefix, workers):
    """Worker and work horse gone: RQ's registry cleanup finds the job abandoned."""
    from rq.registry import StartedJobRegistry

    from backend.jobs.redisrunner import RQJobRunner

    api = RQJobRunner(REDIS, prefix=redis_prefix, task=TASK, retries=1)
    doomed = api.submit("3", "lost")
    after = api.submit("3", "quick after")
    rq_id = f"{redis_prefix}-{doomed.id}"
    started = StartedJobRegistry(queue=api.queue)
    for attempt, (state, error) in enumerate([("queued", "re-queued"), ("failed", "no retries left")]):
        worker = workers(f"w{attempt}")
        assert worker.wait(60) == -signal.SIGKILL, workers.log()  # the job took its worker down
        assert started.get_job_ids(cleanup=False) == [rq_id]  # abandoned mid-job
        assert api.get(doomed.id).state == "running" and api.status("3")["running"]["id"] == doomed.id
        # what any live worker's maintenance does once the heartbeat is overdue (test_cluster.py
        # waits for that; here the clock is simply moved on)
        started.cleanup(timestamp=time.time() + 3600)
        job = api.get(doomed.id)
        assert (job.state, job.error) == (state, f"worker lost (AbandonedJobError); {error}"), job.to_dict()
    assert api.status("3")["running"]["id"] == after.id and api.status("3")["pending"] is None
    assert api.queue.job_ids == [f"{redis_prefix}-{after.id}"]  # the slot handed on, the next job queued

    workers("w2")
    assert api.wait_idle("3", timeout=60), workers.log()
    assert api.get(after.id).state == "done" and not api.busy()
    assert [j.state for j in api.jobs("3")] == ["failed", "done"]
