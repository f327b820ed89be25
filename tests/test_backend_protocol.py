"""The backend's HTTP protocol, replaying the requests Label Studio 1.23.2 really sends
(../shared/protocol), over real HTTP to the real app (uvicorn on loopback), with real images and a
real (small) training. No Label Studio process here: see test_backend_labelstudio.py for that."""

from __future__ import annotations

import copy
import json
import os
import stat
import time

import pytest
import requests

from backend.jobs.recipe import accurate_reason
from backend.jobs.runner import FAILED, JobRunner, SkipJob
from backend.settings import Settings, SettingsError
from lsproto.config import LabelConfigError, parse_label_config
from requireall import missing_part
from test_backend_helpers import (
    CLASSES,
    CONFIG,
    PROTOCOL,
    BackendThread,
    FileServer,
    free_port,
    post_json,
    protocol_requests,
    scene_files,
)


@pytest.fixture(autouse=True)
def _protocol_capture():
    if not PROTOCOL.exists():
        missing_part(f"protocol capture not found at {PROTOCOL}")


TOKEN = "legacytoken0123456789"


@pytest.fixture(scope="module")
def captured():
    return protocol_requests()


@pytest.fixture
def backend(tmp_path):
    with BackendThread(Settings(data_dir=tmp_path / "backend")) as server:
        yield server


def setup_body(captured, hostname, project="1.1795492545", **changes):
    body = copy.deepcopy(captured["POST /setup"]["body"])
    body.update(project=project, hostname=hostname, access_token=TOKEN)
    body.update(changes)
    return body


def publish_direct(service, project: str, per_class: int = 3, params=None) -> str:
    """Train for real on a few shared images and publish into the backend's store for `project`
    (what a training job would do, without needing Label Studio's API)."""
    from training.images import content_hash
    from training.params import TrainParams
    from training.store import data_fingerprint
    from training.train import fit

    params = params or TrainParams()
    pairs = scene_files(per_class)
    blobs = [p.read_bytes() for _, p in pairs]
    labels = [label for label, _ in pairs]
    result = fit(blobs, labels, CLASSES, params, cache=service.embeddings, backbone=service.serving.backbone(params))
    store = service.serving.store(project)
    return store.publish(
        result,
        params=params,
        parent=store.serving(),
        data_fingerprint=data_fingerprint([content_hash(b) for b in blobs], labels),
    )


# -- pure parts ------------------------------------------------------------------------------------


def test_label_config_parsing():
    cfg = parse_label_config(CONFIG)
    assert (cfg.from_name, cfg.to_name, cfg.data_key) == ("choice", "image", "image")
    assert list(cfg.labels) == CLASSES
    bad = {
        "<View><Text name='t' value='$text'/><Choices name='c' toName='t'><Choice value='a'/>"
        "<Choice value='b'/></Choices></View>": "no <Image>",
        "<View><Image name='i' value='$img'/><RectangleLabels name='r' toName='i'><Label value='a'/>"
        "</RectangleLabels></View>": "no <Choices>",
        "<View><Image name='i' value='$img'/>": "not valid XML",
        "<View><Image name='i' value='img'/><Choices name='c' toName='i'><Choice value='a'/>"
        "<Choice value='b'/></Choices></View>": "must reference task data",
        "<View><Image name='i' value='$img'/><Choices name='c' toName='i'><Choice value='a'/>"
        "</Choices></View>": "at least two",
    }
    for xml, message in bad.items():
        with pytest.raises(LabelConfigError, match=message):
            parse_label_config(xml)


def test_settings_from_env(tmp_path):
    s = Settings.from_env(
        {
            "TASVEER_DATA_DIR": str(tmp_path),
            "TASVEER_PORT": "9191",
            "TASVEER_ALLOWED_HOSTS": "Images.example.com, cdn:8080",
            "LABEL_STUDIO_URL": "http://ls:8080/",
        }
    )
    assert s.port == 9191 and s.allowed_hosts == ("images.example.com", "cdn:8080")
    assert s.label_studio_url == "http://ls:8080" and s.host == "127.0.0.1"
    with pytest.raises(SettingsError, match="TASVEER_PORT"):
        Settings.from_env({"TASVEER_PORT": "ninety"})
    with pytest.raises(SettingsError, match="together"):
        Settings.from_env({"TASVEER_BASIC_AUTH_USER": "u"})


