"""Trainings in a child process, so that the serving process never imports torch.

With `TASVEER_TRAIN_IN=process` the job runner (jobs.py: coalescing, status, history are the same)
calls `ProcessTrainer.run`, which runs `python -m backend.worker PROJECT REASON JOB` with the
backend's settings in the environment. The child builds the same `Backend` parts with in-process
training, runs the one job (training.train with torch, publish, refresh of Label Studio), and prints
its outcome as the last line of its output, one JSON object. The serving process then picks the new
version up from the store's SERVING pointer like any other publish.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from .jobs import Job, SkipJob
from .settings import Settings

OUTCOME = "tasveer-worker-outcome: "


class ProcessTrainer:
    def __init__(self, settings: Settings, timeout: float = 6 * 3600):
        self.settings = settings
        self.timeout = timeout

    def run(self, pid: str, job: Job) -> dict:
        env = {**os.environ, **self.settings.to_env(), "TASVEER_TRAIN_IN": "thread"}
        proc = subprocess.run([sys.executable, "-m", "backend.worker", pid, job.reason, job.id], env=env,
                              capture_output=True, text=True, timeout=self.timeout)
        lines = [line for line in proc.stdout.splitlines() if line.startswith(OUTCOME)]
        if proc.returncode != 0 or not lines:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"training worker for project {pid} exited with code {proc.returncode}:\n{tail}")
        outcome = json.loads(lines[-1][len(OUTCOME):])
        if outcome["state"] == "skipped":
            raise SkipJob(outcome["error"])
        return outcome["result"]


def main(argv: list[str] | None = None) -> int:
    import logging

    from .service import Backend

    pid, reason, job_id = (sys.argv[1:] if argv is None else argv)[:3]
    settings = Settings.from_env(train_in="thread")
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = Backend(settings, resume=False)  # the serving process owns the job queue
    try:
        outcome = {"state": "done", "result": service.trainer.run(pid, Job(id=job_id, project=pid, reason=reason))}
    except SkipJob as exc:
        outcome = {"state": "skipped", "error": str(exc)}
    finally:
        service.close()
    print(OUTCOME + json.dumps(outcome, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
