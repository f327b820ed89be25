"""Every environment variable tasveer reads or sets, declared once: name, kind, default, allowed
values, meaning and which processes read it; and the combinations refused at start (RULES).

The README's settings table is generated from this (`python -m config --markdown`), and
tests/test_settings_declared.py checks that every such name in the code is declared here.
"""

from __future__ import annotations

from pathlib import Path

from config.jobvariables import JOB_VARIABLES, RULES
from config.spec import Var

MIB = 2**20

# who reads a variable (the "read by" column of the README's table)
READERS = {
    "api": "`python -m backend` (the API)",
    "workers": "training workers: `python -m backend.workers.rqworker` (with `REDIS_URL`) and the "
    "children of `TASVEER_TRAIN_IN=process`",
    "cli": "the `tasveer` commands",
    "label-studio": "Label Studio itself (`tasveer up` sets these for the one it starts)",
}
BACKEND = ("api", "workers")  # as config/jobvariables.py


def _host_name_ok(value: str) -> bool:
    return bool(value) and not any(c in value for c in "/@?#* \t")


VARIABLES = (
    Var(
        "TASVEER_DATA_DIR",
        "path",
        Path("var/backend"),
        "project state, model stores, caches",
        BACKEND,
        field="data_dir",
        default_text="`./var/backend`",
    ),
    Var("TASVEER_HOST", "text", "127.0.0.1", "the address `python -m backend` listens on", ("api",), field="host"),
    Var("TASVEER_PORT", "int", 9090, "the port it listens on", ("api",), field="port", lo=1, hi=65535),
    Var("TASVEER_WORKERS", "int", 1, "uvicorn worker processes", ("api",), field="workers", lo=1),
    Var(
        "LABEL_STUDIO_URL",
        "text",
        None,
        "Label Studio's URL: the backend's when `/setup` has not given a hostname; `tasveer import`'s default",
        BACKEND + ("cli",),
        field="label_studio_url",
    ),
    Var(
        "LABEL_STUDIO_API_KEY",
        "text",
        None,
        "a Label Studio token: the backend's when `/setup` has not given "
        "one (sent to `LABEL_STUDIO_URL` only); `tasveer import`'s default",
        BACKEND + ("cli",),
        field="label_studio_api_key",
    ),
    Var(
        "TASVEER_BASIC_AUTH_USER",
        "text",
        None,
        "with `TASVEER_BASIC_AUTH_PASSWORD` (both or neither): every "
        "route of the backend requires HTTP basic auth; `tasveer up` gives the pair to Label Studio and its "
        "webhook, the other `tasveer` commands send it",
        ("api", "cli"),
        field="basic_auth_user",
    ),
    Var(
        "TASVEER_BASIC_AUTH_PASSWORD",
        "text",
        None,
        "the password of `TASVEER_BASIC_AUTH_USER`",
        ("api", "cli"),
        field="basic_auth_password",
    ),
    Var(
        "TASVEER_SECRET",
        "text",
        None,
        "the backend's secret (`tasveer up` generates one and keeps it in its state "
        "file): every route but `/health` then requires a login, HTTP basic auth as user `tasveer` with this "
        "password or the cookie the printed model-page link gives; without it (and without "
        "`TASVEER_BASIC_AUTH_*`) the backend listens on loopback only",
        ("api", "cli"),
        field="secret",
        valid=(lambda secret: len(secret.strip()) >= 16, "must be at least 16 characters"),
    ),
    Var(
        "TASVEER_PUBLIC_HOSTS",
        "hosts",
        (),
        "names besides loopback's (`localhost`, `127.0.0.1`, `::1`) and "
        "`TASVEER_HOST` that the backend answers to in the `Host` header (`host`: any port, or `host:port`); "
        "any other is answered 421 (DNS rebinding)",
        ("api",),
        field="public_hosts",
        valid=(
            lambda hosts: all(_host_name_ok(h) for h in hosts),
            "must be comma-separated host names or host:port (no scheme, path or *)",
        ),
    ),
    Var(
        "TASVEER_OPEN_HEALTH",
        "bool",
        False,
        "`1`: `/health` (and `/`) answer without a login (for a load "
        "balancer's probe; `tasveer up` and docker-compose.yml set it)",
        ("api",),
        field="open_health",
    ),
    Var(
        "TASVEER_WEBHOOK_SECRET",
        "text",
        None,
        "`/webhook` requires the header `X-Tasveer-Webhook-Secret` with "
        "this value (`tasveer up` adds it to the webhook it makes in Label Studio)",
        ("api", "cli"),
        field="webhook_secret",
    ),
    Var(
        "TASVEER_ALLOWED_HOSTS",
        "hosts",
        (),
        "hosts besides Label Studio's that images may be downloaded from (`host`: any port, or `host:port`)",
        BACKEND,
        field="allowed_hosts",
    ),
    Var(
        "TASVEER_LS_MEDIA_DIR",
        "path",
        None,
        "Label Studio's `<data dir>/media` when on the same disk: uploads "
        "are read from there instead of downloaded (`tasveer up` sets it)",
        BACKEND,
        field="ls_media_dir",
    ),
    Var(
        "TASVEER_MAX_IMAGE_BYTES",
        "int",
        25 * MIB,
        "a larger image download is aborted",
        BACKEND,
        field="max_image_bytes",
        lo=1,
        default_text="25 MiB",
    ),
    Var(
        "TASVEER_MAX_BODY_BYTES",
        "int",
        64 * MIB,
        "a larger request body is refused (413) while it streams in",
        ("api",),
        field="max_body_bytes",
        lo=1,
        default_text="64 MiB",
    ),
    Var(
        "TASVEER_FETCH_TIMEOUT",
        "float",
        20.0,
        "seconds allowed for one image download",
        BACKEND,
        field="fetch_timeout",
        lo=0,
        lo_open=True,
    ),
    Var(
        "TASVEER_FETCH_WORKERS",
        "int",
        8,
        "concurrent image downloads per request",
        BACKEND,
        field="fetch_workers",
        lo=1,
    ),
    Var(
        "TASVEER_LOG_LEVEL",
        "choice",
        "info",
        "what the log shows",
        BACKEND,
        field="log_level",
        choices=("critical", "error", "warning", "info", "debug"),
    ),
    Var(
        "TASVEER_ENGINE",
        "choice",
        "auto",
        "what serves predictions: `onnx` (ONNX Runtime), `torch`, or `auto` "
        "= PyTorch on a CUDA GPU, ONNX Runtime otherwise",
        BACKEND,
        field="engine",
        choices=("auto", "onnx", "torch"),
    ),
    *JOB_VARIABLES,
    Var(
        "TASVEER_BACKEND_URL",
        "text",
        None,
        "the ML backend that `tasveer versions`, `promote`, `params` and `retrain` talk to (their `--backend`)",
        ("cli",),
        default_text="the `tasveer up` state, else `http://127.0.0.1:9090`",
    ),
    Var(
        "TASVEER_CACHE",
        "path",
        None,
        "the embedding cache of `tasveer train`, `evaluate`, `predict`, `simulate` "
        "and `label-errors` (their `--cache`)",
        ("cli",),
        default_text="`$XDG_CACHE_HOME/tasveer`, else `~/.cache/tasveer`",
    ),
    Var(
        "LABEL_STUDIO_BASE_DATA_DIR",
        "path",
        None,
        "Label Studio's SQLite database, uploads and logs (`tasveer up`: `<data dir>/labelstudio`)",
        ("label-studio",),
    ),
    Var(
        "LABEL_STUDIO_USERNAME",
        "text",
        None,
        "the admin created on Label Studio's first start (`tasveer up` keeps it in `<data dir>/tasveer-up.json`)",
        ("label-studio",),
    ),
    Var("LABEL_STUDIO_PASSWORD", "text", None, "that admin's password", ("label-studio",)),
    Var("LABEL_STUDIO_USER_TOKEN", "text", None, "that admin's legacy API token", ("label-studio",)),
    Var(
        "LABEL_STUDIO_HOST",
        "text",
        None,
        "Label Studio's own URL, sent to the backend as `hostname` in `/setup`",
        ("label-studio",),
    ),
    Var(
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN",
        "text",
        None,
        "`true`: legacy tokens work (copied into an "
        "organization when it is created); `tasveer up` and deploy/labelstudio.env set it",
        ("label-studio",),
    ),
    Var(
        "LABEL_STUDIO_DJANGO_DB",
        "text",
        None,
        "Label Studio's database; `tasveer up` removes it (and `DATABASE_URL`, Label Studio's "
        "`POSTGRE_*`) and sets `DJANGO_DB` and `POSTGRE_*` from its `--database` (default SQLite)",
        ("label-studio",),
    ),
    Var(
        "DJANGO_SETTINGS_MODULE",
        "text",
        None,
        "Label Studio's settings; `tasveer up` on SQLite sets `tasveer_ls_settings` (its folder "
        "sync/lssettings/ on `PYTHONPATH`): Label Studio's own with immediate SQLite transactions, so "
        "`/next` waits for a writer instead of failing and retrying a second later; an inherited value is removed",
        ("label-studio",),
    ),
)


__all__ = ["READERS", "RULES", "VARIABLES"]
