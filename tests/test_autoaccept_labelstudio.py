"""Auto-accept in a real Label Studio with the real backend process: with auto-accept on, confident
tasks become annotations by the auto-accept user; none of them reaches training; the tabs "Needs
review", "Auto-accepted" and "Spot checks" list the right tasks; a rollback to a weaker version
(too few labels for any threshold) returns them to review. The tests build on each other in file
order (one project, on the session's shared backend)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import requests

import scenes
from lsfixture import poll
from lsproto.autoaccept import AUTO_EMAIL, SPOT_CHECK
from lsproto.notes import QUEUE, read_note
from lsproto.views import AUTO_ACCEPTED, NEEDS_REVIEW, SPOT_CHECKS
from sync.importer import import_images
from sync.project import connect_backend, ensure_project

pytestmark = pytest.mark.labelstudio

CLASSES = ["buildings", "forest", "sea"]
WAIT = 360.0  # a loaded 2-core machine trains Lite2 heads slowly; a wait, not a timing
W = SimpleNamespace(backend=None)


def wait_until(check, what: str, timeout: float = WAIT):
    return poll(check, what, timeout, 0.5, lambda: state_of_the_backend())


def state_of_the_backend() -> str:
    """What a failed wait shows: the backend's versions and jobs, and the log without its polling."""
    info = backend("/versions", project=W.project)
    lines = [line for line in W.backend.log_tail(400).splitlines() if '"GET /' not in line]
    return (
        f"\nversions: {json.dumps(info.get('details'), default=str)[:3000]}\njobs: {info.get('jobs')}"
        f"\nLS model_version: {get(f'/api/projects/{W.project}').get('model_version')}\n" + "\n".join(lines[-40:])
    )


def get(path: str, **params):
    r = requests.get(f"{W.ls.url}{path}", params=params, headers=W.ls.headers, timeout=60)
    r.raise_for_status()
    return r.json()


def backend(path: str, **params):
    r = requests.get(f"{W.backend.url}{path}", params=params, timeout=30)
    r.raise_for_status()
    return r.json()


def predictions() -> dict[int, dict]:
    data = get("/api/predictions/", project=W.project)
    return {p["task"]: p for p in (data.get("results", data) if isinstance(data, dict) else data)}


def tasks_of(view: str | None = None) -> dict[int, dict]:
    params = {"project": W.project, "page_size": 500, "fields": "all"}
    if view:
        params["view"] = W.views[view]
    return {t["id"]: t for t in get("/api/tasks/", **params)["tasks"]}


def auto_tasks() -> set[int]:
    def by_auto(ann):
        who = ann.get("completed_by")
        return (who.get("email") if isinstance(who, dict) else who) in (AUTO_EMAIL, W.auto_user)

    return {t for t, task in tasks_of().items() if any(by_auto(a) for a in task.get("annotations") or [])}


def import_labeled(tmp_path, name: str, per_class: int, skip: int) -> None:
    paths, labels = scenes.sample(per_class, seed=11, classes=CLASSES, skip=skip)
    tree = tmp_path / name
    for path, label in zip(paths, labels):
        (tree / label).mkdir(parents=True, exist_ok=True)
        (tree / label / path.name).symlink_to(path)
    import_images(W.client, W.project, [tree], labels_from_folders=True, wait=False, progress=False, log=lambda m: None)


def serving_after(n_train: int) -> dict | None:
    """The backend idle, serving a version trained on `n_train` labels whose refresh reached LS."""
    info = backend("/versions", project=W.project)
    idle = info["jobs"]["running"] is None and info["jobs"]["pending"] is None
    current = next((d for d in info["details"] if d["version"] == info["model_version"]), None)
    if not idle or current is None or current["n_train"] != n_train:
        return None
    if get(f"/api/projects/{W.project}")["model_version"] != info["model_version"]:
        return None
    auto = backend(f"/projects/{W.project}/auto-accept")
    return current if any(v["version"] == current["version"] for v in auto["versions"]) else None


@pytest.fixture(scope="module")
def world(label_studio, shared_data, shared_backend):
    W.__dict__.update(ls=label_studio, backend=shared_backend, client=label_studio.client(), auto_user=None)
    return W


