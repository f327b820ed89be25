"""Run a Label Studio 1.23.2 server as a child process (SQLite, loopback) and wait for it.

Environment it gets (verified in LS's source, see docs/labelstudio.md):

* `LABEL_STUDIO_BASE_DATA_DIR`: SQLite database, media (uploads) and logs live here.
* `LABEL_STUDIO_USERNAME/PASSWORD/USER_TOKEN`: the admin created on first start; the token is the
  user's legacy token, usable only when `LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true` at the time the
  organization is created (stored per organization afterwards).
* `ML_BLOCK_LOCAL_IP=false`: lets LS connect to an ML backend on a loopback/private address.
* `DATA_UPLOAD_MAX_NUMBER_FILES=1000`: the import dialog sends a whole drop in one request, and LS's
  default (100) refuses a drop of 128 photos.
* SSRF protection stays ON; `USE_DEFAULT_BANNED_SUBNETS=false` and
  `USER_ADDITIONAL_BANNED_SUBNETS` = every range except the backend's subnet, so the webhook LS
  creates for the backend passes validation while everything else stays blocked.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import requests

from sync.netutil import banned_subnets, port_in_use, subnet_of_host, wait_http_ok
from sync.process import ChildProcess, ManagedServer


MAX_FILES_PER_UPLOAD = 1000


class LabelStudioStartError(RuntimeError):
    """Label Studio could not be started or reached."""


def label_studio_argv() -> list[str]:
    """The `label-studio` launcher next to this interpreter (the venv), else one on PATH."""
    candidate = Path(sys.executable).with_name("label-studio")
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("label-studio")
    if found:
        return [found]
    return [sys.executable, "-m", "label_studio.server"]


class LabelStudioServer(ManagedServer):
    """`with LabelStudioServer(data_dir, port, ...) as ls:` -> `ls.url`, `ls.token`."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        port: int,
        *,
        username: str = "admin@tasveer.local",
        password: str = "tasveer-admin",
        token: str,
        host: str = "127.0.0.1",
        backend_hosts: tuple[str, ...] = ("127.0.0.1",),
        startup_timeout: float = 180.0,
        extra_env: dict[str, str] | None = None,
    ):
        if len(token) <= 5:
            raise ValueError("Label Studio ignores user tokens of 5 characters or fewer")
        self.data_dir = Path(data_dir).resolve()
        self.port = int(port)
        self.host = host
        self.username = username
        self.password = password
        self.token = token
        self.backend_hosts = backend_hosts
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.log_path = self.data_dir / "label-studio.log"
        self._child: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def media_dir(self) -> Path:
        """Where LS keeps uploads (`media/upload/<project>/<file>` = URL `/data/upload/...`)."""
        return self.data_dir / "media"

    def environment(self) -> dict[str, str]:
        allowed = sorted({subnet_of_host(h) for h in self.backend_hosts})
        env = dict(os.environ)
        env.update(
            {
                "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
                "LABEL_STUDIO_USERNAME": self.username,
                "LABEL_STUDIO_PASSWORD": self.password,
                "LABEL_STUDIO_USER_TOKEN": self.token,
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
                # the import dialog sends a whole drop in one request; LS's default refuses > 100 files
                "DATA_UPLOAD_MAX_NUMBER_FILES": str(MAX_FILES_PER_UPLOAD),
                "LABEL_STUDIO_HOST": self.url,
                "LATEST_VERSION_CHECK": "false",
                "COLLECT_ANALYTICS": "false",
                "ML_BLOCK_LOCAL_IP": "false",
                "SSRF_PROTECTION_ENABLED": "true",
                "USE_DEFAULT_BANNED_SUBNETS": "false",
                "USER_ADDITIONAL_BANNED_SUBNETS": ",".join(banned_subnets(allowed)),
                "PYTHONUNBUFFERED": "1",
            }
        )
        # a database URL or a Postgres setting inherited from the caller would move LS off SQLite
        for key in ("DJANGO_DB", "LABEL_STUDIO_DJANGO_DB", "DATABASE_URL"):
            env.pop(key, None)
        env.update(self.extra_env)
        return env

    def argv(self) -> list[str]:
        return label_studio_argv() + [
            "start", "--no-browser", "--port", str(self.port), "--host", self.url,
            "--internal-host", self.host, "--data-dir", str(self.data_dir),
        ]

    def spawn(self) -> None:
        """Start the process without waiting (see `wait_ready`)."""
        if port_in_use(self.port, self.host):
            raise LabelStudioStartError(f"port {self.port} on {self.host} is already in use; pick another --port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._child = ChildProcess("label-studio", self.argv(), self.environment(), self.log_path)
        self._child.start()

    def wait_ready(self) -> "LabelStudioServer":
        """Wait for `/health`; on failure stop the process and raise with the log's tail."""
        assert self._child is not None, "spawn() first"
        ok = wait_http_ok(f"{self.url}/health", self.startup_timeout, alive=self._child.alive,
                          interval=0.5)
        if not ok:
            died = not self._child.alive()
            tail = self._child.log_tail()
            self.stop()
            reason = (f"exited with code {self._child.returncode()}" if died
                      else f"was not healthy after {self.startup_timeout:.0f} s")
            raise LabelStudioStartError(
                f"Label Studio {reason} (url {self.url}, log {self.log_path}). Last log lines:\n{tail}"
            )
        self._check_token()
        return self

    def _check_token(self) -> None:
        """The legacy token must authenticate; if the data dir was made with another token it won't."""
        resp = requests.get(f"{self.url}/api/current-user/whoami",
                            headers={"Authorization": f"Token {self.token}"}, timeout=10)
        if resp.status_code != 200:
            self.stop()
            raise LabelStudioStartError(
                f"Label Studio is up but rejects the legacy token (HTTP {resp.status_code}); "
                f"the data dir {self.data_dir} was probably created with another user/token"
            )
