"""Faults, with real processes, a real Label Studio and real files:

* the backend SIGKILLed mid-training: the last good version is what the store serves, the restarted
  backend runs the training again, and no annotation is lost (Label Studio is the source of truth);
* Label Studio unreachable (a TCP proxy in front of it is taken down): trainings and image
  downloads are retried with backoff, a long outage is a recorded failure, /health stays up, and
  everything recovers when Label Studio is back;
* a store whose writes fail mid-publish (RLIMIT_FSIZE makes the OS refuse the write, as a full disk
  would): nothing half-written is listed or served;
* two trainings of one project (two backends on one data dir) publish in the order of their data;
* a corrupt manifest, weights file or serving pointer: that version is skipped with a logged error
  and the newest good version serves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests

from backend.settings import Settings
from lsfixture import poll
from tcpproxy import TcpProxy
from test_backend_helpers import BackendThread, post_json, protocol_requests, scene_files
from test_backend_protocol import publish_direct, setup_body

CLASSES3 = ["buildings", "forest", "sea"]


# -- helpers ---------------------------------------------------------------------------------------
def new_project(ls, title: str, per_class: int, offset: int = 0):
    """A Label Studio project with `per_class` uploaded photos of three classes:
    (project id, project uid for /setup, [(task id, label)] in upload order)."""
    from test_backend_labelstudio import create_project, project_uid, upload

    project = create_project(ls, title)
    pairs = scene_files(per_class, offset=offset, classes=CLASSES3)
    tasks = upload(ls, project, [(p.name, p.read_bytes()) for _, p in pairs])
    by_name = {p.name: label for label, p in pairs}
    labelled = sorted((t["id"], by_name[t["data"]["image"].rsplit("/", 1)[1].split("-", 1)[1]]) for t in tasks)
    # interleave the classes, so that any prefix has several labels
    ordered = [item for group in zip(*[[x for x in labelled if x[1] == c] for c in CLASSES3]) for item in group]
    return project, project_uid(ls, project), ordered


def annotate_all(ls, tasks) -> dict[int, int]:
    from test_backend_labelstudio import annotate

    return {tid: annotate(ls, tid, label) for tid, label in tasks}


def set_up(url: str, uid: str, hostname: str, token: str):
    body = setup_body(protocol_requests(), hostname, project=uid, extra_params={"promotion_margin": 1.0})
    body["access_token"] = token
    r = post_json(url + "/setup", body)
    assert r.status_code == 200, r.text


def jobs_of(url: str, project: int) -> dict:
    r = requests.get(f"{url}/projects/{project}/jobs", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def train_and_wait(url: str, project: int, timeout: float = 240) -> dict:
    r = post_json(url + "/train", {"project": project})
    assert r.status_code == 200, r.text
    job_id = r.json()["job"]
    return poll(
        lambda: next(
            (j for j in jobs_of(url, project)["jobs"] if j["id"] == job_id and j["state"] not in ("queued", "running")),
            None,
        ),
        f"end of training job {job_id}",
        timeout,
    )


def health(url: str) -> bool:
    return requests.get(url + "/health", timeout=5).json()["status"] == "UP"


# -- SIGKILL mid-training ----------------------------------------------------------------------------
@pytest.mark.labelstudio
def test_backend_killed_mid_training_runs_it_again_after_restart(label_studio, shared_data, start_backend, tmp_path):
    ls = label_studio
    project, uid, tasks = new_project(ls, "fault-kill", per_class=5)
    first = annotate_all(ls, tasks[:6])
    data_dir = tmp_path / "backend"
    b1 = start_backend(ls, data_dir=data_dir, TASVEER_TRAIN_MIN_INTERVAL="0")
    set_up(b1.url, uid, ls.url, ls.token)
    job = train_and_wait(b1.url, project)
    assert job["state"] == "done", job
    v1 = job["result"]["version"]

    later = annotate_all(ls, tasks[6:])  # nine new photos: downloading and embedding them takes a while
    r = post_json(b1.url + "/train", {"project": project})
    assert r.status_code == 200, r.text
    poll(
        lambda: (jobs_of(b1.url, project)["running"] or {}).get("state") == "running",
        "running training",
        30,
        interval=0.05,
    )
    os.kill(b1.pid, signal.SIGKILL)
    poll(lambda: not b1.alive(), "dead backend", 10, interval=0.05)

    models = data_dir / "projects" / str(project) / "models"
    assert json.loads((models / "SERVING").read_text())["version"] == v1  # the last good version
    assert sorted(p.name for p in (models / "versions").iterdir()) == [v1]  # nothing half-written listed
    assert (data_dir / "projects" / str(project) / "TRAINING_OWED").exists()

    b2 = start_backend(ls, data_dir=data_dir, TASVEER_TRAIN_MIN_INTERVAL="0")
    assert health(b2.url)
    done = poll(
        lambda: next((j for j in jobs_of(b2.url, project)["jobs"] if j["state"] == "done"), None),
        "resumed training",
        240,
        detail=b2.log_tail,
    )
    assert done["reason"] == "resumed after a restart"
    v2 = done["result"]["version"]
    versions = requests.get(f"{b2.url}/versions", params={"project": project}, timeout=10).json()
    assert versions["model_version"] == v2 and versions["versions"] == [v1, v2]
    stored = json.loads((models / "versions" / v2 / "manifest.json").read_text())
    assert sorted(stored["extra"]["annotations"]) == sorted([*first.values(), *later.values()])  # none lost
    assert not (data_dir / "projects" / str(project) / "TRAINING_OWED").exists()
    assert "running it again" in b2.log_tail(200)


# -- Label Studio unreachable --------------------------------------------------------------------------
@pytest.mark.labelstudio
def test_label_studio_unreachable_retries_fails_cleanly_and_recovers(label_studio, shared_data, tmp_path):
    ls = label_studio
    project, uid, tasks = new_project(ls, "fault-unreachable", per_class=4)
    annotate_all(ls, tasks[:6])
    target = urlsplit(ls.url)
    proxy = TcpProxy(target.hostname, target.port).up()
    with BackendThread(Settings(data_dir=tmp_path / "backend", fetch_timeout=4.0, train_min_interval=0)) as backend:
        url = backend.url
        set_up(url, uid, proxy.url, ls.token)  # the backend knows Label Studio by the proxy's address
        assert train_and_wait(url, project)["state"] == "done"

        # a short outage during a training: Label Studio calls are retried with backoff, it completes
        annotate_all(ls, tasks[6:7])
        proxy.down()
        r = post_json(url + "/train", {"project": project})
        assert r.status_code == 200
        time.sleep(1.0)
        assert health(url)
        proxy.up()
        job = poll(
            lambda: next(
                (
                    j
                    for j in jobs_of(url, project)["jobs"]
                    if j["id"] == r.json()["job"] and j["state"] not in ("queued", "running")
                ),
                None,
            ),
            "training",
            240,
        )
        assert job["state"] == "done", job
        serving = job["result"]["version"]

        # a long outage: a recorded failure after the retries, /health up all along, nothing published
        annotate_all(ls, tasks[7:8])
        proxy.down()
        r = post_json(url + "/train", {"project": project})
        while backend.service.jobs.busy(str(project)):
            assert health(url)
            time.sleep(0.5)
        (failed,) = [j for j in jobs_of(url, project)["jobs"] if j["id"] == r.json()["job"]]
        assert failed["state"] == "failed" and "ConnectionError" in failed["error"], failed
        assert backend.service.serving.model_version(str(project)) == serving
        # a photo imported during the outage (not cached): a per-task error after the download's retries
        from test_backend_labelstudio import upload

        ((label, path),) = scene_files(1, offset=40, classes=["sea"])
        (new_task,) = upload(ls, project, [(path.name, path.read_bytes())])
        unseen = {"id": new_task["id"], "data": new_task["data"]}
        r = post_json(url + "/predict", {"tasks": [unseen], "project": uid})
        assert r.status_code == 200, r.text
        (res,) = r.json()["results"]
        assert res["result"] == [] and "download failed" in res["error"], res
        assert health(url)

        # Label Studio is back: the next training and the same prediction work
        proxy.up()
        assert train_and_wait(url, project)["state"] == "done"
        (res,) = post_json(url + "/predict", {"tasks": [unseen], "project": uid}).json()["results"]
        assert "error" not in res and res["result"][0]["value"]["choices"][0] in CLASSES3
    proxy.down()


# -- two trainings of one project --------------------------------------------------------------------
@pytest.mark.labelstudio
def test_two_trainings_of_one_project_publish_in_order(label_studio, shared_data, tmp_path):
    """Two backends on one data dir (as two processes would be) train the same project at once;
    the per-project lock makes the second wait and read Label Studio afresh."""
    ls = label_studio
    project, uid, tasks = new_project(ls, "fault-order", per_class=4)
    annotate_all(ls, tasks[:6])
    data_dir = tmp_path / "backend"
    with BackendThread(Settings(data_dir=data_dir)) as a, BackendThread(Settings(data_dir=data_dir)) as b:
        set_up(a.url, uid, ls.url, ls.token)
        ra = post_json(a.url + "/train", {"project": project})
        poll(lambda: a.service.jobs.busy(str(project)), "training in a", 10, interval=0.02)
        final = annotate_all(ls, tasks[6:7])  # the newest annotation arrives while a trains
        rb = post_json(b.url + "/train", {"project": project})
        assert ra.status_code == rb.status_code == 200
        assert a.service.wait_idle(str(project), 240) and b.service.wait_idle(str(project), 240)
        states = [j.state for j in a.service.jobs.jobs(str(project)) + b.service.jobs.jobs(str(project))]
        assert "failed" not in states, states
        store = a.service.serving.store(str(project))
        manifests = store.versions()
        annotations = [set(m["extra"]["annotations"]) for m in manifests]
        assert all(x <= y for x, y in zip(annotations, annotations[1:]))  # each version has what the last had
        newest = manifests[-1]
        assert store.serving() == newest["version"]  # the newest data serves, never an older publish
        assert set(final.values()) <= set(newest["extra"]["annotations"])


# -- corrupt files and failing writes --------------------------------------------------------------
@pytest.fixture(scope="module")
def two_versions_once(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("two-versions") / "backend"
    with BackendThread(Settings(data_dir=data_dir)) as backend:
        assert (
            post_json(backend.url + "/setup", setup_body(protocol_requests(), "http://127.0.0.1:9")).status_code == 200
        )
        v1 = publish_direct(backend.service, "1", per_class=2)
        v2 = publish_direct(backend.service, "1", per_class=3)
    return data_dir, v1, v2


@pytest.fixture
def two_versions(two_versions_once, tmp_path):
    """A fresh copy of a data dir whose project 1 has two published versions (v2 serving)."""
    import shutil

    source, v1, v2 = two_versions_once
    data_dir = tmp_path / "backend"
    shutil.copytree(source, data_dir, symlinks=True)
    return data_dir, v1, v2


def _served(data_dir, photo: bytes) -> tuple[str, dict]:
    """(model_version, prediction) of a fresh backend on `data_dir` for one photo."""
    from imageserver import ImageServer

    with ImageServer({"/data/upload/1/p.jpg": photo}) as files, BackendThread(Settings(data_dir=data_dir)) as backend:
        set_up(backend.url, "1.1795492545", files.url, "token")
        r = post_json(
            backend.url + "/predict",
            {"tasks": [{"id": 1, "data": {"image": "/data/upload/1/p.jpg"}}], "project": "1.1795492545"},
        )
        assert r.status_code == 200, r.text
        versions = requests.get(backend.url + "/versions?project=1", timeout=10)
        assert versions.status_code == 200, versions.text
        assert health(backend.url)
        (res,) = r.json()["results"]
        return versions.json()["model_version"], res


@pytest.mark.parametrize("damage", ["weights truncated", "manifest not JSON", "serving pointer not JSON"])
def test_a_corrupt_version_is_skipped_and_the_newest_good_one_serves(two_versions, damage, caplog):
    data_dir, v1, v2 = two_versions
    models = data_dir / "projects" / "1" / "models"
    if damage == "weights truncated":
        path = models / "versions" / v2 / "weights.safetensors"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "manifest not JSON":
        (models / "versions" / v2 / "manifest.json").write_text('{"labels": [')
    else:
        (models / "SERVING").write_text("{{{")
    photo = scene_files(1, offset=30, classes=["sea"])[0][1].read_bytes()
    version, res = _served(data_dir, photo)
    expected = v2 if damage == "serving pointer not JSON" else v1  # the newest version that loads
    assert version == expected and res["model_version"] == expected and "error" not in res, res
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(word in " ".join(errors) for word in (v2, "unreadable")), errors


_PUBLISH_UNDER_LIMIT = """
import resource, signal, sys
from training.params import TrainParams
from training.store import ModelStore
from training.train import fit
sys.path.insert(0, "tests")
from test_backend_helpers import CLASSES, scene_files

