"""Active learning in a real Label Studio with the real backend process: after every publish the
project's tasks carry predictions of the serving version (score = the calibrated confidence) with
clusters and a queue key "lowest = most useful" (lsproto/notes.py); the project's model_version
follows the serving version (rollback too); the "Needs review" tab, and "Label tasks as displayed"
from it, serve the lowest queue key first, "Label All Tasks" (uncertainty sampling) the least
confident; injected wrong labels show up in the "Possible label errors" view; no prediction of
another version is left behind.

The tests build on each other in file order (one project, on the session's shared backend)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

import scenes
from lsfixture import poll
from lsproto.notes import QUEUE, QUEUE_COLUMN, read_note
from lsproto.results import choice_result
from lsproto.views import LABEL_ERRORS, MOST_USEFUL, SUSPECT_BELOW
from sync.importer import import_images
from sync.project import connect_backend, ensure_project
from sync.views import ensure_views

pytestmark = pytest.mark.labelstudio

CLASSES = ["buildings", "forest", "sea"]
WAIT = 180.0


def wait_until(check, what: str, timeout: float = WAIT, interval: float = 0.5):
    return poll(check, what, timeout, interval, lambda: "\n" + WORLD.backend.log_tail(60))


def get(path: str, **params):
    r = requests.get(f"{WORLD.ls.url}{path}", params=params, headers=WORLD.ls.headers, timeout=60)
    r.raise_for_status()
    return r.json()


def project_predictions() -> list[dict]:
    data = get("/api/predictions/", project=WORLD.project)
    return data.get("results", data) if isinstance(data, dict) else data


def queue_key(pred: dict) -> float:
    """A prediction's place in the queue (its QUEUE note), the priority of the project's strategy."""
    return float(read_note(pred["result"], QUEUE))


def served_as_displayed(view_id: int) -> dict:
    """The task "Label tasks as displayed" opens in a tab: the data manager's next_task action with
    the tab's filters and ordering in the body, as the Label Studio frontend sends them."""
    data = get(f"/api/dm/views/{view_id}/")["data"]
    r = requests.post(
        f"{WORLD.ls.url}/api/dm/actions",
        params={"id": "next_task", "project": WORLD.project},
        json={"filters": data["filters"], "ordering": data["ordering"]},
        headers=WORLD.ls.headers,
        timeout=60,
    )
    r.raise_for_status()
    return r.json()


def backend_state() -> dict:
    r = requests.get(f"{WORLD.backend.url}/versions", params={"project": WORLD.project}, timeout=30)
    r.raise_for_status()
    info = r.json()
    info["idle"] = info["jobs"]["running"] is None and info["jobs"]["pending"] is None
    return info


def settled(vid_not: str | None = None):
    """The backend idle with a trained version (other than `vid_not`) whose predictions reached LS."""
    info = backend_state()
    if not info["idle"] or info["model_version"] in ("INITIAL", vid_not):
        return None
    if get(f"/api/projects/{WORLD.project}")["model_version"] != info["model_version"]:
        return None
    return info


WORLD = SimpleNamespace(backend=None)


@pytest.fixture(scope="module")
def world(label_studio, shared_data, shared_backend):
    WORLD.__dict__.update(ls=label_studio, backend=shared_backend, client=label_studio.client())
    return WORLD


def test_1_labels_train_a_version_whose_predictions_drive_label_studio(world, tmp_path):
    client = world.client
    project = ensure_project(client, "active-learning", CLASSES, sampling="uncertainty")
    assert str(getattr(project.sampling, "value", project.sampling)) == "Uncertainty sampling"
    connect_backend(client, project, world.backend.url)
    world.views = ensure_views(client, project.id)
    assert ensure_views(client, project.id) == world.views  # idempotent: no second copy
    world.project = project.id

    # 30 labeled photos, 3 of them deliberately filed under a wrong class
    paths, labels = scenes.sample(10, seed=5, classes=CLASSES)
    wrong = {0: "sea", 10: "buildings", 20: "forest"}  # a building, a forest and a sea photo mislabeled
    tree = tmp_path / "labeled"
    for i, (path, label) in enumerate(zip(paths, labels)):
        folder = tree / wrong.get(i, label)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / path.name).symlink_to(path)
    result = import_images(
        client, project.id, [tree], labels_from_folders=True, wait=False, progress=False, log=lambda m: None
    )
    assert len(result.annotation_ids) == 30
    wrong_names = {paths[i].name for i in wrong}
    tasks = get("/api/tasks/", project=project.id, page_size=100)["tasks"]  # uploads keep "<prefix>-<name>"
    world.injected = {t["id"] for t in tasks if t["data"]["image"].split("-", 1)[-1] in wrong_names}
    assert len(world.injected) == 3
    info = wait_until(settled, "trained version in Label Studio")
    world.vid = info["model_version"]

    # 40 unlabeled photos: predicted by the serving version on TASKS_CREATED
    new_paths, _ = scenes.sample(14, seed=6, classes=CLASSES, skip=20)
    imported = import_images(
        client, project.id, new_paths[:40], wait=True, timeout=WAIT, progress=False, log=lambda m: None
    )
    assert imported.predictions.complete, imported.predictions.errors
    world.unlabeled = set(imported.task_ids)

    # the predictions arrive with their notes inside (one import request per batch, no PATCH)
    preds = wait_until(
        lambda: (
            lambda ps: ps if set(ps) == world.unlabeled and all(read_note(p["result"]) for p in ps.values()) else None
        )({p["task"]: p for p in project_predictions() if p["task"] in world.unlabeled}),
        "predictions with notes",
        60,
    )
    for p in preds.values():
        assert p["model_version"] == world.vid, p
        confidence = p["result"][0]["score"]
        # score = the calibrated confidence of the label (less a tie-break far below the printed digits)
        assert 0.0 <= p["score"] <= confidence + 1e-6 <= 1.0 + 1e-6, p
        assert abs(p["score"] - confidence) < 5e-5, p
        # queue key = margin (default strategy's priority): top-1 minus top-2, never above the top-1 confidence
        assert 0.0 <= queue_key(p) <= confidence + 1e-6, p
        # no cluster: Label Studio's sampling would serve the least-solved cluster before the lowest score
        assert p.get("cluster") is None, p


