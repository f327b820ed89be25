"""Backend settings, read once from the environment (`Settings.from_env()`).

| variable | default | meaning |
| --- | --- | --- |
| `TASVEER_DATA_DIR` | `./var/backend` | project state, model stores, caches |
| `TASVEER_HOST` / `TASVEER_PORT` | `127.0.0.1` / `9090` | where `python -m backend` listens |
| `TASVEER_WORKERS` | `1` | uvicorn worker processes |
| `LABEL_STUDIO_URL` / `LABEL_STUDIO_API_KEY` | none | used when `/setup` has not given a hostname / token |
| `TASVEER_BASIC_AUTH_USER` / `_PASSWORD` | none | require HTTP basic auth on every route |
| `TASVEER_OPEN_HEALTH` | `0` | `1`: `/health` (and `/`) answer without basic auth (for a load balancer's probe) |
| `TASVEER_WEBHOOK_SECRET` | none | `/webhook` requires the header `X-Tasveer-Webhook-Secret` with this value (`sync` adds it to the webhook it makes in Label Studio) |
| `TASVEER_ALLOWED_HOSTS` | none | comma-separated extra hosts (`host` or `host:port`) images may come from |
| `TASVEER_LS_MEDIA_DIR` | none | Label Studio's `<data dir>/media` when on the same disk: uploads are read from there instead of downloaded |
| `TASVEER_MAX_IMAGE_BYTES` | 25 MiB | a larger download is aborted |
| `TASVEER_MAX_BODY_BYTES` | 64 MiB | a larger request body is refused (413) while it streams in |
| `TASVEER_FETCH_TIMEOUT` | 20 s | total time allowed for one download |
| `TASVEER_FETCH_WORKERS` | 8 | concurrent downloads per request |
| `TASVEER_ENGINE` | `auto` | what serves predictions: `onnx` (ONNX Runtime), `torch`, or `auto` = PyTorch on a CUDA GPU, ONNX Runtime otherwise |
| `REDIS_URL` | none | set: training jobs go to RQ workers over this Redis (`python -m backend.workers.rqworker`), status shared by every API replica; this process never trains |
| `TASVEER_QUEUE_PREFIX` | `tasveer` | the Redis key prefix and RQ queue (`<prefix>-train`) of the jobs |
| `TASVEER_RQ_HEARTBEAT` / `TASVEER_RQ_GRACE` | 10 / 30 s | a worker heartbeats its job this often; a job unheard of for heartbeat + grace is abandoned and re-queued |
| `TASVEER_RQ_MAINTENANCE` | 30 s | how often a worker looks for abandoned jobs |
| `TASVEER_STORE` | `<data dir>/projects/<id>/models` | the model stores: a directory (`<dir>/<id>/`, e.g. on a shared volume) or `s3://bucket/prefix` (`<prefix>/<id>/`, boto3; endpoint and keys from the usual `AWS_*` variables); versions read into `<data dir>/cache/store/` |
| `TASVEER_TRAIN_MIN_INTERVAL` | 10 s | a project's next training starts no sooner than this after its last one started (webhooks meanwhile coalesce into it) |
| `TASVEER_TRAIN_IN` | `thread` | `thread`: trainings run in this process; `process`: each training runs in a `python -m backend.workers.trainchild` child, and this process never imports torch (serving with ONNX Runtime) |
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


ENGINES = ("auto", "onnx", "torch")  # as training.serving.ENGINES (not imported: settings load first)
TRAIN_IN = ("thread", "process")


class SettingsError(ValueError):
    """A bad environment value; the message names the variable."""


def _env_number(env, name: str, default, kind, what: str, ok, need: str):
    """The environment variable `name` read as `kind` (int or float); unset or blank: `default`;
    a value that does not parse, or for which `ok(value)` is false, is a SettingsError."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {what}; got {raw!r}") from None
    if not ok(value):
        raise SettingsError(f"{name} must be {need}; got {value}")
    return value


def _env_int(env, name: str, default: int, lo: int = 1) -> int:
    return _env_number(env, name, default, int, "a whole number", lambda v: v >= lo, f">= {lo}")


def _env_float(env, name: str, default: float) -> float:
    return _env_number(env, name, default, float, "a number", lambda v: v > 0, "> 0")


