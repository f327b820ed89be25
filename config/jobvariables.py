"""The environment variables of background training (where trainings run, the RQ queue, the
model store) and the combinations refused at start: part of config/variables.py's one declaration."""

from __future__ import annotations

from config.spec import Rule, Var

BACKEND = ("api", "workers")


def _queue_prefix_ok(value: str) -> bool:
    return all(c.isalnum() or c in "-_" for c in value)


JOB_VARIABLES = (
    Var(
        "TASVEER_TRAIN_IN",
        "choice",
        "thread",
        "`thread`: trainings run in the API process; `process`: each "
        "in a `python -m backend.workers.trainchild` child, and the API never imports torch (it serves with "
        "ONNX Runtime)",
        ("api",),
        field="train_in",
        choices=("thread", "process"),
    ),
    Var(
        "REDIS_URL",
        "text",
        None,
        "set: training jobs go to RQ workers over this Redis "
        "(`python -m backend.workers.rqworker`), their status shared by every API replica, and the API never "
        "trains",
        BACKEND,
        field="redis_url",
        valid=(
            lambda url: url.startswith(("redis://", "rediss://", "unix://")),
            "must be a redis://, rediss:// or unix:// URL",
        ),
    ),
    Var(
        "TASVEER_QUEUE_PREFIX",
        "text",
        "tasveer",
        "the Redis key prefix and RQ queue (`<prefix>-train`) of the jobs",
        BACKEND,
        field="queue_prefix",
        valid=(_queue_prefix_ok, "may hold letters, digits, - and _ only"),
    ),
    Var(
        "TASVEER_RQ_HEARTBEAT",
        "int",
        10,
        "seconds: a worker heartbeats its running job this often",
        ("workers",),
        field="rq_heartbeat",
        lo=1,
    ),
    Var(
        "TASVEER_RQ_GRACE",
        "int",
        30,
        "seconds: a job unheard of for heartbeat + grace is abandoned and re-queued",
        ("workers",),
        field="rq_grace",
        lo=1,
    ),
    Var(
        "TASVEER_RQ_MAINTENANCE",
        "int",
        30,
        "seconds: how often a worker looks for abandoned jobs",
        ("workers",),
        field="rq_maintenance",
        lo=1,
    ),
    Var(
        "TASVEER_STORE",
        "text",
        None,
        "the model stores: a directory (`<dir>/<id>/`, e.g. on a shared volume) or "
        "`s3://bucket/prefix` (`<prefix>/<id>/`, boto3; endpoint and keys from the usual `AWS_*` variables); "
        "versions are read into `<data dir>/cache/store/`",
        BACKEND,
        field="store",
        default_text="`<data dir>/projects/<id>/models`",
    ),
    Var(
        "TASVEER_TRAIN_MIN_INTERVAL",
        "float",
        10.0,
        "seconds: when webhooks come in a burst (faster than one per 2 s since the last training started), "
        "a project's next training starts no sooner than this after its last one started "
        "(webhooks meanwhile coalesce into it); at a person's pace it starts as soon as the last one ends",
        ("api",),
        field="train_min_interval",
        lo=0,
    ),
)

_ONLY_RQ = "only the RQ workers and their queue use it; set REDIS_URL too, or unset it"
RULES = (
    Rule(
        "TASVEER_TRAIN_MIN_INTERVAL",
        "REDIS_URL",
        True,
        "the RQ workers start a project's next training as soon as its last one ends (no minimum interval); "
        "unset one of them",
    ),
    Rule(
        "TASVEER_TRAIN_IN",
        "REDIS_URL",
        True,
        "with REDIS_URL the RQ workers train and the API never does; unset TASVEER_TRAIN_IN",
    ),
    Rule(
        "TASVEER_WORKERS",
        "REDIS_URL",
        False,
        "each worker process would keep its own training jobs, so webhooks reaching different workers would "
        "not coalesce and a project's job status would depend on the worker that answers; set REDIS_URL "
        "(one shared queue) or keep TASVEER_WORKERS=1",
        when=lambda workers: workers > 1,
    ),
    Rule("TASVEER_QUEUE_PREFIX", "REDIS_URL", False, _ONLY_RQ),
    Rule("TASVEER_RQ_HEARTBEAT", "REDIS_URL", False, _ONLY_RQ),
    Rule("TASVEER_RQ_GRACE", "REDIS_URL", False, _ONLY_RQ),
    Rule("TASVEER_RQ_MAINTENANCE", "REDIS_URL", False, _ONLY_RQ),
)
