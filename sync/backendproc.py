"""Run the tasveer ML backend (`python -m backend`) as a child process; never imports it.

Settings travel as environment variables only, written from their declarations (config/): the data
dir, host, port, Label Studio's URL and token and, when on the same disk, its media directory, and the
login (`secret`, `public_hosts`, `open_health`) when given; the rest is inherited. Health is
`GET /health` -> 200 `{"status": "UP", ...}`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from config.env import basic_auth, environment
from config.spec import SettingsError
from sync.netutil import port_in_use, wait_http_ok
from sync.process import ChildProcess, ManagedServer
from sync.project import webhook_headers

REPO_ROOT = Path(__file__).resolve().parents[1]


class BackendError(RuntimeError):
    """The backend could not be started."""


def backend_available() -> bool:
    """True when `python -m backend` can run from this checkout (backend/__main__.py exists)."""
    return (REPO_ROOT / "backend" / "__main__.py").exists()


def _healthy(resp) -> bool:
    if resp.status_code != 200:
        return False
    try:
        return resp.json().get("status") == "UP"
    except ValueError:
        return False


class BackendServer(ManagedServer):
    def __init__(
        self,
        data_dir: str | os.PathLike,
        port: int,
        *,
        label_studio_url: str,
        label_studio_token: str,
        label_studio_media_dir: str | os.PathLike | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 180.0,
        extra_env: dict[str, str] | None = None,
        secret: str | None = None,
        public_hosts: tuple[str, ...] = (),
        open_health: bool = False,
    ):
        self.data_dir = Path(data_dir).resolve()
        self.port = int(port)
        self.host = host
        self.label_studio_url = label_studio_url
        self.label_studio_token = label_studio_token
        # LS's <data dir>/media when LS runs on this disk: the backend reads uploads from it
        self.label_studio_media_dir = label_studio_media_dir
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        # the login (TASVEER_SECRET), the names it answers to besides loopback, and an open /health;
        # unset, the environment's own TASVEER_SECRET / _PUBLIC_HOSTS / _OPEN_HEALTH stay
        self.login = {
            k: v
            for k, v in (("secret", secret), ("public_hosts", tuple(public_hosts)), ("open_health", open_health))
            if v
        }
        self.log_path = self.data_dir / "backend.log"
        self._child: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        settings = {
            "data_dir": self.data_dir,
            "host": self.host,
            "port": self.port,
            "label_studio_url": self.label_studio_url,
            "label_studio_api_key": self.label_studio_token,
        }
        if self.label_studio_media_dir:
            settings["ls_media_dir"] = Path(self.label_studio_media_dir)
        settings.update(self.login)
        env = {**os.environ, **environment(settings), "PYTHONUNBUFFERED": "1"}
        # run from the repo root so `-m backend` finds this checkout's package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.update(self.extra_env)
        return env

    def spawn(self) -> None:
        """Start the process without waiting (see `wait_ready`)."""
        if not backend_available():
            raise BackendError(f"the backend is not installed: {REPO_ROOT / 'backend' / '__main__.py'} is missing")
        if port_in_use(self.port, self.host):
            raise BackendError(f"port {self.port} on {self.host} is already in use; pick another --backend-port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._child = ChildProcess(
            "backend", [sys.executable, "-m", "backend"], self.environment(), self.log_path, cwd=REPO_ROOT
        )
        self._child.start()

    def wait_ready(self) -> BackendServer:
        """Wait for `/health` = {"status": "UP"}; on failure stop it and raise with the log's tail."""
        assert self._child is not None, "spawn() first"
        env = self.environment()
        try:
            pair = basic_auth(env)
        except SettingsError:  # the backend refuses it too: its log says so below
            pair = None
        auth = webhook_headers(pair) if pair else None  # the Authorization header
        if not wait_http_ok(
            f"{self.url}/health", self.startup_timeout, alive=self._child.alive, check=_healthy, headers=auth
        ):
            died = not self._child.alive()
            tail = self._child.log_tail()
            self.stop()
            reason = (
                f"exited with code {self._child.returncode()}"
                if died
                else f"was not healthy after {self.startup_timeout:.0f} s"
            )
            raise BackendError(f"the backend {reason} (url {self.url}, log {self.log_path}). Last log lines:\n{tail}")
        return self
