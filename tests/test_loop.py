"""The whole product loop, end to end: a real Label Studio (the session fixture), the real backend
as its own process (`python -m backend`), real photos, real training. No mocks.

    new project + backend  ->  import 128 photos (cold-start predictions)
    ->  24 corrections in LS  ->  a trained version is served  ->  LS retrieves better predictions
    ->  one correction changed  ->  a version on different data  ->  LS's "train" call makes a job

The tests build on each other in file order (one project, one backend for the module)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

import scenes
from lsfixture import backend_on, poll
from lsproto.config import parse_label_config
from lsproto.results import choice_result
from sync import upload
from sync.importer import import_images
from sync.predictions import retrieve_predictions
from sync.project import connect_backend, ensure_project, verify_webhook
from training.store import ModelStore

pytestmark = [
    pytest.mark.labelstudio,
]

N_IMAGES = 128
N_ANNOTATED = 24  # 4 per class
TRAIN_WAIT = 120.0


# -- helpers ----------------------------------------------------------------------------------------


def wait_until(check, timeout: float, what: str, interval: float = 0.25):
    """Poll `check()` until it returns something truthy (returned); fail after `timeout` s."""
    return poll(check, what, timeout, interval, LOOP.backend_log)


def predictions(ls, project: int) -> list[dict]:
    """Every prediction of the project (listing them does not make LS predict)."""
    r = requests.get(f"{ls.url}/api/predictions/", params={"project": project}, headers=ls.headers, timeout=60)
    r.raise_for_status()
    data = r.json()
    return data.get("results", data) if isinstance(data, dict) else data


def newest_by_task(preds: list[dict]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for p in sorted(preds, key=lambda p: p["id"]):
        out[p["task"]] = p
    return out


def label_of(pred: dict) -> str | None:
    result = pred.get("result") or []
    return result[0]["value"]["choices"][0] if result else None


def accuracy(preds: dict[int, dict], truth: dict[int, str]) -> float:
    return sum(label_of(preds[t]) == label for t, label in truth.items() if t in preds) / len(truth)


def backend_versions(backend, project: int) -> dict:
    r = requests.get(f"{backend.url}/versions", params={"project": project}, timeout=30)
    r.raise_for_status()
    return r.json()


def idle(info: dict) -> bool:
    return info["jobs"]["running"] is None and info["jobs"]["pending"] is None


def project_jobs(backend, project: int) -> list[dict]:
    r = requests.get(f"{backend.url}/projects/{project}/jobs", timeout=30)
    r.raise_for_status()
    return r.json()["jobs"]


def manifests(backend, project: int) -> dict[str, dict]:
    """The backend's version manifests, read from its model store on disk."""
    store = ModelStore(backend.data_dir / "projects" / str(project) / "models")
    return {m["version"]: m for m in store.versions()}


# -- the module's one world -------------------------------------------------------------------------


class Loop(SimpleNamespace):
    backend = None

    def backend_log(self) -> str:
        if self.backend is None:
            return ""
        return f"\n--- backend log tail ({self.backend.log_path}) ---\n{self.backend.log_tail(60)}"


LOOP = Loop()


@pytest.fixture(scope="module")
def loop(label_studio, shared_data, tmp_path_factory):
    # as `tasveer up` runs it: on Label Studio's disk, reading uploads from its media dir. A backend
    # of its own, not lsfixture's shared_backend: Label Studio's /api/ml/<id>/versions (test_2) asks
    # the backend's /versions without naming the project, answered only by a backend of one project
    with backend_on(label_studio, tmp_path_factory.mktemp("loop-backend")) as server:
        LOOP.__dict__.clear()
        LOOP.ls, LOOP.backend, LOOP.client = label_studio, server, label_studio.client()
        # 128 photos, as balanced as 128/6 allows (22 of two classes, 21 of four), seeded
        paths, labels = scenes.sample(22, seed=11)
        keep = [i for i in range(len(paths)) if not (labels[i] in scenes.CLASSES[2:] and i % 22 == 21)]
        LOOP.paths, LOOP.labels = [paths[i] for i in keep], [labels[i] for i in keep]
        assert len(LOOP.paths) == N_IMAGES
        yield LOOP


def need(loop, *names):
    missing = [n for n in names if not hasattr(loop, n)]
    if missing:
        pytest.fail(f"an earlier step of the loop failed (no {', '.join(missing)})", pytrace=False)


