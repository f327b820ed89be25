"""`tasveer up`: Label Studio + the ML backend as child processes, wired together, until Ctrl-C.

Idempotent on one data dir: the admin user, password and legacy token live in
`<data-dir>/tasveer-up.json` and are reused; the project is found again by its title.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.upoptions import DEFAULT_TITLE, project_options, server_options  # noqa: F401 - DEFAULT_TITLE: read by callers
from cli.upsetup import (  # noqa: F401 - backend_credentials: also read by tests
    UpProblem,
    backend_credentials,
    load_or_create_state,
    print_status,
    public_hosts,
    ready_database,
    with_secret,
)
from config.env import is_set, read
from lsclient import LabelStudioError
from sync.backendproc import BackendError, BackendServer
from sync.connection import ConnectionProblem, make_client
from sync.importer import ImportProblem, import_images
from sync.labelstudio import LabelStudioServer, LabelStudioStartError
from sync.lsdatabase import SQLITE, DatabaseProblem
from sync.project import (
    ProjectSetupError,
    api_error_text,
    connect_backend,
    ensure_project,
    parse_labels,
    secure_webhook,
    verify_webhook,
)
from sync.state import UpState, save_state
from sync.views import ViewError, ensure_views


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "up",
        help="start Label Studio and the ML backend, wired together",
        description=(
            "Start Label Studio (SQLite or PostgreSQL, see --database; uploads under DATA_DIR/labelstudio) and "
            "the tasveer ML backend "
            "(data under DATA_DIR/backend) as child processes on 127.0.0.1, create the admin user and "
            "API token (kept in DATA_DIR/tasveer-up.json and reused), create or reuse the project, "
            "connect the backend with 'start training on annotation submission' on, check that Label "
            "Studio created the webhook to the backend, optionally import --images, then run until "
            "Ctrl-C / SIGTERM, which stops both. Running it again on the same DATA_DIR reuses everything."
        ),
    )
    server_options(parser)
    project_options(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for each server and for --images predictions (default: 300)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do the whole start-up, print the status, stop everything and exit 0 (smoke test)",
    )
    parser.set_defaults(func=run)
    return parser


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop(signal.Signals(signum).name)


def run(args) -> int:
    from label_studio_sdk.core.api_error import ApiError  # the SDK is slow to import: only when running

    data_dir = Path(args.data_dir).resolve()
    try:
        labels = parse_labels(args.labels)
        state = load_or_create_state(data_dir, args.username, args.password, args.database)
        if is_set("TASVEER_SECRET"):  # the environment's secret wins, and the state records it for the CLI
            state.backend_secret = read("TASVEER_SECRET")
    except (ValueError, UpProblem) as exc:
        _err(str(exc))
        return 2
    try:
        ready_database(state)
    except DatabaseProblem as exc:
        _err(str(exc))
        return 1
    save_state(data_dir, state)
    servers = _servers(args, data_dir, state)
    # SIGINT too: a shell starts background jobs with SIGINT ignored, where Python would not raise
    # KeyboardInterrupt, and `up` must stop on Ctrl-C / kill -INT however it was started
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        _start(servers)
        wiring = _wire(args, servers, labels, state)
        state.url, state.backend_url = servers.ls.url, servers.backend.url
        state.project_id, state.project_title = wiring.project.id, wiring.project.title
        save_state(data_dir, state)
        if args.images and not _import_and_wait(args, wiring):
            return 1
        print_status(
            servers.ls, servers.backend, state, wiring.project, wiring.ml, wiring.hook, wiring.views, args.sampling
        )
        if args.check:
            print("check: OK", flush=True)
            return 0
        return _watch(servers)
    except (_Stop, KeyboardInterrupt) as exc:
        print(f"\nstopping ({str(exc) or 'SIGINT'}) ...", flush=True)
        return 130 if args.check else 0
    except (
        LabelStudioStartError,
        BackendError,
        ConnectionProblem,
        ProjectSetupError,
        ImportProblem,
        UpProblem,
        ViewError,
        ValueError,
    ) as exc:
        _err(str(exc))
        return 1
    except ApiError as exc:
        _err(f"Label Studio refused a request: {api_error_text(exc)}")
        return 1
    except LabelStudioError as exc:
        _err(f"lost the connection to a server: {exc}")
        return 1
    finally:
        _shut_down(servers, previous)


def _err(msg: str) -> None:
    print(f"tasveer up: {msg}", file=sys.stderr)


@dataclass(frozen=True)
class Servers:
    """The two child processes `up` runs."""

    ls: LabelStudioServer
    backend: BackendServer


@dataclass(frozen=True)
class Wiring:
    """What `up` made or found in Label Studio: its client, the project, the backend's ML connection,
    the webhook to the backend and the project's data-manager views ({title: id})."""

    client: Any
    project: Any
    ml: Any
    hook: Any
    views: dict


