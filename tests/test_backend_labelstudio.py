"""The backend against a REAL Label Studio 1.23.2 (the session `label_studio` fixture): connection
and /setup, webhooks from LS, background training on real annotations, predictions written back,
personal access tokens, deletion, failure and restart. A few dozen real images, head mode.

The tests in this module build on each other in file order (one project, one backend)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from backend.settings import Settings
from lsproto.notes import without_notes
from test_backend_helpers import (
    CLASSES,
    CONFIG,
    BackendThread,
    free_port,
    post_json,
    scene_files,
    wait_for,
)

pytestmark = pytest.mark.labelstudio


# -- Label Studio helpers ----------------------------------------------------------------------------


def create_project(ls, title: str) -> int:
    r = requests.post(
        f"{ls.url}/api/projects", json={"title": title, "label_config": CONFIG}, headers=ls.headers, timeout=30
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def upload(ls, project: int, files: list[tuple[str, bytes]]) -> list[dict]:
    """Import files (one form field each: LS keeps one file per field name); returns new tasks."""
    before = {t["id"] for t in list_tasks(ls, project)}
    r = requests.post(
        f"{ls.url}/api/projects/{project}/import",
        files=[(f"file{i}", (name, data, "image/jpeg")) for i, (name, data) in enumerate(files)],
        headers=ls.headers,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    assert r.json()["task_count"] == len(files), r.text
    return [t for t in list_tasks(ls, project) if t["id"] not in before]


def list_tasks(ls, project: int) -> list[dict]:
    r = requests.get(
        f"{ls.url}/api/tasks",
        params={"project": project, "fields": "all", "page_size": 1000},
        headers=ls.headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["tasks"]


def annotate(ls, task_id: int, label: str) -> int:
    r = requests.post(
        f"{ls.url}/api/tasks/{task_id}/annotations",
        json={
            "result": [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]
        },
        headers=ls.headers,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def project_uid(ls, project: int) -> str:
    from datetime import datetime

    r = requests.get(f"{ls.url}/api/projects/{project}", headers=ls.headers, timeout=30)
    created = datetime.fromisoformat(r.json()["created_at"].replace("Z", "+00:00"))
    return f"{project}.{int(created.timestamp())}"


def connect(ls, project: int, url: str) -> dict:
    r = requests.post(
        f"{ls.url}/api/ml", json={"url": url, "project": project, "title": "tasveer"}, headers=ls.headers, timeout=60
    )
    assert r.status_code == 201, r.text
    return r.json()


def train_jobs(backend, project: int):
    return backend.service.jobs.jobs(str(project))


def personal_access_token(ls) -> str:
    """Create a PAT for the fixture user (legacy-token auth, else a logged-in session)."""
    r = requests.post(f"{ls.url}/api/token/", headers=ls.headers, timeout=30)
    if r.status_code == 201:
        return r.json()["token"]
    s = requests.Session()
    s.get(f"{ls.url}/user/login", timeout=30)
    r = s.post(
        f"{ls.url}/user/login",
        timeout=30,
        data={"email": ls.username, "password": ls.password, "csrfmiddlewaretoken": s.cookies.get("csrftoken")},
        headers={"Referer": f"{ls.url}/user/login"},
    )
    assert r.status_code == 200, r.status_code
    r = s.post(
        f"{ls.url}/api/token/", timeout=30, headers={"X-CSRFToken": s.cookies.get("csrftoken", ""), "Referer": ls.url}
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


# -- fixtures ----------------------------------------------------------------------------------------


class World:
    """What the ordered tests share: the LS project, its tasks, the backend (replaced on restart)."""


@pytest.fixture(scope="module")
def world(label_studio, shared_data, tmp_path_factory):
    w = World()
    w.ls = label_studio
    w.project = create_project(label_studio, "backend-e2e")
    pairs = scene_files(5)  # 30 images, 5 per class
    tasks = upload(label_studio, w.project, [(p.name, p.read_bytes()) for _, p in pairs])
    by_name = {p.name: label for label, p in pairs}
    # LS stores the upload as "<8 hex>-<original name>"
    w.tasks = sorted((t["id"], by_name[t["data"]["image"].rsplit("/", 1)[1].split("-", 1)[1]]) for t in tasks)
    w.data_dir = tmp_path_factory.mktemp("backend-e2e")
    w.backend = BackendThread(Settings(data_dir=w.data_dir)).start()
    w.ml = connect(label_studio, w.project, w.backend.url)
    w.annotations = {}  # task id -> annotation id
    try:
        yield w
    finally:
        w.backend.stop()


# -- tests, in order -----------------------------------------------------------------------------------


def test_connecting_in_label_studio_sets_up_the_project(world):
    ls = world.ls
    state = world.backend.service.projects.states.load(str(world.project))
    assert state is not None, "Label Studio did not call /setup"
    assert state.hostname == ls.url and state.token == ls.token and state.label_config == CONFIG
    assert state.created == project_uid(ls, world.project).split(".")[1]
    r = requests.get(f"{ls.url}/api/ml/{world.ml['id']}", headers=ls.headers, timeout=30)
    assert r.json()["state"] == "CO", r.json()  # connected
    assert r.json()["model_version"] == "INITIAL"
    hooks = requests.get(f"{ls.url}/api/webhooks", params={"project": world.project}, headers=ls.headers, timeout=30)
    assert any(h["url"] == world.backend.url + "/webhook" for h in hooks.json())


def test_annotation_burst_trains_in_background_and_coalesces(world):
    ls, backend = world.ls, world.backend
    picked = []
    for round_ in range(2):  # 2 per class, classes interleaved
        picked += [[tid for tid, lab in world.tasks if lab == label][round_] for label in CLASSES]
    labels = dict(world.tasks)
    log_start = ls.server.log_path.stat().st_size if ls.server.log_path.exists() else 0
    # a burst: 4 annotators at once; LS sends ANNOTATION_CREATED for each
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(lambda tid: annotate(ls, tid, labels[tid]), picked))
    burst_end = time.time()
    world.annotations.update(zip(picked, ids))
    last = max(ids)
    # a webhook is answered at once, whatever runs in the background
    started = time.monotonic()
    r = post_json(f"{backend.url}/webhook", {"action": "START_TRAINING", "project": {"id": world.project}})
    latency = time.monotonic() - started
    assert r.status_code == 200 and r.json()["status"] == "scheduled"
    assert latency < 0.5, latency
    assert backend.service.wait_idle(str(world.project), timeout=180)

    jobs = train_jobs(backend, world.project)
    assert sum(j.requests for j in jobs) == len(picked) + 1  # every webhook arrived and was counted
    # the first training started with the first webhook, so it ran while LS delivered the others
    # (synchronously, 1 s timeout each); Label Studio logged no webhook failure
    assert jobs[0].started_at < burst_end
    with open(ls.server.log_path, "rb") as fh:
        fh.seek(log_start)
        new_log = fh.read().decode(errors="replace").lower()
    assert "timed out" not in new_log and "traceback" not in new_log, new_log[-2000:]
    # coalesced: fewer trainings than webhooks, some job covered several webhooks
    assert len(jobs) < len(picked) + 1 and max(j.requests for j in jobs) > 1, [j.to_dict() for j in jobs]
    for before, after in zip(jobs, jobs[1:]):  # never two trainings of one project at once
        assert after.started_at >= before.finished_at
    # the last job trained, or found the data already trained on by the one before it (a pending
    # job can start after a running one that listed the same annotations): nothing failed
    assert jobs[-1].state == "done" or (jobs[-1].state == "skipped" and "unchanged" in jobs[-1].error), jobs[
        -1
    ].to_dict()
    assert all(j.state in ("done", "skipped") for j in jobs), [j.to_dict() for j in jobs]
    done = [j for j in jobs if j.state == "done"][-1].result
    vid = done["version"]
    # where the training's time went, step by step (bench/scale.py reports their medians); the
    # refresh ran beside the next training (backend/writeback/refreshlane.py) and reported into it
    assert set(done["seconds"]) == {"read", "fit", "compare", "publish"}, done["seconds"]
    assert 0 <= done["refresh"]["seconds_to_head"] <= done["refresh"]["seconds"], done["refresh"]
    manifest = backend.service.serving.store(str(world.project)).manifest(vid)
    assert sorted(manifest["extra"]["tasks"]) == sorted(picked)
    assert last in manifest["extra"]["annotations"]  # the newest annotation is in
    assert manifest["n_train"] == len(picked)
    r = requests.get(f"{backend.url}/versions", json={"project": project_uid(ls, world.project)}, timeout=30)
    assert r.json()["model_version"] == vid and vid in r.json()["versions"]
    world.vid = vid


def test_label_studio_retrieves_predictions(world):
    ls = world.ls
    r = requests.post(
        f"{ls.url}/api/dm/actions",
        params={"id": "retrieve_tasks_predictions", "project": world.project},
        json={"selectedItems": {"all": True, "excluded": []}},
        headers=ls.headers,
        timeout=120,
    )
    assert r.status_code == 200, r.text
    tasks = list_tasks(ls, world.project)
    labels = dict(world.tasks)
    correct = 0
    for task in tasks:
        preds = [p for p in task["predictions"] if p["model_version"] == world.vid]
        assert len(preds) == 1, (task["id"], task["predictions"])
        (item,) = without_notes(preds[0]["result"])  # besides the task list's note (lsproto/notes.py)
        assert item["from_name"] == "choice" and item["to_name"] == "image" and item["type"] == "choices"
        assert item["value"]["choices"][0] in CLASSES and 0 < preds[0]["score"] <= 1
        correct += item["value"]["choices"][0] == labels[task["id"]]
    assert correct > len(tasks) / len(CLASSES)  # better than chance on 30 real photos
    r = requests.get(f"{ls.url}/api/ml/{world.ml['id']}/versions", headers=ls.headers, timeout=30)
    assert r.status_code == 200 and world.vid in r.json()["versions"], r.text


def test_corrupt_task_data_is_a_per_task_error(world):
    ls, backend = world.ls, world.backend
    good = scene_files(1, offset=10)[0][1]
    new = upload(
        ls, world.project, [("broken.jpg", b"\xff\xd8\xff\xe0 definitely not a photo"), (good.name, good.read_bytes())]
    )
    wait_for(
        lambda: not backend.service.writer.records() or backend.service.writer.records()[-1].get("finished_at"),
        timeout=60,
        what="TASKS_CREATED predictions",
    )
    new = sorted(new, key=lambda t: t["id"])
    r = post_json(
        f"{backend.url}/predict", {"tasks": new, "project": project_uid(ls, world.project), "label_config": CONFIG}
    )
    assert r.status_code == 200
    results = {t["id"]: res for t, res in zip(new, r.json()["results"])}
    broken = next(t["id"] for t in new if t["data"]["image"].endswith("broken.jpg"))
    fine = next(t["id"] for t in new if t["id"] != broken)
    assert results[broken]["result"] == [] and f"task {broken}" in results[broken]["error"]
    assert results[fine]["result"][0]["value"]["choices"][0] in CLASSES and "error" not in results[fine]
    world.tasks_extra = [broken, fine]


def test_new_tasks_get_predictions_without_a_click(world):
    ls, backend = world.ls, world.backend
    files = scene_files(1, offset=12, classes=["forest", "sea"])

    def writes():  # the new tasks' writes (the collection's update follows each: not counted)
        return [r for r in backend.service.writer.records() if "tasks" in r]

    before = len(writes())
    new = upload(ls, world.project, [(p.name, p.read_bytes()) for _, p in files])  # LS sends TASKS_CREATED
    wait_for(
        lambda: len(writes()) > before and writes()[-1].get("finished_at"),
        timeout=60,
        what="background predictions of TASKS_CREATED",
    )
    record = writes()[-1]
    assert record["state"] == "done" and record["written"] == 2, record
    tasks = {t["id"]: t for t in list_tasks(ls, world.project)}
    for t in new:
        preds = tasks[t["id"]]["predictions"]
        assert [p["model_version"] for p in preds] == [world.vid], preds
        assert preds[0]["result"][0]["value"]["choices"][0] in CLASSES


def test_deleted_annotation_leaves_the_next_training(world):
    ls, backend = world.ls, world.backend
    victim = sorted(world.annotations)[0]
    n_jobs = len(train_jobs(backend, world.project))
    r = requests.delete(f"{ls.url}/api/annotations/{world.annotations[victim]}", headers=ls.headers, timeout=30)
    assert r.status_code == 204, r.text  # LS sends ANNOTATIONS_DELETED
    wait_for(lambda: len(train_jobs(backend, world.project)) > n_jobs, timeout=30, what="a training job")
    assert backend.service.wait_idle(str(world.project), timeout=180)
    job = train_jobs(backend, world.project)[-1]
    assert job.reason == "ANNOTATIONS_DELETED" and job.state == "done", job.to_dict()
    manifest = backend.service.serving.store(str(world.project)).manifest(job.result["version"])
    assert victim not in manifest["extra"]["tasks"]
    assert manifest["n_train"] == len(world.annotations) - 1
    del world.annotations[victim]
    world.vid = job.result["version"]


def test_failed_training_keeps_the_previous_version_serving(world):
    ls, backend = world.ls, world.backend
    uid = project_uid(ls, world.project)
    dead = f"http://127.0.0.1:{free_port()}"  # Label Studio "moved": the job cannot list annotations
    assert (
        post_json(
            f"{backend.url}/setup", {"project": uid, "schema": CONFIG, "hostname": dead, "access_token": ls.token}
        ).status_code
        == 200
    )
    r = post_json(f"{backend.url}/webhook", {"action": "START_TRAINING", "project": {"id": world.project}})
    assert r.json()["status"] == "scheduled"
    assert backend.service.wait_idle(str(world.project), timeout=60)
    job = train_jobs(backend, world.project)[-1]
    assert job.state == "failed" and dead.split("//")[1] in job.error, job.to_dict()
    status = requests.get(f"{backend.url}/projects/{world.project}/jobs", timeout=30).json()
    assert status["jobs"][-1]["state"] == "failed" and status["model_version"] == world.vid
    # Label Studio's next /setup restores the connection; the old version still serves
    r = post_json(
        f"{backend.url}/setup", {"project": uid, "schema": CONFIG, "hostname": ls.url, "access_token": ls.token}
    )
    assert r.json() == {"model_version": world.vid}
    task = next(t for t in list_tasks(ls, world.project) if t["id"] == world.tasks[0][0])
    r = post_json(f"{backend.url}/predict", {"tasks": [task], "project": uid, "label_config": CONFIG})
    assert r.json()["results"][0]["model_version"] == world.vid


def test_restarted_backend_serves_newest_version_without_retraining(world):
    ls = world.ls
    world.backend.stop()
    world.backend = backend = BackendThread(Settings(data_dir=world.data_dir)).start()
    r = requests.patch(
        f"{ls.url}/api/ml/{world.ml['id']}",
        json={"url": backend.url, "project": world.project},
        headers=ls.headers,
        timeout=60,
    )
    assert r.status_code == 200, r.text  # LS re-runs /health and /setup against the new address
    assert r.json()["model_version"] == world.vid
    tasks = [t for t in list_tasks(ls, world.project) if t["id"] in dict(world.tasks)][:6]
    r = post_json(
        f"{backend.url}/predict", {"tasks": tasks, "project": project_uid(ls, world.project), "label_config": CONFIG}
    )
    assert [res["model_version"] for res in r.json()["results"]] == [world.vid] * 6
    assert backend.service.jobs.jobs() == []  # nothing retrained
    assert backend.service.fetcher.downloads == 0  # images came from the disk cache


def test_personal_access_token_is_exchanged_and_refreshed(label_studio, shared_data, tmp_path):
    ls = label_studio
    pat = personal_access_token(ls)
    assert pat.count(".") == 2
    project = create_project(ls, "backend-pat")
    pairs = scene_files(2, offset=20, classes=["forest", "sea", "street"])
    tasks = upload(ls, project, [(p.name, p.read_bytes()) for _, p in pairs])
    by_name = {p.name: label for label, p in pairs}
    labelled = sorted(tasks, key=lambda t: t["id"])
    for t in labelled[:-1]:
        annotate(ls, t["id"], by_name[t["data"]["image"].rsplit("/", 1)[1].split("-", 1)[1]])
    with BackendThread(Settings(data_dir=tmp_path / "pat")) as backend:
        uid = project_uid(ls, project)
        r = post_json(
            f"{backend.url}/setup",
            {"project": uid, "schema": CONFIG, "hostname": ls.url, "access_token": pat, "extra_params": None},
        )
        assert r.status_code == 200
        r = post_json(f"{backend.url}/webhook", {"action": "START_TRAINING", "project": {"id": project}})
        assert r.json()["status"] == "scheduled"
        assert backend.service.wait_idle(str(project), timeout=180)
        job = backend.service.jobs.jobs(str(project))[-1]
        assert job.state == "done", job.to_dict()  # listed tasks and downloaded images with Bearer
        auth = backend.service.projects.auth(ls.url, pat)
        assert auth.kind == "pat" and auth.exchanges >= 1
        assert auth.headers()["Authorization"].startswith("Bearer ")
        r = post_json(f"{backend.url}/predict", {"tasks": [labelled[-1]], "project": uid, "label_config": CONFIG})
        (res,) = r.json()["results"]
        assert "error" not in res and res["model_version"] == job.result["version"], res
        # an access token LS no longer accepts: 401 -> exchange again -> retry succeeds
        auth._access = "not-a-valid-access-token"
        exchanges = auth.exchanges
        api = backend.service.projects.api(backend.service.projects.state(str(project)))
        assert api.auth is auth and len(list(api.iter_tasks(project))) == len(tasks)
        assert auth.exchanges == exchanges + 1


def test_python_m_backend_serves_the_protocol(label_studio, start_backend):
    """`python -m backend` as its own process (the way `tasveer up` runs it), on env settings."""
    backend = start_backend(label_studio, TASVEER_FETCH_WORKERS="2")
    r = requests.get(f"{backend.url}/health", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "UP"
    started = time.monotonic()
    r = post_json(
        f"{backend.url}/setup",
        {
            "project": "99.1",
            "schema": CONFIG,
            "hostname": label_studio.url,
            "access_token": label_studio.token,
            "extra_params": None,
        },
    )
    assert r.status_code == 200 and r.json() == {"model_version": "INITIAL"}
    assert time.monotonic() - started < 3  # Label Studio gives /setup 3 s
    assert (backend.data_dir / "projects" / "99" / "state.json").exists()
    r = post_json(
        f"{backend.url}/predict",
        {"tasks": [{"id": 1, "data": {"image": "/data/upload/x.jpg"}}], "project": "99.1", "label_config": CONFIG},
    )
    assert r.json()["results"][0]["model_version"] == "INITIAL"