def _env_seconds(env, name: str, default: float) -> float:
    """A number of seconds >= 0 (0 allowed, unlike _env_float)."""
    return _env_number(env, name, default, float, "a number of seconds", lambda v: v >= 0, ">= 0")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var/backend")
    host: str = "127.0.0.1"
    port: int = 9090
    workers: int = 1
    label_studio_url: str | None = None
    label_studio_api_key: str | None = None
    basic_auth_user: str | None = None
    basic_auth_password: str | None = None
    open_health: bool = False
    webhook_secret: str | None = None
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    ls_media_dir: Path | None = None
    max_image_bytes: int = 25 * 2**20
    max_body_bytes: int = 64 * 2**20
    fetch_timeout: float = 20.0
    fetch_workers: int = 8
    log_level: str = "info"
    engine: str = "auto"
    train_in: str = "thread"
    redis_url: str | None = None
    queue_prefix: str = "tasveer"
    rq_heartbeat: int = 10
    rq_grace: int = 30
    rq_maintenance: int = 30
    store: str | None = None
    train_min_interval: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.ls_media_dir is not None:
            object.__setattr__(self, "ls_media_dir", Path(self.ls_media_dir))
        if bool(self.basic_auth_user) != bool(self.basic_auth_password):
            raise SettingsError(
                "TASVEER_BASIC_AUTH_USER and TASVEER_BASIC_AUTH_PASSWORD must be set together"
            )
        if self.label_studio_url:
            object.__setattr__(self, "label_studio_url", self.label_studio_url.rstrip("/"))
        if self.engine not in ENGINES:
            raise SettingsError(f"TASVEER_ENGINE must be one of {', '.join(ENGINES)}; got {self.engine!r}")
        if self.train_in not in TRAIN_IN:
            raise SettingsError(f"TASVEER_TRAIN_IN must be one of {', '.join(TRAIN_IN)}; got {self.train_in!r}")
        if not all(c.isalnum() or c in "-_" for c in self.queue_prefix):
            raise SettingsError(f"TASVEER_QUEUE_PREFIX may hold letters, digits, - and _ only; got {self.queue_prefix!r}")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL; got {self.redis_url!r}")
        if self.train_in == "process" and self.engine == "torch":
            raise SettingsError("TASVEER_TRAIN_IN=process keeps torch out of the serving process: "
                                "use TASVEER_ENGINE=onnx or auto")

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.basic_auth_user and self.basic_auth_password:
            return (self.basic_auth_user, self.basic_auth_password)
        return None

    def to_env(self) -> dict[str, str]:
        """The environment that `from_env` reads back into these settings (for child processes)."""
        values = {
            "TASVEER_DATA_DIR": str(self.data_dir), "TASVEER_HOST": self.host, "TASVEER_PORT": str(self.port),
            "TASVEER_WORKERS": str(self.workers), "LABEL_STUDIO_URL": self.label_studio_url or "",
            "LABEL_STUDIO_API_KEY": self.label_studio_api_key or "",
            "TASVEER_BASIC_AUTH_USER": self.basic_auth_user or "",
            "TASVEER_BASIC_AUTH_PASSWORD": self.basic_auth_password or "",
            "TASVEER_OPEN_HEALTH": "1" if self.open_health else "0",
            "TASVEER_WEBHOOK_SECRET": self.webhook_secret or "",
            "TASVEER_ALLOWED_HOSTS": ",".join(self.allowed_hosts),
            "TASVEER_LS_MEDIA_DIR": str(self.ls_media_dir or ""), "TASVEER_MAX_IMAGE_BYTES": str(self.max_image_bytes),
            "TASVEER_MAX_BODY_BYTES": str(self.max_body_bytes),
            "TASVEER_FETCH_TIMEOUT": str(self.fetch_timeout), "TASVEER_FETCH_WORKERS": str(self.fetch_workers),
            "TASVEER_LOG_LEVEL": self.log_level, "TASVEER_ENGINE": self.engine, "TASVEER_TRAIN_IN": self.train_in,
            "REDIS_URL": self.redis_url or "", "TASVEER_QUEUE_PREFIX": self.queue_prefix,
            "TASVEER_RQ_HEARTBEAT": str(self.rq_heartbeat), "TASVEER_RQ_GRACE": str(self.rq_grace),
            "TASVEER_RQ_MAINTENANCE": str(self.rq_maintenance), "TASVEER_STORE": self.store or "",
            "TASVEER_TRAIN_MIN_INTERVAL": str(self.train_min_interval),
        }
        return values

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        env = os.environ if env is None else env
        hosts = tuple(h.strip().lower() for h in env.get("TASVEER_ALLOWED_HOSTS", "").split(",") if h.strip())
        values = dict(
            data_dir=Path(env.get("TASVEER_DATA_DIR") or "var/backend"),
            host=env.get("TASVEER_HOST") or "127.0.0.1",
            port=_env_int(env, "TASVEER_PORT", 9090),
            workers=_env_int(env, "TASVEER_WORKERS", 1),
            label_studio_url=env.get("LABEL_STUDIO_URL") or None,
            label_studio_api_key=env.get("LABEL_STUDIO_API_KEY") or None,
            basic_auth_user=env.get("TASVEER_BASIC_AUTH_USER") or None,
            basic_auth_password=env.get("TASVEER_BASIC_AUTH_PASSWORD") or None,
            open_health=(env.get("TASVEER_OPEN_HEALTH") or "0").strip().lower() in ("1", "true", "yes"),
            webhook_secret=env.get("TASVEER_WEBHOOK_SECRET") or None,
            allowed_hosts=hosts,
            ls_media_dir=Path(env["TASVEER_LS_MEDIA_DIR"]) if env.get("TASVEER_LS_MEDIA_DIR") else None,
            max_image_bytes=_env_int(env, "TASVEER_MAX_IMAGE_BYTES", 25 * 2**20),
            max_body_bytes=_env_int(env, "TASVEER_MAX_BODY_BYTES", 64 * 2**20),
            fetch_timeout=_env_float(env, "TASVEER_FETCH_TIMEOUT", 20.0),
            fetch_workers=_env_int(env, "TASVEER_FETCH_WORKERS", 8),
            log_level=(env.get("TASVEER_LOG_LEVEL") or "info").lower(),
            engine=(env.get("TASVEER_ENGINE") or "auto").lower(),
            train_in=(env.get("TASVEER_TRAIN_IN") or "thread").lower(),
            redis_url=env.get("REDIS_URL") or None,
            queue_prefix=env.get("TASVEER_QUEUE_PREFIX") or "tasveer",
            rq_heartbeat=_env_int(env, "TASVEER_RQ_HEARTBEAT", 10),
            rq_grace=_env_int(env, "TASVEER_RQ_GRACE", 30),
            rq_maintenance=_env_int(env, "TASVEER_RQ_MAINTENANCE", 30),
            store=env.get("TASVEER_STORE") or None,
            train_min_interval=_env_seconds(env, "TASVEER_TRAIN_MIN_INTERVAL", 10.0),
        )
        values.update(overrides)
        return cls(**values)
