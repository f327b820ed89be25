"""The backend's HTTP API for the verbs that manage a project's models (versions, promote, params)."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from config.env import SECRET_USER, basic_auth, read
from config.spec import SettingsError
from sync.state import load_state

DEFAULT_BACKEND = "http://127.0.0.1:9090"


class BackendAPIError(RuntimeError):
    pass


def add_backend_options(parser) -> None:
    parser.add_argument("--project", type=int, help="Label Studio project id (default: the `tasveer up` project)")
    parser.add_argument(
        "--backend",
        help=f"ML backend URL (default: $TASVEER_BACKEND_URL, the `tasveer up` state, or {DEFAULT_BACKEND})",
    )
    parser.add_argument("--data-dir", default="./var", help="data dir of `tasveer up`, read for defaults")
    parser.add_argument("--json", action="store_true", help="print the backend's JSON answer")


def resolve(args) -> tuple[str, int]:
    state = load_state(args.data_dir) if args.data_dir else None
    url = args.backend or read("TASVEER_BACKEND_URL") or (state.backend_url if state else None) or DEFAULT_BACKEND
    project = args.project if args.project is not None else (state.project_id if state else None)
    if project is None:
        raise BackendAPIError("no --project given and no `tasveer up` state in --data-dir")
    return url.rstrip("/"), int(project)


def login(args, url: str) -> tuple[str, str] | None:
    """What to log in to `url` with: the environment's TASVEER_BASIC_AUTH_USER/_PASSWORD or
    TASVEER_SECRET, else the secret of the `tasveer up` state in --data-dir, sent only to that
    state's own backend (never to another --backend)."""
    try:
        auth = basic_auth()
    except SettingsError as exc:
        raise BackendAPIError(str(exc)) from None
    state = load_state(args.data_dir) if args.data_dir and auth is None else None
    if state and state.backend_url and _origin(state.backend_url) == _origin(url):
        return (SECRET_USER, state.backend_secret)
    return auth


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def call(method: str, url: str, auth: tuple[str, str] | None = None, **kwargs) -> dict:
    """The backend's JSON answer; `auth` from `login` (default: the environment's credentials)."""
    if auth is None:
        try:
            auth = basic_auth()  # what the backend requires, when it requires it
        except SettingsError as exc:
            raise BackendAPIError(str(exc)) from None
    try:
        resp = requests.request(method, url, timeout=60, auth=auth, **kwargs)
    except requests.RequestException as exc:
        where = url.split("/projects")[0]
        raise BackendAPIError(f"the backend at {where} is not reachable ({type(exc).__name__})") from None
    try:
        body = resp.json()
    except ValueError:
        body = {"error": resp.text[:300]}
    if resp.status_code >= 400:
        raise BackendAPIError(body.get("error") or f"HTTP {resp.status_code}")
    return body
