"""A running `tasveer up` for bench/scale.py: started as a subprocess in a temp data dir on free ports
(like tests/upbrowser.py), its two servers' HTTP APIs, their processes' memory, and the count of
Label Studio's requests read from its log.

* SQLite: the data dir starts with tests/lssqlite.py's migrated, empty database, so Label Studio
  skips its ~400 migrations and does only a first start's work.
* PostgreSQL: `tasveer up --database postgresql://...` on a fresh copy of tests/pgls.py's migrated
  template database (127.0.0.1:5432), dropped afterwards.

Every request the bench itself sends to Label Studio carries `bench=1` in its query (Label Studio
ignores it; its request log shows it), so `ls_requests` counts the others: the backend's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # lssqlite / pgls: the tests' migrated Label Studio databases

from config.env import SECRET_USER  # noqa: E402
from sync.netutil import free_port  # noqa: E402
from sync.state import STATE_FILE  # noqa: E402

TAG = {"bench": "1"}
REQUEST_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]"')


class Up:
    def __init__(self, root: Path, database: str = "sqlite"):
        self.data_dir = root / "var"
        self.out_path = root / "up.out"
        self.database = database
        self.pg_name: str | None = None
        self.proc: subprocess.Popen | None = None
        self.state: dict = {}
        self.http = requests.Session()

    # --- the process ---
    def start(self, timeout: float = 600.0) -> None:
        argv = ["up", "--data-dir", str(self.data_dir), "--port", str(free_port())]
        argv += ["--backend-port", str(free_port())]
        if self.database == "postgres":
            from pgls import PG, fresh_database

            self.pg_name = fresh_database(self.data_dir.parent / "pg-scratch")
            argv += ["--database", f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.pg_name}"]
        else:
            from lssqlite import migrated_database

            migrated_database(self.data_dir / "labelstudio")
        cmd = [sys.executable, "-m", "cli.main", *argv]
        with open(self.out_path, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while "press Ctrl-C" not in self.out_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tasveer up did not start:\n{self.out_path.read_text()[-3000:]}")
            time.sleep(1.0)
        self.state = json.loads((self.data_dir / STATE_FILE).read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.pg_name:
            from pgls import drop_database

            drop_database(self.pg_name)
            self.pg_name = None

    def tasveer(self, *args: str, timeout: float = 7200) -> subprocess.CompletedProcess:
        """A `tasveer` command on this data dir (its defaults: this Label Studio and project)."""
        argv = [sys.executable, "-m", "cli.main", *args[:1], "--data-dir", str(self.data_dir), *args[1:]]
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)

    # --- HTTP ---
    @property
    def pid(self) -> int:
        return int(self.state["project_id"])

    def ls(self, method: str, path: str, params: dict | None = None, **kw) -> requests.Response:
        """A request of the bench to Label Studio (tagged `bench=1`)."""
        headers = {"Authorization": f"Token {self.state['token']}"}
        return self.http.request(
            method, f"{self.state['url']}{path}", params={**(params or {}), **TAG}, headers=headers, timeout=120, **kw
        )

    def backend(self, path: str, **params) -> dict:
        r = self.http.get(
            f"{self.state['backend_url']}{path}",
            params=params,
            timeout=60,
            auth=(SECRET_USER, self.state["backend_secret"]),
        )
        r.raise_for_status()
        return r.json()

    def versions(self) -> dict:
        return self.backend("/versions", project=self.pid)

    def count_tasks(self, no_prediction: bool = False) -> int:
        """The project's tasks (or those without a prediction), counted by Label Studio."""
        query = {}
        if no_prediction:
            item = {"filter": "filter:tasks:total_predictions", "operator": "equal", "type": "Number", "value": 0}
            query = {"filters": {"conjunction": "and", "items": [item]}}
        r = self.ls("GET", "/api/tasks", {"project": self.pid, "page": 1, "page_size": 1, "query": json.dumps(query)})
        r.raise_for_status()
        return int(r.json()["total"])

    # --- the servers' processes ---
    def children(self) -> dict[str, int]:
        """{"labelstudio": pid, "backend": pid}: `tasveer up`'s two children."""
        found = {}
        for pid in descendants(self.proc.pid, depth=1) if self.proc else []:
            cmd = _cmdline(pid)
            if "label_studio" in cmd or "label-studio" in cmd:
                found["labelstudio"] = pid
            elif "backend" in cmd:
                found["backend"] = pid
        return found

    def rss_mb(self, field: str = "VmRSS") -> dict[str, float]:
        """Resident memory of each server with its own children (MB): `VmRSS` all of it, `RssAnon`
        its private heap (what file-backed pages, shared libraries and mapped files, leave out)."""
        kids = self.children().items()
        return {name: sum(rss_mb(p, field) for p in [pid, *descendants(pid)]) for name, pid in kids}

    def backend_ls_requests(self, since: float) -> dict[str, int]:
        """The backend's own count of its Label Studio requests (lsclient counts them; each job
        reports its training's and its write-back's) in the trainings submitted after `since`:
        `training` (its reads) and `head` (the head's write) are what a correction costs until
        `/next` serves its version; `rest` the other tasks' batches written while nobody corrects."""
        total = {"training": 0, "head": 0, "rest": 0}
        for job in self.backend(f"/projects/{self.pid}/jobs")["jobs"]:
            result = job.get("result") if isinstance(job.get("result"), dict) else {}
            if job["submitted_at"] < since or not result:
                continue
            total["training"] += (result.get("ls_requests") or {}).get("training", 0)
            written = (result.get("refresh") or {}).get("ls_requests") or {}
            total["head"] += written.get("head", 0)
            total["rest"] += written.get("rest", 0)
        return total

    def ls_requests(self) -> int:
        """Requests in Label Studio's log that the bench did not send. Its logging config writes
        each request line through two handlers (the same line twice, to the millisecond): the most
        common number of copies of a line is taken as that factor."""
        log = self.data_dir / "labelstudio" / "label-studio.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        lines = Counter(line for line in text.splitlines() if REQUEST_LINE.search(line))
        if not lines:
            return 0
        copies = Counter(lines.values()).most_common(1)[0][0]
        return sum(-(-n // copies) for line, n in lines.items() if "bench=1" not in line)

    def logs(self, n: int = 30) -> str:
        out = []
        for name in ("backend/backend.log", "labelstudio/label-studio.log"):
            path = self.data_dir / name
            lines = path.read_text(errors="replace").splitlines()[-n:] if path.exists() else ["(missing)"]
            out.append(f"--- tail of {path}\n" + "\n".join(line[:300] for line in lines))
        return "\n".join(out)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int, depth: int = 8) -> list[int]:
    """The process's children (and theirs, `depth` levels down), from /proc."""
    found = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            kids = [int(k) for k in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found.append(kid)
            if depth > 1:
                found += descendants(kid, depth - 1)
    return found


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