pairs = scene_files(2, offset=5)
result = fit([p.read_bytes() for _, p in pairs], [label for label, _ in pairs], CLASSES, TrainParams())
store = ModelStore(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000))  # the head's weights are ~31 kB
try:
    store.publish(result, params=TrainParams(), parent=store.serving())
except Exception as exc:  # safetensors wraps the OSError in its own error
    print("publish failed:", type(exc).__name__, exc)
    sys.exit(3)
"""


def test_a_write_failing_mid_publish_leaves_nothing_half_written(two_versions):
    data_dir, v1, v2 = two_versions
    models = data_dir / "projects" / "1" / "models"
    proc = subprocess.run(
        [sys.executable, "-c", _PUBLISH_UNDER_LIMIT, str(models)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert proc.returncode == 3 and "File too large" in proc.stdout, proc.stdout + proc.stderr
    assert sorted(p.name for p in (models / "versions").iterdir()) == [v1, v2]
    assert not list((models / ".tmp").iterdir())  # the half-written version was removed
    photo = scene_files(1, offset=30, classes=["sea"])[0][1].read_bytes()
    version, res = _served(data_dir, photo)
    assert version == v2 and res["model_version"] == v2 and "error" not in res


def _held_runner(min_interval: float):
    """A JobRunner whose jobs record their request counts and hold until `release` is set."""
    import threading

    from backend.jobs.runner import JobRunner

    ran, idle, release = [], [], threading.Event()

    def work(project, job):
        release.wait(30)
        ran.append(job.requests)

    return JobRunner(work, min_interval=min_interval, on_idle=idle.append), ran, idle, release


def test_job_runner_min_interval_merges_a_burst_and_shutdown_keeps_what_is_owed():
    """Requests that come in a burst while a job runs wait `min_interval` after its start, merged
    into one job; a shutdown while it waits skips it (and does not call on_idle: it is still owed)."""
    runner, ran, idle, release = _held_runner(60.0)
    first = runner.submit("3", "a")
    poll(lambda: first.state == "running", "first job running", 10)
    waiting = [runner.submit("3", f"b{i}") for i in range(5)]
    assert len({j.id for j in waiting}) == 1 and waiting[-1].requests == 5 and waiting[0].id != first.id
    release.set()
    poll(lambda: first.state == "done", "first job done", 10)
    time.sleep(0.5)
    assert waiting[0].state == "queued" and ran == [1]  # 5 requests in no time: a burst, it waits
    runner.shutdown(timeout=10)
    assert waiting[0].state == "skipped" and ran == [1] and idle == []


def test_job_runner_starts_a_persons_next_correction_when_the_last_job_ends():
    """At a person's pace (one request per PERSON_GAP seconds or fewer since the last start) the
    next job does not wait for `min_interval`: it starts as soon as the running one ends."""
    runner, ran, idle, release = _held_runner(60.0)
    first = runner.submit("4", "a")
    poll(lambda: first.state == "running", "first job running", 10)
    second = runner.submit("4", "b")
    assert second.state == "queued" and second.requests == 1
    release.set()
    assert runner.wait_idle("4", timeout=10) and ran == [1, 1] and idle == ["4"]
    runner.shutdown(timeout=10)
