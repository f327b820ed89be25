"""Label Studio on SQLite serves `/next` while the backend writes predictions, without "database is
locked" (sync/lssettings/tasveer_ls_settings.py): LS 1.23.2 serves `/next` in a transaction that
reads, then writes; begun deferred, it fails at once when another connection wrote meanwhile, and
LS's retry middleware sleeps 1 s (then 1.5 s, ...) before it runs the request again. bench/scale.py
measured those stalls at every project size (bench/RESULTS.md); this checks their cause, not a time:
the real Label Studio `tasveer up` starts, the backend's own writes (lswrite.write_rows, batches of
ROWS_PER_WRITE) in one thread, a person's `/next` in another, and Label Studio's log after it.

Run against Label Studio's own settings (DJANGO_SETTINGS_MODULE left to LS; 2026-12-06), the same
writes left time for 17 `/next` instead of 150; Label Studio logged "database is locked" 6 times,
and 3 of the 17 answered 500."""

from __future__ import annotations

import threading

import pytest
import requests

from backend.writeback.lswrite import ROWS_PER_WRITE, write_rows
from lsproto.config import parse_label_config
from lsproto.notes import WHY_UNCERTAIN, confidence_score
from lsproto.results import prediction
from sync.project import ensure_project

pytestmark = pytest.mark.labelstudio

CLASSES = ["forest", "sea", "street"]
TASKS = 300
PASSES = 3


def rows_for(cfg, ids: list[int], version: str, shift: int) -> list[dict]:
    rows = []
    for i, task in enumerate(ids):
        conf = 0.4 + ((i + shift) % 50) / 100
        row = {"task": task, **prediction(cfg, CLASSES[i % 3], confidence_score(conf, 0.5), version)}
        rows.append({**row, "why": WHY_UNCERTAIN, "priority": ((i + shift) % 97) / 100})
    return rows


def test_next_waits_for_a_write_instead_of_failing_and_sleeping(label_studio):
    client = label_studio.client()
    project = ensure_project(client, "sqlite-locks", CLASSES, sampling="uncertainty")
    ids = label_studio.url_tasks(project.id, TASKS)
    cfg = parse_label_config(project.label_config)
    write_rows(client, project.id, rows_for(cfg, ids, "v0001", 0))
    client.set_model_version(project.id, "v0001")
    log = label_studio.server.log_path
    before = log.stat().st_size

    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(PASSES):
                rows = rows_for(cfg, ids, "v0001", n + 1)
                for start in range(0, len(rows), ROWS_PER_WRITE):
                    write_rows(client, project.id, rows[start : start + ROWS_PER_WRITE])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    answers = []
    url = f"{label_studio.url}/api/projects/{project.id}/next"
    while not done.is_set():
        answers.append(requests.get(url, headers=label_studio.headers, timeout=60).status_code)
    thread.join()
    assert not errors, errors
    assert len(answers) >= 10 and set(answers) == {200}, answers
    said = log.read_bytes()[before:].decode(errors="replace")
    assert said.count("database is locked") == 0, said[-3000:]
