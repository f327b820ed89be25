"""The function an RQ work horse runs for a training job (`RQJobRunner.task` names it by string).

`run_job(job_id, prefix)` builds a `Backend` that trains in this process and runs the same
`Trainer.run` as the in-process path; `jobs.redisrunner.execute` marks the job running, records how
it ended and hands the project's slot on. An entry point: it imports the service, nothing imports it.
"""

from __future__ import annotations

from backend.jobs.redisrunner import RedisJob, RQJobRunner, execute
from backend.projects.setupstate import ProjectState
from backend.service import Backend
from backend.settings import Settings
from backend.writeback.opentasks import OpenTasks


def run_job(job_id: str, prefix: str) -> dict | None:
    """Run one queued job in an RQ work horse: the same Trainer.run as the in-process path."""
    return execute(job_id, prefix, _train)


def _train(runner: RQJobRunner, job: RedisJob):
    service = Backend(Settings.from_env(train_in="thread", redis_url=None))  # this process trains
    # the tasks people may have open, as the API replicas' webhooks noted them (writeback/opentasks.py)
    service.refresher.open = OpenTasks(service.projects.root, redis=runner.conn, prefix=runner.prefix)
    try:
        setup = runner.setup(job.id)
        if setup:
            state = ProjectState(**setup)
            if not state.same_as(service.projects.state(job.project)):
                service.projects.states.save(state)
        assert service.trainer is not None  # (train_in="thread" without REDIS_URL: it trains in this process)
        return service.trainer.run(job.project, job)
    finally:
        service.close()
