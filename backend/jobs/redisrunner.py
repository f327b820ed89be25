"""Training jobs on RQ workers over Redis (`REDIS_URL` set): the same jobs as jobs.JobRunner, shared.

`RQJobRunner` has JobRunner's interface (submit/get/jobs/status/busy/wait_idle/shutdown) and the
same rules, kept in Redis so that every API replica and every worker sees one truth:

    <prefix>:slot:<project>  hash {running: job id, pending: job id}: one running + one pending
    <prefix>:job:<id>        hash of the Job's fields (progress and result as JSON)
    <prefix>:history         list of the newest job ids; <prefix>:seq numbers them

`submit` is one Lua script (atomic): a pending job absorbs the request (`requests` + 1), else a new
job becomes the running one (and goes to the RQ queue `<prefix>-train`) or the pending one. The job
carries the project's set-up (what /setup said), so a worker on another machine trains with the
same labeling config, parameters and Label Studio connection.

A worker (`python -m backend.workers.rqworker`) runs `run_job(id)`: the same `Trainer.run(pid, job)` as
the in-process path, with `job.report(...)` written to the job's hash (readable from any replica).
When it ends, another Lua script hands the slot to the pending job, which is then queued (to the
same function: `RQJobRunner.task` names it; `execute` is the part every such function shares).

A worker that dies mid-job (SIGKILL, a lost machine) stops heartbeating; RQ's StartedJobRegistry
cleanup (run by any live worker, see rqworker.py) then sees the job abandoned and re-queues it
(`Retry`); `on_abandoned` marks it queued again, or failed once the retries are spent, and then
frees the slot so the project is never stuck. A work horse that dies under a live worker (the OOM
killer, the job's timeout) takes the same path through rqworker.TasveerWorker.
"""

from __future__ import annotations

import json
import logging
import time

from backend.jobs.recipe import TAG
from backend.jobs.runner import DONE, FAILED, QUEUED, RUNNING, SKIPPED, Job, SkipJob
from backend.settings import Settings

log = logging.getLogger(__name__)

_SUBMIT = """
local slot, prefix, project, reason = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local now, setup, keep = ARGV[4], ARGV[5], tonumber(ARGV[6])
local pending = redis.call('HGET', slot, 'pending')
if pending then
  local key = prefix .. ':job:' .. pending
  redis.call('HINCRBY', key, 'requests', 1)
  redis.call('HSET', key, 'setup', setup)
  -- a request for the accurate recipe is never replaced by a plain one (recipe.merge_reason)
  local old = redis.call('HGET', key, 'reason') or ''
  if string.sub(old, -string.len(ARGV[7])) ~= ARGV[7] or string.sub(reason, -string.len(ARGV[7])) == ARGV[7] then
    redis.call('HSET', key, 'reason', reason)
  end
  return {pending, 0}
end
local id = project .. '-' .. redis.call('INCR', prefix .. ':seq')
redis.call('HSET', prefix .. ':job:' .. id, 'id', id, 'project', project, 'reason', reason, 'state', 'queued',
           'requests', 1, 'submitted_at', now, 'setup', setup)
redis.call('LPUSH', prefix .. ':history', id)
redis.call('LTRIM', prefix .. ':history', 0, keep - 1)
if redis.call('HGET', slot, 'running') then
  redis.call('HSET', slot, 'pending', id)
  return {id, 0}
end
redis.call('HSET', slot, 'running', id)
return {id, 1}
"""

_FINISH = """
local slot, id = KEYS[1], ARGV[1]
if redis.call('HGET', slot, 'running') ~= id then return false end
local pending = redis.call('HGET', slot, 'pending')
redis.call('HDEL', slot, 'pending')
if pending then redis.call('HSET', slot, 'running', pending) return pending end
redis.call('HDEL', slot, 'running')
return false
"""

_NUMBERS = ("requests",)
_FLOATS = ("submitted_at", "started_at", "finished_at")


def connect_redis(url: str):
    from redis import Redis

    return Redis.from_url(url)


class RedisJob(Job):
    """A Job whose `report(...)` is written to Redis at once (status pages on any replica)."""

    def bind(self, conn, key: str) -> RedisJob:
        self._conn, self._key = conn, key
        return self

    def report(self, **fields) -> None:
        super().report(**fields)
        self._conn.hset(self._key, "progress", json.dumps(self.progress, default=str))


