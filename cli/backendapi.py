"""The backend's HTTP API for the verbs that manage a project's models (versions, promote, params)."""
from __future__ import annotations

import requests

from config.env import basic_auth, read
from config.spec import SettingsError
from sync.state import load_state

DEFAULT_BACKEND = "http://127.0.0.1:9090"


class BackendAPIError(RuntimeError):
    pass


def add_backend_options(parser) -> None:
    parser.add_argument("--project", type=int, help="Label Studio project id (default: the `tasveer up` project)")
    parser.add_argument("--backend", help=f"ML backend URL (default: $TASVEER_BACKEND_URL, the `tasveer up` "
                                          f"state, or {DEFAULT_BACKEND})")
    parser.add_argument("--data-dir", default="./var", help="data dir of `tasveer up`, read for defaults")
    parser.add_argument("--json", action="store_true", help="print the backend's JSON answer")


def resolve(args) -> tuple[str, int]:
    state = load_state(args.data_dir) if args.data_dir else None
    url = args.backend or read("TASVEER_BACKEND_URL") or (state and state.backend_url) or DEFAULT_BACKEND
    project = args.project if args.project is not None else (state and state.project_id)
    if project is None:
        raise BackendAPIError("no --project given and no `tasveer up` state in --data-dir")
    return url.rstrip("/"), int(project)


def call(method: str, url: str, **kwargs) -> dict:
    try:
        auth = basic_auth()  # what the backend requires, when it requires it
    except SettingsError as exc:
        raise BackendAPIError(str(exc)) from None
    try:
        resp = requests.request(method, url, timeout=60, auth=auth, **kwargs)
    except requests.RequestException as exc:
        raise BackendAPIError(f"the backend at {url.split('/projects')[0]} is not reachable ({type(exc).__name__})") from None
    try:
        body = resp.json()
    except ValueError:
        body = {"error": resp.text[:300]}
    if resp.status_code >= 400:
        raise BackendAPIError(body.get("error") or f"HTTP {resp.status_code}")
    return body
