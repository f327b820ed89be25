"""Trainings in a child process, so that the serving process never imports torch.

With `TASVEER_TRAIN_IN=process` the job runner (jobs/runner.py: coalescing, status, history are the same)
calls `ProcessTrainer.run`, which runs `python -m backend.jobs.childtrainer PROJECT REASON JOB` with the
backend's settings in the environment. The child builds the same `Backend` parts with in-process
training, runs the one job (training.train with torch, publish, refresh of Label Studio), and prints
its outcome as the last line of its output, one JSON object; its progress reports (Job.report)
come as lines before it and are reported on the parent's Job as they arrive. The serving process
then picks the new version up from the store's SERVING pointer like any other publish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import deque

from backend.jobs.runner import Job, SkipJob
from backend.settings import Settings

OUTCOME = "tasveer-worker-outcome: "
PROGRESS = "tasveer-worker-progress: "


class ProcessTrainer:
    def __init__(self, settings: Settings, timeout: float = 6 * 3600):
        self.settings = settings
        self.timeout = timeout

    def run(self, pid: str, job: Job) -> dict:
        env = {**os.environ, **self.settings.to_env(), "TASVEER_TRAIN_IN": "thread"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.workers.trainchild", pid, job.reason, job.id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None  # (stdout=PIPE)
        timer = threading.Timer(self.timeout, proc.kill)
        timer.start()
        tail: deque[str] = deque(maxlen=15)
        outcome: dict | None = None
        try:
            for line in proc.stdout:
                if line.startswith(PROGRESS):
                    try:
                        job.report(**json.loads(line[len(PROGRESS) :]))
                    except (ValueError, TypeError):
                        pass
                elif line.startswith(OUTCOME):
                    outcome = json.loads(line[len(OUTCOME) :])
                else:
                    tail.append(line.rstrip())
            proc.wait()
        finally:
            timer.cancel()
        if proc.returncode != 0 or outcome is None:
            text = "\n".join(tail)
            raise RuntimeError(f"training worker for project {pid} exited with code {proc.returncode}:\n{text}")
        if outcome["state"] == "skipped":
            raise SkipJob(outcome["error"])
        return outcome["result"]
