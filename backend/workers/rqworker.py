"""`python -m backend.workers.rqworker`: an RQ training worker (run N of them: `--scale worker=N`).

It listens on the queue `<TASVEER_QUEUE_PREFIX>-train` of `REDIS_URL` and runs workers.rqtask.run_job in a
forked work horse per job (so torch is imported by the horse, and a crash in one training cannot
take the worker down). Settings are the backend's (TASVEER_*, LABEL_STUDIO_*, TASVEER_STORE).

Lost workers: RQ's worker heartbeats the running job every `TASVEER_RQ_HEARTBEAT` s; a job not
heard of for that + `TASVEER_RQ_GRACE` s counts as abandoned. RQ's own grace is a fixed 60 s on top
of the heartbeat interval (Worker.get_heartbeat_ttl); `TasveerWorker` makes it a setting, and runs
RQ's registry cleanup (which re-queues abandoned jobs) every `TASVEER_RQ_MAINTENANCE` s instead of
every 10 minutes.

A work horse that dies while its worker lives (the OOM killer's usual pick, a signal, the job's
timeout) is handled by the worker itself, which re-queues the job while retries are left but does
not call the job's failure callback; `TasveerWorker` calls it (jobs.redisrunner.on_abandoned), so the job is
marked queued or failed and, once the retries are spent, its project's slot is handed on.
"""

from __future__ import annotations

import logging
import sys

from rq import Worker

from backend.jobs.redisrunner import connect_redis
from backend.settings import Settings, SettingsError

log = logging.getLogger(__name__)


class WorkHorseKilled(Exception):
    """The work horse running a job ended without finishing it (killed, or past its timeout)."""


class TasveerWorker(Worker):
    grace = 30

    def get_heartbeat_ttl(self, job) -> int:
        if job.timeout and job.timeout > 0:
            left = job.timeout - self.current_job_working_time
            return int(min(left, self.job_monitoring_interval)) + self.grace
        return self.job_monitoring_interval + self.grace

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        why = WorkHorseKilled(f"work horse {retpid} ended with status {ret_val}")
        try:  # before RQ's own handling (the retry), as in its abandoned-job cleanup
            job.execute_failure_callback(self.death_penalty_class, WorkHorseKilled, why, None)
        except Exception:  # noqa: BLE001 - logged by RQ; the worker carries on
            log.warning("job %s: failure callback failed after its work horse died", job.id)


def build_worker(settings: Settings, name: str | None = None) -> TasveerWorker:
    if not settings.redis_url:  # (main says so to the person starting it)
        raise ValueError("an RQ worker needs REDIS_URL")
    worker = TasveerWorker(
        [f"{settings.queue_prefix}-train"],
        connection=connect_redis(settings.redis_url),
        name=name,
        job_monitoring_interval=settings.rq_heartbeat,
        maintenance_interval=settings.rq_maintenance,
        # the idle dequeue waits worker_ttl - 15 s: keep it short so cleanups run on time
        worker_ttl=15 + max(1, min(settings.rq_maintenance, 60)),
    )
    worker.grace = settings.rq_grace
    return worker


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"rqworker: {exc}", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print("rqworker: set REDIS_URL (the Redis the API replicas queue their training jobs on)", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = sys.argv[1:] if argv is None else argv
    worker = build_worker(settings, name=args[0] if args else None)
    worker.work(with_scheduler=False, logging_level=settings.log_level.upper())
    return 0


if __name__ == "__main__":
    sys.exit(main())
