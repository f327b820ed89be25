"""A tiny job function for tests/test_rq.py, run by a real RQ worker (`python -m backend.workers.rqworker`
with tests/ on PYTHONPATH) through backend.jobs.redisrunner.execute, the part it shares with run_job: only
the training is left out. What a job does is picked by its reason:

    hold...    report progress, then wait until the test sets `<prefix>:release:<job id>`
    vanish...  SIGKILL the work horse (the OOM killer's pick); the worker lives on
    lost...    SIGKILL the worker and its work horse (a lost machine)
    anything else: finish at once

Every attempt counts itself in `<prefix>:attempts:<job id>`.
"""

from __future__ import annotations

import os
import signal
import time

from backend.jobs.redisrunner import execute


def run(job_id: str, prefix: str) -> dict | None:
    return execute(job_id, prefix, _work)


def _work(runner, job) -> dict:
    runner.conn.incr(f"{runner.prefix}:attempts:{job.id}")
    if job.reason.startswith("lost"):
        os.kill(os.getppid(), signal.SIGKILL)  # the horse has a process group of its own (RQ)
    if job.reason.startswith(("lost", "vanish")):
        os.kill(os.getpid(), signal.SIGKILL)
    if job.reason.startswith("hold"):
        job.report(phase="holding", step=1, steps=2)
        deadline = time.monotonic() + 120
        while not runner.conn.exists(f"{runner.prefix}:release:{job.id}"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job.id} was never released")
            time.sleep(0.05)
    return {"job": job.id, "reason": job.reason, "requests": job.requests}