def test_job_runner_coalesces_a_burst_into_one_running_and_one_pending():
    started, seen = [], []
    gate_open = time.monotonic() + 0.5
    latest = {"value": 0}

    def work(project, job):
        started.append(job.id)
        seen.append(latest["value"])  # what the job "pulls from Label Studio" when it starts
        while time.monotonic() < gate_open:
            time.sleep(0.01)
        if latest["value"] == -1:
            raise RuntimeError("boom")
        if job.reason == "skip":
            raise SkipJob("nothing to do")
        return {"version": f"v{len(started)}"}

    runner = JobRunner(work)
    jobs = []
    for i in range(1, 21):
        latest["value"] = i
        reason = accurate_reason("train now") if i == 10 else f"ANNOTATION_CREATED #{i}"
        jobs.append(runner.submit("7", reason))
        status = runner.status("7")
        assert status["running"] is not None
    assert len({j.id for j in jobs}) == 2  # the first one runs, all the others share one pending job
    assert jobs[-1].requests == 19
    assert jobs[-1].reason == "train now [accurate]"  # a plain request never drops an accurate one
    assert runner.wait_idle("7", timeout=10)
    assert len(started) == 2
    assert seen[-1] == 20  # the pending job saw the latest annotation
    assert [j.state for j in runner.jobs("7")] == ["done", "done"]
    # a failing job is recorded and the runner keeps working
    latest["value"] = -1
    runner.submit("7", "x")
    assert runner.wait_idle("7", timeout=10)
    assert runner.jobs("7")[-1].state == FAILED and "boom" in runner.jobs("7")[-1].error
    latest["value"] = 1
    runner.submit("7", "skip")
    assert runner.wait_idle("7", timeout=10)
    assert runner.jobs("7")[-1].state == "skipped"
    runner.shutdown()


# -- protocol replay ---------------------------------------------------------------------------------


