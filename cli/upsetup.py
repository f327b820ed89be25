"""`tasveer up`'s set-up pieces: the credentials and names the backend gets, the state file's
user and database, and the status it prints (cli/up.py runs the stack)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from backend.api.logintoken import TOKEN_PARAM, link_token, page_link
from config.env import basic_auth, read
from sync.lsdatabase import SQLITE, DatabaseProblem, describe, ensure_database, resolve, same_database
from sync.project import webhook_actions
from sync.state import UpState, load_state


class UpProblem(RuntimeError):
    """An expected start-up failure (printed without a traceback)."""


def backend_credentials(env=None) -> tuple[tuple[str, str] | None, str | None]:
    """(basic auth, webhook secret) the backend will require: the TASVEER_BASIC_AUTH_USER/_PASSWORD
    (else the TASVEER_SECRET login) and TASVEER_WEBHOOK_SECRET of this environment, which the backend
    child inherits."""
    return basic_auth(env), read("TASVEER_WEBHOOK_SECRET", env)


def with_secret(secret: str) -> dict[str, str]:
    """This environment with the backend's secret: what the backend child gets and clients send."""
    return {**os.environ, "TASVEER_SECRET": secret}


def public_hosts(host: str) -> tuple[str, ...]:
    """The names the backend answers to besides loopback and `host`: TASVEER_PUBLIC_HOSTS, and this
    machine's names when it listens on every address."""
    names = tuple(read("TASVEER_PUBLIC_HOSTS"))
    if host in ("0.0.0.0", "::", ""):
        names += tuple(dict.fromkeys(n.lower() for n in (socket.gethostname(), socket.getfqdn()) if n))
    return names


def load_or_create_state(
    data_dir: Path, username: str | None, password: str | None, database: str | None = None
) -> UpState:
    """The data dir's state (made on first use); `database`: `--database` (None: the data dir's own)."""
    state = load_state(data_dir)
    if state is None:
        state = UpState(database=choose_database(data_dir, None, database))
        if username:
            state.username = username
        if password:
            state.password = password
    else:
        state.database = choose_database(data_dir, state.database or SQLITE, database)
        # Label Studio creates its admin only once; another login would silently not exist
        if username and username != state.username:
            raise UpProblem(
                f"{data_dir} was set up for user {state.username}; omit --username or use another --data-dir"
            )
        if password and password != state.password:
            raise UpProblem(f"{data_dir} was set up with another password; omit --password or use another --data-dir")
    if "@" not in state.username:
        raise UpProblem(f"--username must be an email address (Label Studio logs in by email): {state.username!r}")
    return state


def choose_database(data_dir: Path, current: str | None, requested: str | None) -> str:
    """Label Studio's database for this run: a new data dir takes `requested` (default SQLite); an
    existing one keeps `current`, since its users, projects and tasks live there (the URL's
    credentials may change, the server and database may not)."""
    try:
        wanted = resolve(requested, data_dir) if requested else None
    except DatabaseProblem as exc:
        raise UpProblem(str(exc)) from None
    if current is None:
        return wanted or SQLITE
    if wanted is None:
        return current
    if not same_database(current, wanted):
        ls_dir = data_dir / "labelstudio"
        raise UpProblem(
            f"{data_dir} keeps Label Studio's data in {describe(current, ls_dir)}; it cannot switch to "
            f"{describe(wanted, ls_dir)}: omit --database or use another --data-dir"
        )
    return wanted


def ready_database(state: UpState) -> None:
    """Label Studio's PostgreSQL database reachable, made when missing (sync/lsdatabase.py raises
    DatabaseProblem, naming host:port, when not); nothing to do for SQLite."""
    choice = state.database or SQLITE
    if ensure_database(choice):
        print(
            f"created {describe(choice, Path())}: Label Studio's first start on it runs its "
            "migrations (about a minute; see --timeout)",
            flush=True,
        )


def print_status(ls, backend, state, project, ml, hook, views, sampling) -> None:
    lines = [
        f"Label Studio : {ls.url}  (log {ls.log_path})",
        f"database     : {describe(ls.database, ls.data_dir)}",
        f"login        : {state.username} / {state.password}",
        f"API token    : {state.token}   (Authorization: Token <token>)",
        f"project      : {project.title} (id {project.id})  {ls.url}/projects/{project.id}",
        f"ML backend   : {backend.url}  state {ml.state}  (log {backend.log_path})",
        f"webhook      : {hook.url}  actions {webhook_actions(hook)}",
        f"labeling     : {sampling} sampling; views: "
        + ", ".join(f"{title} ({ls.url}/projects/{project.id}/data?tab={vid})" for title, vid in views.items()),
        f"model page   : {page_link(backend.url, project.id, state.backend_secret)}  (opens it logged in: "
        "keep the link private)",
        f"model metrics: {backend.url}/metrics?{TOKEN_PARAM}={link_token(state.backend_secret)}  (versions, accuracy, "
        "confusion matrix, rollback)",
        "backend login: user tasveer, password: backend_secret in the state file (Label Studio sends it)",
        f"state file   : {Path(ls.data_dir).parent / 'tasveer-up.json'}",
    ]
    print("\n".join(lines), flush=True)
