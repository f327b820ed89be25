"""`python -m backend.workers.trainchild PROJECT REASON JOB`: one training in a child process.

The child half of `jobs.childtrainer.ProcessTrainer` (`TASVEER_TRAIN_IN=process`): it builds the
same `Backend` parts with in-process training, runs the one job, prints its progress reports and
then its outcome (one JSON object) as lines the parent reads. An entry point: it imports the
service, nothing imports it.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from backend.jobs.childtrainer import OUTCOME, PROGRESS
from backend.jobs.runner import Job, SkipJob
from backend.service import Backend
from backend.settings import Settings


class _PrintingJob(Job):
    """A Job whose progress reports also go to stdout, for the parent's Job."""

    def report(self, **fields) -> None:
        super().report(**fields)
        print(PROGRESS + json.dumps(fields, default=str), flush=True)


def main(argv: list[str] | None = None) -> int:
    pid, reason, job_id = (sys.argv[1:] if argv is None else argv)[:3]
    settings = Settings.from_env(train_in="thread")
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    service = Backend(settings, resume=False)  # the serving process owns the job queue
    try:
        assert service.trainer is not None  # (train_in="thread": it trains in this process)
        outcome = {
            "state": "done",
            "result": service.trainer.run(
                pid, _PrintingJob(id=job_id, project=pid, reason=reason, started_at=time.time())
            ),
        }
    except SkipJob as exc:
        outcome = {"state": "skipped", "error": str(exc)}
    finally:
        service.close()
    print(OUTCOME + json.dumps(outcome, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