def test_2_the_needs_review_tab_serves_the_lowest_queue_key_first(world):
    preds = [p for p in project_predictions() if p["task"] in world.unlabeled]
    lowest = min(preds, key=queue_key)  # the bench's ordering: the strategy's priority
    # the queue keys reach the tasks' data (the field the tab orders by) after the predictions
    wait_until(
        lambda: all(
            QUEUE_COLUMN in t["data"]
            for t in get("/api/tasks/", project=world.project, page_size=100)["tasks"]
            if t["id"] in world.unlabeled
        ),
        "queue keys in the task data",
        60,
    )
    # "Label All Tasks": Label Studio's uncertainty sampling, the lowest score (the least confident)
    least_confident = min(preds, key=lambda p: p["score"])
    served_all = get(f"/api/projects/{world.project}/next/")
    assert served_all["id"] == least_confident["task"], (served_all["id"], least_confident)
    # "Label tasks as displayed" in "Needs review": the lowest queue key
    served = served_as_displayed(world.views[MOST_USEFUL])
    assert served["id"] == lowest["task"], (served["id"], lowest)
    # what the view "Needs review" lists: unlabeled tasks, lowest queue key first
    tasks = get("/api/tasks/", view=world.views[MOST_USEFUL], project=world.project, page_size=100)["tasks"]
    assert {t["id"] for t in tasks} == world.unlabeled
    assert tasks[0]["id"] == lowest["task"]


def test_3_injected_wrong_labels_are_in_the_label_errors_view(world):
    tasks = get("/api/tasks/", view=world.views[LABEL_ERRORS], project=world.project, page_size=100)["tasks"]
    flagged = [t["id"] for t in tasks]
    assert flagged, "no task in the label-errors view"
    found = world.injected & set(flagged)
    assert len(found) >= 2, (world.injected, flagged)
    assert set(flagged[: len(world.injected) + 2]) & world.injected  # the injected ones rank near the top
    scores = {
        p["task"]: queue_key(p)
        for p in project_predictions()
        if p["model_version"] == world.vid and read_note(p["result"], QUEUE) is not None
    }
    assert all(scores[t] < SUSPECT_BELOW for t in flagged)


def test_4_a_correction_publishes_a_version_and_rollback_moves_label_studio_back(world):
    task = min(world.unlabeled)
    r = requests.post(
        f"{world.ls.url}/api/tasks/{task}/annotations/",
        headers=world.ls.headers,
        timeout=60,
        json={"result": choice_result("choice", "image", "forest"), "project": world.project},
    )
    assert r.status_code == 201, r.text
    info = wait_until(lambda: settled(vid_not=world.vid), "version after the correction")
    new = info["model_version"]
    # the correction's cross-validation refitted one fold head and kept the other four
    # (training/foldheads.py): what a version's metrics come from is said with them
    detail = next(d for d in info["details"] if d["version"] == new)
    assert detail["metrics_source"] == "cross-validation", detail
    assert "fold heads kept across trainings: 1 refitted" in detail["metrics_note"], detail
    # no old version piles up: it stays only beside the new one on the tasks the correction's person
    # may be served next (a submit from their open labeling view names its prediction)
    kept = set(info["kept_open"])
    assert kept and task not in kept, kept
    assert set(get(f"/api/projects/{world.project}/model-versions/")) <= {new, world.vid}
    assert {p["task"] for p in project_predictions() if p["model_version"] != new} <= kept

    r = requests.post(f"{world.backend.url}/projects/{world.project}/rollback", json={"version": world.vid}, timeout=30)
    assert r.status_code == 200, r.text
    wait_until(
        lambda: (
            get(f"/api/projects/{world.project}")["model_version"] == world.vid
            and list(get(f"/api/projects/{world.project}/model-versions/")) == [world.vid]
        ),
        "Label Studio back on the rolled-back version",
    )
    preds = [p for p in project_predictions() if p["task"] in world.unlabeled - {task}]
    assert preds and all(p["model_version"] == world.vid for p in preds)