def test_1_confident_tasks_become_auto_accepted_labels_that_never_reach_training(world, tmp_path):
    project = ensure_project(world.client, "auto-accept", CLASSES, sampling="uncertainty")
    connect_backend(world.client, project, world.backend.url)
    world.project = project.id
    import_labeled(tmp_path, "first", 4, skip=0)  # 12 labels: too few for any threshold
    wait_until(
        lambda: (
            backend("/versions", project=world.project)["model_version"] != "INITIAL"
            and backend("/versions", project=world.project)["jobs"]["running"] is None
        ),
        "first version",
    )
    r = requests.put(
        f"{world.backend.url}/projects/{world.project}/params",
        json={
            "auto_accept": 0.8,
            "spot_check": 0.1,
            # this test is about auto-accept: a version with 24 more labels serves even
            # when, on those 24, it is a few points behind by chance (promotion rule)
            "promotion_margin": 0.3,
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["effective"]["auto_accept"] == 0.8
    world.weak = wait_until(lambda: serving_after(12), "first version's auto-accept pass")["version"]

    new_paths, _ = scenes.sample(14, seed=12, classes=CLASSES, skip=30)
    imported = import_images(
        world.client, world.project, new_paths[:40], wait=True, timeout=WAIT, progress=False, log=lambda m: None
    )
    world.unlabeled = set(imported.task_ids)
    assert not auto_tasks()  # 12 labels cannot support a threshold: nothing accepted

    import_labeled(tmp_path, "second", 8, skip=4)  # 36 human labels in all
    strong = wait_until(lambda: serving_after(36), "version trained on the 36 human labels")
    world.strong = strong["version"]
    # 12 labels of each class: the head also learned from unlabeled tasks' cached embeddings
    details = backend("/versions", project=world.project)["details"]
    assert any(d["unlabeled"] for d in details), details
    summary = backend(f"/projects/{world.project}/auto-accept")
    world.auto_user = summary["auto_user"]
    accepted = auto_tasks()
    assert accepted and accepted <= world.unlabeled, summary
    assert summary["accepted"] == len(accepted) and summary["human_work_saved"]["tasks"] == len(accepted)
    row = next(v for v in summary["versions"] if v["version"] == world.strong)
    assert row["rule"]["threshold"] is not None and row["rule"]["lower_bound"] >= 0.8, row
    world.accepted = accepted

    # each auto-accepted label names the version that accepted it (an earlier one when the
    # serving version gives the same label) with its confidence, and the serving version agrees
    preds, versions = predictions(), backend("/versions", project=world.project)["versions"]
    listed = tasks_of()  # one listing for all (the backend is idle); not one per accepted task
    for task_id in accepted:
        item = listed[task_id]["annotations"][0]["result"][0]
        assert item["model_version"] in versions and 0 < item["score"] <= 1, item
        assert item["value"] == preds[task_id]["result"][0]["value"]
        assert preds[task_id]["result"][0]["score"] >= row["rule"]["threshold"]

    # the auto-accepted labels never train: a training now finds the annotations unchanged
    r = requests.post(f"{world.backend.url}/train", json={"project": world.project}, timeout=30)
    assert r.status_code == 200, r.text
    job = r.json()["job"]
    done = wait_until(
        lambda: next(
            (
                j
                for j in backend(f"/projects/{world.project}/jobs")["jobs"]
                if j["id"] == job and j["state"] in ("skipped", "done", "failed")
            ),
            None,
        ),
        "the training job",
    )
    assert done["state"] == "skipped" and "unchanged" in done["error"], done
    assert backend("/versions", project=world.project)["model_version"] == world.strong


def test_2_the_tabs_show_what_needs_a_person_and_what_was_accepted(world):
    views = {v["data"]["title"]: v["id"] for v in get("/api/dm/views/", project=world.project)}
    assert {NEEDS_REVIEW, AUTO_ACCEPTED, SPOT_CHECKS} <= set(views)
    world.views = views
    assert set(tasks_of(AUTO_ACCEPTED)) == world.accepted
    review = tasks_of(NEEDS_REVIEW)
    assert set(review) == world.unlabeled - world.accepted
    spots = set(tasks_of(SPOT_CHECKS))
    assert spots <= set(review)  # spot checks are left to people ...
    preds = predictions()
    for task_id in spots:  # ... marked, and served first
        assert SPOT_CHECK in preds[task_id]["result"][0]["meta"]["text"][0]
        assert float(read_note(preds[task_id]["result"], QUEUE)) == 0.0  # first in the queue
    page = requests.get(f"{world.backend.url}/metrics", timeout=30).text
    assert "auto-accept" in page and "human work saved" in page


def test_3_a_rollback_to_a_weaker_version_returns_the_labels_to_review(world):
    r = requests.post(
        f"{world.backend.url}/projects/{world.project}/rollback", json={"version": world.weak}, timeout=30
    )
    assert r.status_code == 200, r.text
    wait_until(lambda: not auto_tasks(), "auto-accepted labels removed after the rollback")
    assert set(tasks_of(NEEDS_REVIEW)) == world.unlabeled
    summary = wait_until(
        lambda: (lambda s: s if s["accepted"] == 0 else None)(backend(f"/projects/{world.project}/auto-accept")),
        "auto-accept summary after the rollback",
    )
    assert summary["serving"] == world.weak
    # deleting its own labels started no training: the rollback stands
    assert backend("/versions", project=world.project)["model_version"] == world.weak