def test_health_and_setup_replay(backend, captured, tmp_path):
    health = captured["GET /health"]
    r = requests.get(backend.url + "/health", headers=health["headers"], timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "UP"

    r = post_json(
        backend.url + "/setup",
        setup_body(captured, "http://127.0.0.1:18080"),
        headers=captured["POST /setup"]["headers"],
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"model_version": "INITIAL"}
    state_file = tmp_path / "backend" / "projects" / "1" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["hostname"] == "http://127.0.0.1:18080" and state["token"] == TOKEN
    assert state["created"] == "1795492545" and state["label_config"] == CONFIG
    assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600  # it holds a token


def test_setup_refuses_unservable_config_and_bad_params(backend, captured):
    url = backend.url + "/setup"
    for schema, words in [
        (
            "<View><Text name='t' value='$text'/><Choices name='c' toName='t'><Choice value='a'/>"
            "<Choice value='b'/></Choices></View>",
            "no <Image>",
        ),
        ("<View><Image name='i' value='$img'/></View>", "no <Choices>"),
        ("not xml at all", "not valid XML"),
    ]:
        r = post_json(url, setup_body(captured, "http://127.0.0.1:18080", schema=schema))
        assert r.status_code == 422, r.text
        assert "labeling config not supported" in r.json()["error"] and words in r.json()["error"]

    for extra, words in [
        ({"lr": "fast"}, "lr must be a number"),
        ({"learning_rate": 0.1}, "unknown training parameter"),
        ({"mode": "magic"}, "mode must be one of"),
        ({"model": "no_such_network_xyz"}, "no_such_network_xyz"),
        ("{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
    ]:
        r = post_json(url, setup_body(captured, "http://127.0.0.1:18080", extra_params=extra))
        assert r.status_code == 422, (extra, r.text)
        assert r.json()["error"].startswith("bad extra_params") and words in r.json()["error"], r.json()

    # good params (as an object or as a JSON string, both reach us from LS's extra_params field)
    for extra in ({"head_c": 2.0, "mode": "head"}, json.dumps({"head_c": 2.0})):
        r = post_json(url, setup_body(captured, "http://127.0.0.1:18080", extra_params=extra))
        assert r.status_code == 200, r.text
    assert backend.service.projects.states.load("1").params["head_c"] == 2.0


def test_predict_replay_cold_start(backend, captured):
    post_json(backend.url + "/setup", setup_body(captured, "http://127.0.0.1:9"))
    body = captured["POST /predict"]["body"]
    r = post_json(backend.url + "/predict", body, headers=captured["POST /predict"]["headers"])
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(body["tasks"]) == 12
    for res in results:
        assert res["model_version"] == "INITIAL"
        assert res["score"] == pytest.approx(1 / 6)
        assert res["result"] == [
            {"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": ["buildings"]}}
        ]
    assert backend.service.fetcher.downloads == 0  # a cold-start answer downloads nothing


def test_predict_trained_in_order_with_per_task_errors(tmp_path, captured):
    settings = Settings(data_dir=tmp_path / "backend", max_image_bytes=200_000)
    train_pairs = scene_files(3)
    test_pairs = scene_files(2, offset=3)
    files = {f"/data/upload/1/{i:03d}-{p.name}": p.read_bytes() for i, (_, p) in enumerate(train_pairs + test_pairs)}
    files["/data/upload/1/corrupt.jpg"] = b"\xff\xd8\xff\xe0 this is not really a jpeg"
    files["/data/upload/1/notes.jpg"] = b"plain text, not an image"
    files["/data/upload/1/huge.jpg"] = b"\xff" * 300_000
    with FileServer(files, TOKEN, delay=0.1) as ls, BackendThread(settings) as backend:
        assert post_json(backend.url + "/setup", setup_body(captured, ls.url)).status_code == 200
        vid = publish_direct(backend.service, "1")

        good_paths = [f"/data/upload/1/{i:03d}-{p.name}" for i, (_, p) in enumerate(train_pairs + test_pairs)]
        tasks = []
        template = captured["POST /predict"]["body"]["tasks"][0]

        def task(tid, data):
            t = copy.deepcopy(template)
            t.update(id=tid, data=data)
            return t

        for n, path in enumerate(good_paths):
            tasks.append(task(100 + n, {"image": path}))
        bad = {
            1: {"image": "/data/upload/1/corrupt.jpg"},
            5: {"image": "/data/upload/1/notes.jpg"},
            9: {"image": "/data/upload/1/missing.jpg"},
            13: {"image": "http://203.0.113.9/elsewhere.jpg"},  # host not allowed
            17: {"text": "no image key"},
            21: {"image": "/data/upload/1/huge.jpg"},
            25: {"image": "s3://bucket/key.jpg"},
        }
        for pos in sorted(bad):
            tasks.insert(pos, task(900 + pos, bad[pos]))
        body = dict(captured["POST /predict"]["body"], tasks=tasks)

        r = post_json(backend.url + "/predict", body)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert len(results) == len(tasks)
        expected_error = {
            1: "task 901",
            5: "task 905",
            9: "HTTP 404",
            13: "host not allowed",
            17: "no image URL",
            21: "byte",
            25: "HTTP 404",  # an s3:// URI is asked of LS, which has no storage for it
        }
        for pos, (t, res) in enumerate(zip(tasks, results)):
            assert res["model_version"] == vid
            if pos in bad:
                assert res["result"] == [] and expected_error[pos] in res["error"], (pos, res)
                assert f"task {t['id']}" in res["error"], res  # errors name the task
            else:
                assert "error" not in res, res
                (item,) = res["result"]
                assert item["value"]["choices"][0] in CLASSES and 0 <= res["score"] <= 1
        # the training images themselves come back with their own labels (sanity of column order)
        good_results = [res for pos, res in enumerate(results) if pos not in bad]
        hits = sum(
            res["result"][0]["value"]["choices"][0] == label for res, (label, _) in zip(good_results, train_pairs)
        )
        assert hits >= 0.8 * len(train_pairs), hits
        # downloads ran concurrently (the file server answers each request after 0.1 s, so requests
        # overlap whatever the machine's load; how long it took is bench/predict.py's, not a test's)
        assert ls.max_in_flight >= 2
        # a second predict is served from the disk cache
        downloads = backend.service.fetcher.downloads
        r = post_json(backend.url + "/predict", body)
        assert r.status_code == 200 and backend.service.fetcher.downloads == downloads


def test_malformed_requests_get_4xx_and_service_keeps_serving(backend, captured):
    u = backend.url
    post_json(u + "/setup", setup_body(captured, "http://127.0.0.1:9"))
    cases = [
        ("POST", "/predict", b"{not json", 400),
        ("POST", "/predict", b"[1, 2, 3]", 400),
        ("POST", "/predict", b"", 400),
        ("POST", "/predict", json.dumps({"tasks": "nope"}).encode(), 400),
        ("POST", "/predict", json.dumps({"tasks": [1, 2], "project": "1.1"}).encode(), 422),
        ("POST", "/predict", json.dumps({"tasks": [], "project": "x.y"}).encode(), 422),
        ("POST", "/predict", json.dumps({"tasks": [{"id": 1}], "project": "55.1"}).encode(), 422),
        ("POST", "/setup", json.dumps({"schema": CONFIG}).encode(), 400),
        ("POST", "/setup", json.dumps({"project": "abc", "schema": CONFIG}).encode(), 422),
        ("POST", "/webhook", json.dumps({"project": {"id": 1}}).encode(), 400),
        ("POST", "/webhook", json.dumps({"action": "ANNOTATION_CREATED"}).encode(), 422),
        ("POST", "/webhook", b"\x00\xff", 400),
        ("POST", "/projects/1/rollback", json.dumps({"version": "v9999"}).encode(), 404),
        ("POST", "/projects/1/rollback", json.dumps({}).encode(), 422),
        ("GET", "/versions/v0001/confusion.png", None, 404),
        ("POST", "/train", json.dumps({"project": None}).encode(), 400),
    ]
    for method, path, data, status in cases:
        r = requests.request(method, u + path, data=data, headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == status, (path, data, r.status_code, r.text)
        assert isinstance(r.json().get("error"), str) and r.json()["error"], r.text
    assert requests.get(u + "/health", timeout=5).status_code == 200
    r = post_json(u + "/predict", captured["POST /predict"]["body"])
    assert r.status_code == 200 and len(r.json()["results"]) == 12


def test_webhooks_answer_fast_and_unknown_actions_are_ignored(backend, captured):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: the training job itself fails
    post_json(backend.url + "/setup", setup_body(captured, closed))
    for key in ("POST /webhook ANNOTATION_CREATED", "POST /webhook START_TRAINING"):
        started = time.monotonic()
        r = post_json(backend.url + "/webhook", captured[key]["body"], headers=captured[key]["headers"])
        assert time.monotonic() - started < 0.5
        assert r.status_code == 200 and r.json()["status"] == "scheduled", r.text
    r = post_json(backend.url + "/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 1}})
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    # unknown project (never set up, no LABEL_STUDIO_URL fallback): acknowledged, nothing scheduled
    r = post_json(backend.url + "/webhook", {"action": "START_TRAINING", "project": {"id": 42}})
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    assert backend.service.wait_idle("1", timeout=30)
    jobs = requests.get(backend.url + "/projects/1/jobs", timeout=5).json()
    assert jobs["jobs"] and all(j["state"] == FAILED for j in jobs["jobs"])
    assert "127.0.0.1" in jobs["jobs"][0]["error"]
    assert jobs["model_version"] == "INITIAL"  # nothing published


def test_versions_metrics_confusion_and_rollback(backend, captured):
    u = backend.url
    post_json(u + "/setup", setup_body(captured, "http://127.0.0.1:9"))
    from training.params import TrainParams

    first = publish_direct(backend.service, "1", per_class=2)
    second = publish_direct(backend.service, "1", per_class=3, params=TrainParams(head_c=1.0))
    assert first != second
    # LS sends GET /versions with a JSON body {"project": "<id>.<ts>"}
    r = requests.get(
        u + "/versions",
        data=json.dumps({"project": "1.1795492545"}),
        headers=captured["GET /versions"]["headers"],
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["versions"] == [first, second] and r.json()["model_version"] == second
    assert requests.get(u + "/versions?project=1", timeout=10).json()["versions"] == [first, second]
    assert post_json(u + "/setup", setup_body(captured, "http://127.0.0.1:9")).json()["model_version"] == second

    page = requests.get(u + "/metrics", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert first in page.text and second in page.text and "macro F1" in page.text
    assert "confusion.png" in page.text and "street" in page.text
    png = requests.get(f"{u}/versions/{second}/confusion.png", timeout=30)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

    r = post_json(u + "/projects/1/rollback", {"version": first})
    assert r.status_code == 200 and r.json()["model_version"] == first
    assert post_json(u + "/setup", setup_body(captured, "http://127.0.0.1:9")).json()["model_version"] == first
    assert requests.get(u + "/versions?project=1", timeout=10).json()["model_version"] == first
    # head-mode versions share the one loaded backbone: switching versions rebuilds no network
    version, classifier = backend.service.serving.classifier("1")
    # served by ONNX Runtime on CPU; both head versions run on the one shared session
    assert version == first and classifier.backbone.engine == "onnx"
    assert post_json(u + "/projects/1/rollback", {"version": second}).status_code == 200
    again, other = backend.service.serving.classifier("1")
    assert again == second and other.backbone is classifier.backbone


def test_basic_auth(tmp_path, captured):
    settings = Settings(data_dir=tmp_path / "b", basic_auth_user="ls", basic_auth_password="s3cret")
    with BackendThread(settings) as backend:
        assert requests.get(backend.url + "/health", timeout=5).status_code == 401
        assert requests.get(backend.url + "/health", auth=("ls", "wrong"), timeout=5).status_code == 401
        assert requests.get(backend.url + "/health", auth=("ls", "s3cret"), timeout=5).status_code == 200
        r = post_json(backend.url + "/setup", setup_body(captured, "http://127.0.0.1:9"), auth=("ls", "s3cret"))
        assert r.status_code == 200


def test_recreated_project_starts_fresh(backend, captured):
    u = backend.url
    post_json(u + "/setup", setup_body(captured, "http://127.0.0.1:9", project="1.100"))
    vid = publish_direct(backend.service, "1", per_class=2)
    assert post_json(u + "/setup", setup_body(captured, "http://127.0.0.1:9", project="1.100")).json() == {
        "model_version": vid
    }
    # same id, other creation time: another Label Studio database -> not this project's model
    r = post_json(u + "/setup", setup_body(captured, "http://127.0.0.1:9", project="1.200"))
    assert r.json() == {"model_version": "INITIAL"}


def test_download_policy_allowed_hosts_no_token_leak_and_timeout(tmp_path, captured):
    photo = scene_files(1)[0][1].read_bytes()
    ls_files = {"/data/upload/1/a.jpg": photo, "/data/local-files/?d=scenes/forest/b.jpg": photo}
    with (
        FileServer(ls_files, TOKEN) as ls,
        FileServer({"/pics/b.jpg": photo}, None) as cdn,
        FileServer({"/pics/slow.jpg": photo}, None, delay=2.0) as slow,
    ):
        other = cdn.url.replace("127.0.0.1", "localhost")  # another origin than the LS host
        slow_url = slow.url.replace("127.0.0.1", "localhost")
        allowed = (other.split("//")[1], slow_url.split("//")[1])
        for hosts, expect_ok in [((), False), (allowed, True)]:
            settings = Settings(data_dir=tmp_path / f"b{len(hosts)}", allowed_hosts=hosts, fetch_timeout=1.0)
            with BackendThread(settings) as backend:
                post_json(backend.url + "/setup", setup_body(captured, ls.url))
                publish_direct(backend.service, "1", per_class=2)
                tasks = [
                    {"id": 1, "data": {"image": "/data/upload/1/a.jpg"}},
                    {"id": 2, "data": {"image": f"{other}/pics/b.jpg"}},
                    {"id": 3, "data": {"image": f"{slow_url}/pics/slow.jpg"}},
                    {"id": 4, "data": {"image": "/data/local-files/?d=scenes/forest/b.jpg"}},
                ]
                r = post_json(
                    backend.url + "/predict", {"tasks": tasks, "project": "1.1795492545", "label_config": CONFIG}
                )
                first, second, third, fourth = r.json()["results"]
                assert "error" not in first and "error" not in fourth, (first, fourth)
                if expect_ok:
                    assert "error" not in second, second
                    assert "task 3" in third["error"] and "slow.jpg" in third["error"], third
                    assert "timed out" in third["error"].lower() or "read timed out" in third["error"].lower()
                else:
                    assert "host not allowed" in second["error"] and "task 2" in second["error"]
                    assert "host not allowed" in third["error"]
        assert all(h == f"Token {TOKEN}" for h in ls.auth_headers)
        assert cdn.auth_headers == [None]  # the Label Studio token never goes to another host


def test_finetuned_version_is_served(backend, captured):
    from training.params import TrainParams

    post_json(backend.url + "/setup", setup_body(captured, "http://127.0.0.1:9"))
    params = TrainParams(
        model="smallcnn", mode="finetune", pretrained=False, epochs=1, image_size=64, filters=8, depth=2, batch_size=8
    )
    vid = publish_direct(backend.service, "1", per_class=2, params=params)
    manifest = backend.service.serving.store("1").manifest(vid)
    assert manifest["mode"] == "finetune" and manifest["contains_backbone"]
    version, classifier = backend.service.serving.classifier("1")
    assert version == vid and classifier.mode == "finetune"
    assert requests.get(backend.url + "/versions?project=1", timeout=10).json()["model_version"] == vid


def test_unknown_project_leaves_nothing_on_disk(backend, tmp_path):
    r = requests.get(backend.url + "/versions", json={"project": "77.123"}, timeout=10)
    assert r.status_code == 200 and r.json()["versions"] == [] and r.json()["model_version"] == "INITIAL"
    assert not (tmp_path / "backend" / "projects" / "77").exists()


def test_uploads_are_read_from_label_studio_media_dir_when_shared(tmp_path):
    """With TASVEER_LS_MEDIA_DIR (what `tasveer up` sets), /data/upload/... of the LS host is read
    from disk: nothing listens at the LS address here, so any download attempt would fail."""
    from backend.blobcache import BlobCache
    from backend.fetch import FetchError, ImageFetcher

    media = tmp_path / "media"
    (media / "upload" / "3").mkdir(parents=True)
    photo = scene_files(1)[0][1].read_bytes()
    (media / "upload" / "3" / "ab12-photo.jpg").write_bytes(photo)
    (tmp_path / "secret.jpg").write_bytes(b"not yours")
    ls = f"http://127.0.0.1:{free_port()}"
    fetcher = ImageFetcher(BlobCache(tmp_path / "cache"), max_bytes=10**6, timeout=2, media_dir=media)
    try:
        assert fetcher.fetch("/data/upload/3/ab12-photo.jpg", hostname=ls, auth=None) == photo
        assert fetcher.downloads == 0
        for escape in (
            "/data/upload/../../secret.jpg",
            "/data/upload/3/../../../secret.jpg",
            "/data/upload/3/missing.jpg",
        ):
            with pytest.raises(FetchError, match="download failed"):  # not read: asked LS instead
                fetcher.fetch(escape, hostname=ls, auth=None)
        other = f"http://127.0.0.1:{free_port()}"  # same path on another host is not LS's upload
        with pytest.raises(FetchError, match="not allowed"):
            fetcher.fetch(f"{other}/data/upload/3/ab12-photo.jpg", hostname=ls, auth=None)
    finally:
        fetcher.close()