# -- the loop, in order ------------------------------------------------------------------------------


def test_1_new_project_import_gets_cold_start_predictions(loop):
    ls, client = loop.ls, loop.client
    project = ensure_project(client, "product-loop", scenes.CLASSES)
    assert list(parse_label_config(project.label_config).labels) == scenes.CLASSES
    ml = connect_backend(client, project, loop.backend.url)
    verify_webhook(client, project.id, loop.backend.url)
    detail = requests.get(f"{ls.url}/api/projects/{project.id}", headers=ls.headers, timeout=30).json()
    assert detail["start_training_on_annotation_update"] is True
    assert ml.model_version == "INITIAL"

    result = import_images(client, project.id, loop.paths, wait=True, timeout=180, progress=False, log=lambda m: None)
    assert len(result.task_ids) == N_IMAGES and not result.skipped
    report = result.predictions
    assert report.complete, f"missing {report.missing}: {report.errors}{loop.backend_log()}"
    truth = dict(zip(result.task_ids, loop.labels))  # import keeps the order of the files

    # the backend's own write-back of each upload request (TASKS_CREATED) writes the cold start's
    # order; under load the import may have had Label Studio predict first (its fallback, through
    # /predict: every score alike), then the write-back replaces those
    def written_back():
        jobs = requests.get(f"{loop.backend.url}/projects/{project.id}/jobs", timeout=30).json()["background"]
        writes = [r for r in jobs if r.get("tasks")]
        return sum(r["tasks"] for r in writes if r["state"] == "done") == N_IMAGES and writes

    wait_until(written_back, 180, "the backend's write-back of the new tasks")
    preds = newest_by_task(predictions(ls, project.id))
    assert set(preds) == set(truth)
    for pred in preds.values():
        assert label_of(pred) in scenes.CLASSES, pred
        assert 0.0 <= pred["score"] <= 1.0, pred
        assert pred["model_version"] == "INITIAL", pred
    # cold start: LS serves the medoids of the new photos first (the scores' tie-break orders them).
    # Each upload request's photos are ordered among themselves (coldstart.py): the first medoid of
    # each request ties on the lowest score, and LS serves any of those
    detail = requests.get(f"{ls.url}/api/projects/{project.id}", headers=ls.headers, timeout=30).json()
    background = requests.get(f"{loop.backend.url}/projects/{project.id}/jobs", timeout=30).json()["background"]
    assert detail["model_version"] == "INITIAL", f"{background}{loop.backend_log()}"
    first = requests.get(f"{ls.url}/api/projects/{project.id}/next/", headers=ls.headers, timeout=30).json()
    scores: dict[int, float] = {}  # LS serves by the lowest score of any of a task's predictions
    for p in predictions(ls, project.id):
        scores[p["task"]] = min(p["score"], scores.get(p["task"], 1.0))
    lowest = min(scores.values())
    firsts = sorted(t for t, score in scores.items() if score == lowest)
    assert first["id"] in firsts, (first["id"], firsts, preds.get(first["id"]))
    assert len(firsts) <= -(-N_IMAGES // upload.CHUNK_SIZE), firsts  # one per request at most
    assert all(p.get("cluster") is None for p in predictions(ls, project.id))  # no cluster: served by score alone
    loop.initial_accuracy = accuracy(preds, truth)
    loop.project, loop.ml_id, loop.truth = project, ml.id, truth


def test_2_corrections_train_a_version_that_predicts_better(loop):
    need(loop, "truth")
    ls, backend, project = loop.ls, loop.backend, loop.project
    by_class = {c: [t for t, label in loop.truth.items() if label == c] for c in scenes.CLASSES}
    picked = [by_class[c][i] for i in range(N_ANNOTATED // len(scenes.CLASSES)) for c in scenes.CLASSES]
    loop.annotations = {}
    for task_id in picked:  # like the UI's submit: LS sends ANNOTATION_CREATED and START_TRAINING
        r = requests.post(
            f"{ls.url}/api/tasks/{task_id}/annotations/",
            headers=ls.headers,
            timeout=60,
            json={"result": choice_result("choice", "image", loop.truth[task_id]), "project": project.id},
        )
        assert r.status_code == 201, r.text
        loop.annotations[task_id] = r.json()["id"]

    # Label Studio may deliver the last webhooks after those requests have returned (on a loaded
    # machine, seen): wait until the backend is idle AND its serving version has every annotation
    def served_all():
        v = backend_versions(backend, project.id)
        if v["model_version"] == "INITIAL" or not idle(v):
            return None
        return v if manifests(backend, project.id)[v["model_version"]]["n_train"] == N_ANNOTATED else None

    info = wait_until(served_all, TRAIN_WAIT, "a served version trained on every annotation")
    vid = info["model_version"]
    assert vid in info["versions"]
    mf = manifests(backend, project.id)[vid]
    assert mf["n_train"] == N_ANNOTATED and sorted(mf["extra"]["tasks"]) == sorted(picked), mf["extra"]
    r = requests.get(f"{ls.url}/api/ml/{loop.ml_id}/versions", headers=ls.headers, timeout=30)
    assert r.status_code == 200 and vid in r.json()["versions"], r.text
    setup = requests.post(
        f"{backend.url}/setup", timeout=30, json={"project": str(project.id), "schema": project.label_config}
    )
    assert setup.json() == {"model_version": vid}

    # LS's Data Manager "Retrieve Predictions" for all 128 tasks (LS calls /predict)
    task_ids = sorted(loop.truth)
    for i in range(0, len(task_ids), 50):
        retrieve_predictions(loop.client, project.id, task_ids[i : i + 50], timeout=120)
    preds = newest_by_task(predictions(ls, project.id))
    stale = {t: p["model_version"] for t, p in preds.items() if p["model_version"] != vid}
    assert not stale and set(preds) == set(task_ids), f"not of {vid}: {stale}{loop.backend_log()}"
    for pred in preds.values():
        assert label_of(pred) in scenes.CLASSES and 0.0 <= pred["score"] <= 1.0, pred
    trained = accuracy(preds, loop.truth)
    print(f"accuracy on {len(task_ids)} tasks: INITIAL {loop.initial_accuracy:.3f} -> {vid} {trained:.3f}")
    assert trained > loop.initial_accuracy and trained >= 0.6, (loop.initial_accuracy, trained)
    loop.vid = vid


def test_3_a_correction_changes_the_training_data_and_train_makes_a_job(loop):
    need(loop, "vid")
    ls, backend, project = loop.ls, loop.backend, loop.project
    before = manifests(backend, project.id)[loop.vid]
    task_id = sorted(loop.annotations)[0]
    wrong = next(c for c in scenes.CLASSES if c != loop.truth[task_id])
    n_jobs = len(project_jobs(backend, project.id))
    r = requests.patch(
        f"{ls.url}/api/annotations/{loop.annotations[task_id]}/",
        headers=ls.headers,
        timeout=60,
        json={"result": choice_result("choice", "image", wrong)},
    )
    assert r.status_code == 200, r.text  # ANNOTATION_UPDATED + START_TRAINING

    info = wait_until(
        lambda: (lambda v: v if v["model_version"] != loop.vid and idle(v) else None)(
            backend_versions(backend, project.id)
        ),
        TRAIN_WAIT,
        "version after the correction",
    )
    new_vid = info["model_version"]
    after = manifests(backend, project.id)[new_vid]
    assert after["parent"] == loop.vid and after["n_train"] == N_ANNOTATED
    assert after["data_fingerprint"] != before["data_fingerprint"]
    jobs = project_jobs(backend, project.id)
    assert len(jobs) > n_jobs and any(j["result"] and j["result"].get("version") == new_vid for j in jobs)

    # LS's "train" button: POST /api/ml/<id>/train -> START_TRAINING to the backend's /webhook
    n_jobs = len(jobs)
    r = requests.post(f"{ls.url}/api/ml/{loop.ml_id}/train", headers=ls.headers, timeout=120)
    assert r.status_code == 200, r.text
    ml = requests.get(f"{ls.url}/api/ml/{loop.ml_id}", headers=ls.headers, timeout=30).json()
    assert ml["state"] != "ER", ml
    jobs = wait_until(
        lambda: (lambda js: js if len(js) > n_jobs and js[-1]["state"] in ("done", "skipped", "failed") else None)(
            project_jobs(backend, project.id)
        ),
        TRAIN_WAIT,
        "training job from train",
    )
    job = jobs[-1]
    assert job["reason"] == "START_TRAINING", job
    # nothing changed since new_vid: the backend says so and keeps serving it
    assert job["state"] == "skipped" and "unchanged" in job["error"], f"{job}{loop.backend_log()}"
    assert backend_versions(backend, project.id)["model_version"] == new_vid