def _servers(args, data_dir: Path, state: UpState) -> Servers:
    ls = LabelStudioServer(
        data_dir / "labelstudio",
        args.port,
        username=state.username,
        password=state.password,
        token=state.token,
        host=args.host,
        backend_hosts=(args.host,),
        startup_timeout=args.timeout,
        database=state.database or SQLITE,
    )
    # a login always: the secret (Label Studio's connection and webhook send it, the printed links
    # carry a token made from it); /health stays open for probes unless TASVEER_OPEN_HEALTH says
    backend = BackendServer(
        data_dir / "backend",
        args.backend_port,
        label_studio_url=ls.url,
        label_studio_token=state.token,
        label_studio_media_dir=ls.media_dir,
        host=args.host,
        startup_timeout=args.timeout,
        secret=state.backend_secret,
        public_hosts=public_hosts(args.host),
        open_health=not is_set("TASVEER_OPEN_HEALTH"),
    )
    return Servers(ls, backend)


def _start(servers: Servers) -> None:
    """Spawn both servers and wait until both answer."""
    ls, backend = servers.ls, servers.backend
    print(f"starting Label Studio on {ls.url} and the backend on {backend.url} ...", flush=True)
    ls.spawn()
    backend.spawn()
    t0 = time.monotonic()
    ls.wait_ready()
    backend.wait_ready()
    print(f"both healthy after {time.monotonic() - t0:.0f} s", flush=True)


def _wire(args, servers: Servers, labels: list[str], state: UpState) -> Wiring:
    """The project (created, or found by its title) connected to the backend, with the webhook Label
    Studio made for it secured and its views in place."""
    backend_url = servers.backend.url
    client = make_client(servers.ls.url, state.token)
    project = ensure_project(client, args.title, labels, sampling=args.sampling)
    basic_auth, secret = backend_credentials(with_secret(state.backend_secret))
    ml = connect_backend(client, project, backend_url, basic_auth=basic_auth)
    hook = secure_webhook(client, verify_webhook(client, project.id, backend_url), basic_auth=basic_auth, secret=secret)
    views = ensure_views(client, project.id)
    return Wiring(client, project, ml, hook, views)


def _import_and_wait(args, wiring: Wiring) -> bool:
    """Import --images and wait for their predictions; False (said on stderr) when some have none."""
    result = import_images(
        wiring.client,
        wiring.project.id,
        [args.images],
        args.labels_from_folders,
        wait=True,
        timeout=args.timeout,
        log=lambda m: print(m, file=sys.stderr),
    )
    report = result.predictions
    if not result.ok and report is not None:
        _err(f"{len(report.missing)} imported tasks have no prediction: {report.missing[:20]} {report.errors[:3]}")
    return result.ok


def _watch(servers: Servers) -> int:
    """Run until a signal (raised as _Stop) or until a server dies (1)."""
    print("running; press Ctrl-C to stop", flush=True)
    while True:
        for name, server in (("Label Studio", servers.ls), ("the backend", servers.backend)):
            if not server.alive():
                _err(f"{name} stopped unexpectedly; last log lines:\n{server.log_tail()}")
                return 1
        time.sleep(1.0)


def _shut_down(servers: Servers, previous: dict) -> None:
    """Stop both servers, then give the signals their previous handlers back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abandon the children
    try:
        servers.backend.stop()
        servers.ls.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