class RQJobRunner:
    task = "backend.workers.rqtask.run_job"  # what a worker runs for a job: task(job_id, prefix)

    def __init__(
        self,
        redis_url: str | None,
        prefix: str = "tasveer",
        setup_of=None,
        history: int = 200,
        retries: int = 2,
        timeout: int = 6 * 3600,
        task: str | None = None,
        connection=None,
    ):
        from rq import Queue

        self.task = task or self.task
        self.prefix = prefix
        if connection is None:
            if redis_url is None:
                raise ValueError("RQJobRunner needs a Redis URL or a connection")
            connection = connect_redis(redis_url)
        self.conn = connection
        self.queue = Queue(f"{prefix}-train", connection=self.conn)
        self.setup_of = setup_of or (lambda project: None)
        self.history = history
        self.retries = retries
        self.timeout = timeout
        self._submit = self.conn.register_script(_SUBMIT)
        self._finish = self.conn.register_script(_FINISH)

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _slot_key(self, project: str) -> str:
        return f"{self.prefix}:slot:{project}"

    # -- scheduling ---------------------------------------------------------------------------------
    def submit(self, project: str, reason: str) -> Job:
        project = str(project)
        setup = json.dumps(self.setup_of(project))
        job_id, start = self._submit(
            keys=[self._slot_key(project)], args=[self.prefix, project, reason, time.time(), setup, self.history, TAG]
        )
        job_id = job_id.decode()
        if start:
            self._enqueue(job_id)
        job = self.get(job_id)
        if job is None:  # the script has just written it
            raise RuntimeError(f"training job {job_id} is missing from Redis right after its submission")
        return job

    def _enqueue(self, job_id: str) -> None:
        from rq import Callback, Retry

        retry = Retry(max=self.retries) if self.retries > 0 else None
        self.queue.enqueue(
            self.task,
            job_id,
            self.prefix,
            job_id=f"{self.prefix}-{job_id}",
            job_timeout=self.timeout,
            retry=retry,
            result_ttl=3600,
            failure_ttl=7 * 86400,
            on_failure=Callback("backend.jobs.redisrunner.on_abandoned"),
        )

    def finish(self, job: Job) -> None:
        """Record how `job` ended and hand its project's slot to the pending job (queued)."""
        self.conn.hset(
            self._job_key(job.id),
            mapping={
                "state": job.state,
                "finished_at": time.time(),
                "error": job.error or "",
                "result": json.dumps(job.result, default=str),
            },
        )
        nxt = self._finish(keys=[self._slot_key(job.project)], args=[job.id])
        if nxt:
            self._enqueue(nxt.decode())

    # -- status -------------------------------------------------------------------------------------
    def get(self, job_id) -> Job | None:
        if not job_id:
            return None
        raw = {k.decode(): v.decode() for k, v in self.conn.hgetall(self._job_key(str(job_id))).items()}
        if not raw.get("id"):
            return None
        job = RedisJob(
            id=raw["id"],
            project=raw["project"],
            reason=raw.get("reason", ""),
            state=raw.get("state", QUEUED),
            requests=int(raw.get("requests") or 1),
            submitted_at=float(raw.get("submitted_at") or 0),
            error=raw.get("error") or None,
        )
        for name in ("started_at", "finished_at"):
            if raw.get(name):
                setattr(job, name, float(raw[name]))
        if raw.get("result"):
            job.result = json.loads(raw["result"])
        if raw.get("progress"):
            job.progress = json.loads(raw["progress"])
        return job.bind(self.conn, self._job_key(job.id))

    def setup(self, job_id: str) -> dict | None:
        raw = self.conn.hget(self._job_key(job_id), "setup")
        return json.loads(raw) if raw else None

    def jobs(self, project: str | None = None) -> list[Job]:
        ids = [i.decode() for i in self.conn.lrange(f"{self.prefix}:history", 0, -1)]
        found = [self.get(i) for i in reversed(ids)]
        return [j for j in found if j is not None and (project is None or j.project == str(project))]

    def status(self, project: str) -> dict:
        slot = {k.decode(): v.decode() for k, v in self.conn.hgetall(self._slot_key(str(project))).items()}
        out = {}
        for name in ("running", "pending"):
            job = self.get(slot.get(name))
            out[name] = job.to_dict() if job else None
        return out

    def busy(self, project: str | None = None) -> bool:
        if project is not None:
            return self.conn.exists(self._slot_key(str(project))) > 0
        return any(True for _ in self.conn.scan_iter(match=f"{self.prefix}:slot:*", count=100))

    def wait_idle(self, project: str | None = None, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.busy(project):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def shutdown(self, timeout: float = 30.0) -> None:
        """Nothing to stop here: queued and running jobs belong to the workers."""
        self.conn.close()


# -- the work horse's side (RQ imports these by name) --------------------------------------------------
def execute(job_id: str, prefix: str, work) -> dict | None:
    """The runner's part of a job in a work horse: mark it running, `work(runner, job)`, record
    how it ended (done, skipped, failed with its error) and hand the slot on (`finish`)."""
    from rq import get_current_job

    current = get_current_job()
    runner = RQJobRunner(Settings.from_env().redis_url, prefix=prefix, task=current.func_name if current else None)
    job = runner.get(job_id)
    if job is None or runner.conn.hget(runner._slot_key(job.project), "running") != job_id.encode():
        log.warning("job %s is not its project's running job any more: dropped", job_id)
        return None
    job.state, job.started_at, job.error = RUNNING, time.time(), None
    runner.conn.hset(runner._job_key(job_id), mapping={"state": RUNNING, "started_at": job.started_at})
    try:
        log.info("training job %s started (%s, %d request(s))", job.id, job.reason, job.requests)
        job.result = work(runner, job)
        job.state = DONE
    except SkipJob as exc:
        job.state, job.error = SKIPPED, str(exc)
    except Exception as exc:  # recorded, like JobRunner: the previous version keeps serving
        job.state, job.error = FAILED, f"{type(exc).__name__}: {exc}"
        log.exception("training job %s failed", job.id)
    runner.finish(job)
    runner.conn.close()
    return job.result if isinstance(job.result, dict) else None


def on_abandoned(rq_job, connection, *exc_info) -> None:
    """RQ failure callback: the worker or its work horse died, or the job timed out. Re-queued while
    retries are left (RQ does that right after this call), else recorded as failed and the slot
    handed on. A job that ended after all (a work horse outliving its worker) is left as it is."""
    job_id, prefix = rq_job.args
    runner = RQJobRunner(None, prefix=prefix, task=rq_job.func_name, connection=connection)
    job = runner.get(job_id)
    if job is None or job.state in (DONE, FAILED, SKIPPED):
        return
    if rq_job.retries_left:
        connection.hset(
            runner._job_key(job_id),
            mapping={"state": QUEUED, "error": f"worker lost ({exc_info[0].__name__}); re-queued"},
        )
        return
    job.state, job.error = FAILED, f"worker lost ({exc_info[0].__name__}); no retries left"
    runner.finish(job)
