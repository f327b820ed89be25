"""A running `tasveer up` and a headless Chromium on its Label Studio, for the browser tests: the
process (started plain, on free ports), its state file, API helpers for Label Studio and the
backend, log tails for failure messages, and page helpers (tabs, error check, screenshots that the
README shows are also written to docs/img)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import requests

from config.env import SECRET_USER
from lsfixture import REPO_ROOT, poll, tasveer_argv
from lsproto.notes import NOTE_COLUMN, QUEUE, QUEUE_COLUMN, read_note
from lssqlite import migrated_database
from sync.netutil import free_port
from sync.state import STATE_FILE

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREEN = {"width": 1440, "height": 900}
WAIT = 300.0
MS = 120_000  # Playwright timeouts (ms): two shared cores
DOCS_IMG = REPO_ROOT / "docs" / "img"
ERRORS = ("Runtime error", "Cannot resolve keyword", "Something went wrong", "Server error")

# the cells of the data manager's rows: texts by column title, and where the photo is
ROWS_JS = """() => {
    const text = c => c.innerText.split('\\n')[0].trim();
    const head = [...document.querySelectorAll('.lsf-table-head .lsf-table__cell')].map(text);
    const bottom = innerHeight - 40;  // the footer with the task counts covers the last 40 px
    const rows = [...document.querySelectorAll('[data-testid=table-row]')].map(r => {
        const cells = [...r.querySelectorAll('.lsf-table__cell')];
        const img = r.querySelector('img'), box = img && img.getBoundingClientRect();
        const seen = img && img.complete && img.naturalWidth > 0 && box.top >= 0 && (box.top + box.bottom) / 2 < bottom;
        const right = Math.max(...cells.map(c => c.getBoundingClientRect().right));
        return {cells: cells.map(c => c.innerText.trim()), right, photo: !!seen};
    });
    return {head, width: innerWidth, rows};
}"""


class Up:
    """A running `tasveer up`: its state file, API helpers, and log tails for failure messages."""

    def __init__(self, data_dir: Path, stdout: Path):
        self.data_dir, self.stdout = data_dir, stdout
        self.state: dict = {}
        self.annotated: dict[int, str] = {}  # task -> the label a correction gave it

    def logs(self, n: int = 40) -> str:
        out = []
        for name in ("backend/backend.log", "labelstudio/label-studio.log"):
            path = self.data_dir / name
            lines = path.read_text(errors="replace").splitlines()[-n:] if path.exists() else ["(missing)"]
            out.append(f"--- tail of {path}\n" + "\n".join(line[:300] for line in lines))
        out.append(f"--- tasveer up output\n{self.stdout.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def wait(self, check, what: str, timeout: float = WAIT, interval: float = 1.0):
        return poll(check, what, timeout, interval, lambda: "\n" + self.logs())

    def get(self, path: str, **params):
        r = requests.get(
            f"{self.state['url']}{path}",
            params=params,
            timeout=60,
            headers={"Authorization": f"Token {self.state['token']}"},
        )
        r.raise_for_status()
        return r.json()

    def backend(self, path: str, **params):
        r = requests.get(
            f"{self.state['backend_url']}{path}",
            params=params,
            timeout=60,
            auth=(SECRET_USER, self.state["backend_secret"]),
        )
        r.raise_for_status()
        return r.json()

    @property
    def pid(self) -> int:
        return self.state["project_id"]

    def model_version(self) -> str:
        return self.get(f"/api/projects/{self.pid}")["model_version"]

    def tasks(self) -> list[dict]:
        # the project's task list, NOT /api/tasks: that one makes Label Studio predict tasks itself
        return self.get(f"/api/projects/{self.pid}/tasks/", page_size=10_000)

    def all_predictions(self) -> list[dict]:
        """Every prediction of the project, of every version (a task may have several)."""
        data = self.get("/api/predictions/", project=self.pid)
        return data.get("results", data) if isinstance(data, dict) else data

    def predictions(self, version: str) -> dict[int, dict]:
        return {p["task"]: p for p in self.all_predictions() if p["model_version"] == version}

    def views(self) -> dict[str, int]:
        return {v["data"]["title"]: v["id"] for v in self.get("/api/dm/views/", project=self.pid)}

    def settled(self, not_version: str | None = None) -> str | None:
        """The backend idle on a trained version (not `not_version`) that Label Studio follows."""
        info = self.backend("/versions", project=self.pid)
        idle = info["jobs"]["running"] is None and info["jobs"]["pending"] is None
        vid = info["model_version"]
        if idle and vid not in (None, "INITIAL", not_version) and self.model_version() == vid:
            return vid
        return None

    def noted(self, version: str, why: str, ids: set[int]) -> dict[int, dict] | None:
        """Predictions of `version` for every task of `ids` whose note (`why`) and queue key reached
        the task data (the last step of a write-back), by task; else None."""
        preds = self.predictions(version)
        if set(preds) < ids:
            return None
        tasks = {t["id"]: t for t in self.tasks() if t["id"] in ids}
        ok = all(
            why in (tasks[t]["data"].get(NOTE_COLUMN) or "")
            and tasks[t]["data"].get(QUEUE_COLUMN) == read_note(preds[t]["result"], QUEUE)
            for t in ids
        )
        return {t: preds[t] for t in ids} if ok else None


def shot(page, shots: Path, name: str, readme: str | None = None) -> None:
    """A screenshot into `shots`, and into docs/img as `readme` when the README shows it."""
    page.screenshot(path=shots / name)
    if readme:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shots / name, DOCS_IMG / readme)


def no_error(page, where: str) -> None:
    text = page.evaluate("document.body.innerText")
    found = [e for e in ERRORS if e in text]
    assert not found, f"{where}: {found} on the page:\n{text[:1500]}"
    assert not page.locator("[role=dialog]:visible, .ant-modal:visible").count(), f"{where}: a dialog:\n{text[:1500]}"


def open_tab(page, up: Up, view_id: int) -> None:
    page.goto(f"{up.state['url']}/projects/{up.pid}/data?tab={view_id}")
    page.get_by_text(re.compile(r"Tasks: \d+ / \d+")).first.wait_for()
    page.wait_for_timeout(1500)  # a late error modal would show by now


def start_up(tmp_path: Path, *args: str, migrated: bool = False) -> tuple[Up, subprocess.Popen]:
    """A plain `tasveer up` (the README's `make up`, on free ports): nothing imported, unless
    `args` (more `tasveer up` arguments) say so. `migrated`: Label Studio's database comes
    already migrated (lssqlite.py), for tests about the loop rather than its cold start. A
    `tasveer up` that does not come up is stopped."""
    data_dir = tmp_path / "var"
    if migrated:
        migrated_database(data_dir / "labelstudio")
    up = Up(data_dir, tmp_path / "up.out")
    argv = tasveer_argv("up") + [
        "--data-dir",
        str(data_dir),
        "--port",
        str(free_port()),
        "--backend-port",
        str(free_port()),
        *args,
    ]
    with open(up.stdout, "w") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    try:
        up.wait(
            lambda: "press Ctrl-C" in up.stdout.read_text() or proc.poll() is not None,
            "'press Ctrl-C' from tasveer up",
            timeout=400,
        )
        assert proc.poll() is None, f"tasveer up exited with {proc.returncode}\n{up.logs()}"
        up.state = json.loads((data_dir / STATE_FILE).read_text())
    except BaseException:
        stop_up(proc)
        raise
    return up, proc


def stop_up(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
