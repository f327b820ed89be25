"""Pytest fixtures for a real Label Studio process and a real backend process.

`label_studio` (session scope): one Label Studio 1.23.2 started once per test session in a temp
dir (on a copy of the migrated empty database, lssqlite.py) on a free loopback port, SSRF
protection on with only 127.0.0.0/8 reachable (so an ML backend on loopback can be connected and
its webhook created). Yields a `LabelStudioInstance` with
`.url`, `.token` (legacy token, header `Authorization: Token <token>`), `.username`,
`.password`, `.data_dir`, plus `.client()` (an lsclient client), `.headers`,
`.personal_access_token()` (the admin's PAT, created once per session: LS allows ONE live PAT per
user, so do not POST /api/token/ for the admin yourself) and `.new_user_with_pat()` (a fresh user
of the organization with its own PAT).

`shared_backend` (session scope): one backend process (default settings, reading Label Studio's
media dir) for the modules that only need a project of their own on one.

`start_backend` (function scope): a factory `start_backend(label_studio, **env)` that runs
`python -m backend` on a free loopback port with the TASVEER_* / LABEL_STUDIO_* env, waits for
`/health`, and stops it at the end of the test.

`shared_data` : Path of the shared data dir (`<repo>/../shared`, or env TASVEER_SHARED).

Helpers: `scene_tree(shared_data, dest, per_class)` (class-per-folder tree of symlinks to shared
images), `run_tasveer(*args)` (the CLI in a subprocess).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from lssqlite import migrated_database
from lstokens import TokenError, browser_session, create_personal_access_token, session_personal_access_token
from requireall import missing_part
from sync.backendproc import BackendError, BackendServer
from sync.labelstudio import LabelStudioServer
from sync.netutil import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("TASVEER_SHARED") or REPO_ROOT.parent / "shared")


def scene_dir() -> Path:
    return shared_dir() / "data" / "intel-scenes" / "train"


def scene_tree(
    shared_data: Path, dest: Path, per_class: int, classes=("buildings", "forest", "sea")
) -> dict[Path, str]:
    """DEST/<class>/<name>.jpg symlinks to the first `per_class` shared images of each class
    (nothing is copied); returns {link path: class}."""
    out = {}
    for cls in classes:
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for src in sorted((shared_data / "data" / "intel-scenes" / "train" / cls).glob("*.jpg"))[:per_class]:
            link = dest / cls / src.name
            link.symlink_to(src)
            out[link] = cls
    return out


def poll(check, what: str, timeout: float, interval: float = 0.5, detail=lambda: ""):
    """Call `check()` until it returns something truthy (returned); fail after `timeout` s with
    "no <what>" and `detail()` (a log tail, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s{detail()}")
        time.sleep(interval)


def tasveer_argv(*args: str) -> list[str]:
    """argv running the real CLI (`python -m cli.main ...`, what the `tasveer` script runs)."""
    return [sys.executable, "-m", "cli.main", *args]


def run_tasveer(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(tasveer_argv(*args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


@dataclass
class LabelStudioInstance:
    url: str
    token: str
    username: str
    password: str
    data_dir: Path
    server: LabelStudioServer = field(repr=False)
    _pat: str | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def client(self):
        """tasveer's Label Studio client (lsclient: the label-studio-sdk client plus its operations)."""
        from lsclient import open_client
        from lsproto.tokens import LSAuth

        return open_client(LSAuth(self.url, self.token), timeout=60.0)

    def url_tasks(self, project_id: int, count: int) -> list[int]:
        """`count` new tasks whose images are never fetched (a closed port): their ids, in order."""
        body = [{"image": f"http://127.0.0.1:9/{i}.jpg"} for i in range(count)]
        r = requests.post(
            f"{self.url}/api/projects/{project_id}/import",
            json=body,
            params={"return_task_ids": "true"},
            headers=self.headers,
            timeout=120,
        )
        r.raise_for_status()
        return r.json()["task_ids"]

    def personal_access_token(self) -> str:
        """A personal access token (PAT) of this organization, created on first use and cached for
        the session. LS allows ONE live PAT per user, so tests should share this one rather than
        POST /api/token/ for the admin themselves. It is the admin's PAT, or, when the admin already
        has one made elsewhere (its value cannot be read back), the PAT of a fresh user of the
        same organization (same permissions on projects, tasks and uploads in LS Community)."""
        if self._pat is None:
            try:
                self._pat = create_personal_access_token(self.url, self.token)
            except TokenError:
                self._pat = self.new_user_with_pat()[1]
        return self._pat

    def new_user_with_pat(self, email: str | None = None, password: str = "pat-user-password") -> tuple[str, str]:
        """A fresh user of the same organization (signed up like in the browser) and its own PAT:
        (email, PAT). Independent of the admin's PAT."""
        email = email or f"pat-{secrets.token_hex(4)}@tasveer.test"
        session = browser_session(self.url, email, password, signup=True)
        return email, session_personal_access_token(self.url, session)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("labelstudio")
    migrated_database(data_dir)  # Label Studio skips its migrations
    server = LabelStudioServer(
        data_dir,
        free_port(),
        username="admin@tasveer.test",
        password="tasveer-test-password",
        token="test" + secrets.token_hex(16),
        backend_hosts=("127.0.0.1",),
    )
    server.start()
    try:
        yield LabelStudioInstance(server.url, server.token, server.username, server.password, server.data_dir, server)
    finally:
        server.stop()


@contextmanager
def backend_on(ls: LabelStudioInstance, data_dir: Path, *, media: bool = True, **extra_env: str):
    """A backend process for `ls`, stopped on leaving the block; a start failure fails the test.
    `media`: it reads uploads from Label Studio's media dir, as `tasveer up` runs it."""
    server = BackendServer(
        data_dir,
        free_port(),
        label_studio_url=ls.url,
        label_studio_token=ls.token,
        label_studio_media_dir=ls.data_dir / "media" if media else None,
        extra_env=extra_env,
    )
    try:
        try:
            server.start()
        except BackendError as exc:
            pytest.fail(str(exc))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_backend(label_studio, tmp_path_factory):
    """One backend process for the session's Label Studio, run as `tasveer up` runs it (reading
    uploads from Label Studio's media dir, default settings), for the test modules that need no
    more than a project of their own on such a backend: one process start and one model load for
    all of them, not one per module. A module that needs other settings starts its own, and so does
    one that asks Label Studio for the backend's versions (/api/ml/<id>/versions: Label Studio's
    GET /versions names no project, which a backend answers only when it holds one)."""
    with backend_on(label_studio, tmp_path_factory.mktemp("shared-backend")) as server:
        yield server


@pytest.fixture
def start_backend(tmp_path_factory):
    """Factory: `backend = start_backend(label_studio, TASVEER_SOMETHING="1")` -> BackendServer
    (`.url`, `.data_dir`, `.log_tail()`); every backend started is stopped after the test."""
    with ExitStack() as started:

        def _start(ls: LabelStudioInstance, data_dir: Path | None = None, **extra_env: str) -> BackendServer:
            where = data_dir or tmp_path_factory.mktemp("backend")
            return started.enter_context(backend_on(ls, where, media=False, **extra_env))

        yield _start


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_dir()
    if not (path / "data").is_dir():
        missing_part(f"shared data not found at {path} (set TASVEER_SHARED)")
    return path
