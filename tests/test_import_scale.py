"""`tasveer import` at scale, against a real Label Studio.

* Its wait for predictions asks Label Studio about the import's tasks only: in a project that
  already has many predicted tasks, no poll lists the project's predictions, and each poll request
  names only tasks of the import and gets back (and counts) no more tasks than it names: what
  grows with the project stays out of it (counted in tasks, not seconds). The new tasks'
  predictions are written the way the backend writes them (its import call), a while after the
  poll starts and out of upload order, so the poll sees them arrive.
* With --labels-from-folders each upload request's tasks are annotated while the next one uploads:
  the labels still follow their photos across requests."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs

import pytest
import requests

from lsproto.config import parse_label_config
from lsproto.results import choice_result
from sync.predictions import POLL_CHUNK, ensure_predictions, tasks_with_predictions
from sync.project import ensure_project

pytestmark = pytest.mark.labelstudio

CLASSES = ["buildings", "forest", "sea"]
OLD = 1500  # tasks the project has, each with a prediction
NEW = 150  # the import (more than POLL_CHUNK: a poll takes two requests)


def import_tasks(ls, pid: int, tasks: list[dict]) -> list[int]:
    r = requests.post(
        f"{ls.url}/api/projects/{pid}/import",
        params={"return_task_ids": "true"},
        json=tasks,
        headers=ls.headers,
        timeout=300,
    )
    r.raise_for_status()
    return r.json()["task_ids"]


def prediction(cfg, label: str) -> dict:
    return {"result": choice_result(cfg.from_name, cfg.to_name, label), "score": 0.9, "model_version": "scale-test"}


def write_predictions(ls, pid: int, cfg, task_ids: list[int], pause: float) -> None:
    """The newer half of the tasks' predictions after `pause` s, the older half `pause` s later (like
    the backend's write-back of two upload chunks, here out of upload order)."""
    half = len(task_ids) // 2
    for part in (task_ids[half:], task_ids[:half]):
        time.sleep(pause)
        rows = [{"task": t, **prediction(cfg, CLASSES[t % 3])} for t in part]
        r = requests.post(f"{ls.url}/api/projects/{pid}/import/predictions", json=rows, headers=ls.headers, timeout=120)
        r.raise_for_status()


def test_poll_asks_about_the_imports_tasks_only(label_studio):
    client = label_studio.client()
    project = ensure_project(client, "import-scale-poll", CLASSES)
    cfg = parse_label_config(project.label_config)
    image = "http://127.0.0.1:9/photo-{}.jpg"  # never fetched: no backend here
    old = import_tasks(
        label_studio,
        project.id,
        [{"data": {"image": image.format(i)}, "predictions": [prediction(cfg, CLASSES[i % 3])]} for i in range(OLD)],
    )
    new = import_tasks(label_studio, project.id, [{"data": {"image": image.format(f"new-{i}")}} for i in range(NEW)])
    assert len(old) == OLD and len(new) == NEW
    assert client.predicted_among(project.id, old[:50]) == set(old[:50])  # the filter sees imported predictions
    assert client.predicted_among(project.id, []) == set()  # (not every task of the project)

    polls: list[tuple[str, list[int], list[int], int]] = []  # (path, ids named, ids returned, count)

    def record(response):
        url = response.request.url
        if response.request.method != "GET" or not url.path.startswith(("/api/tasks", "/api/predictions")):
            return
        response.read()
        query = json.loads(parse_qs(url.query.decode()).get("query", ["{}"])[0])
        named = (query.get("selectedItems") or {}).get("included") or []
        body = response.json()
        rows = body.get("tasks", []) if isinstance(body, dict) else body
        total = body.get("total", len(rows)) if isinstance(body, dict) else len(rows)
        polls.append((url.path, named, [row.get("id", row.get("task")) for row in rows], total))

    client.http.event_hooks["response"].append(record)
    writer = threading.Thread(target=write_predictions, args=(label_studio, project.id, cfg, new, 1.5))
    writer.start()
    try:
        report = ensure_predictions(client, project.id, new, wait_backend=30, timeout=120, poll=0.2, progress=False)
    finally:
        writer.join()
        client.http.event_hooks["response"].remove(record)

    assert report.complete, f"missing {report.missing}: {report.errors}"
    assert not report.retrieved_for  # every prediction came from the writer, none through LS's action
    assert polls and all(path.startswith("/api/tasks") for path, *_ in polls), {p for p, *_ in polls}
    assert len(polls) > 3  # it polled while the predictions arrived
    for _, named, returned, total in polls:
        # named: tasks of the import only; counted and returned: among those only
        assert named and set(named) <= set(new) and len(named) <= POLL_CHUNK
        assert set(returned) <= set(named) and total <= len(named)
    assert tasks_with_predictions(client, project.id, new + old[:10]) == set(new + old[:10])


def test_labels_follow_their_photos_across_upload_chunks(label_studio, shared_data, tmp_path, monkeypatch):
    """Across many small upload requests every task gets its own photo's folder name."""
    import sync.upload
    from lsfixture import scene_tree
    from sync.importer import import_images

    monkeypatch.setattr(sync.upload, "CHUNK_SIZE", 4)
    client = label_studio.client()
    project = ensure_project(client, "import-scale-chunks", CLASSES)
    tree = scene_tree(shared_data, tmp_path / "imgs", 7)  # 21 photos: 6 requests, the last one short
    result = import_images(client, project.id, [tmp_path / "imgs"], True, wait=False, progress=False, log=lambda m: 0)
    assert len(result.task_ids) == len(result.annotation_ids) == len(tree)
    name_label = {path.name: label for path, label in tree.items()}
    for task in client.iter_tasks(project.id):
        [annotation] = task["annotations"]
        label = annotation["result"][0]["value"]["choices"][0]
        assert name_label[task["data"]["image"].rsplit("-", 1)[-1]] == label, task["data"]["image"]
