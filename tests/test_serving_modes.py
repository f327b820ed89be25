"""What serves predictions: ONNX Runtime by default on CPU, PyTorch by name, the same answers from
both over real HTTP; a serving process with torch made unimportable answers /predict; trainings in a
child process (TASVEER_TRAIN_IN=process) publish versions the serving process picks up."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import requests

from backend.settings import Settings, SettingsError
from sync.backendproc import BackendServer
from sync.netutil import free_port
from test_backend_helpers import REPO, BackendThread, FileServer, post_json, protocol_requests, scene_files, wait_for
from test_backend_protocol import TOKEN, publish_direct, setup_body


def predict_body(captured, n_per_class: int = 2, offset: int = 12):
    pairs = scene_files(n_per_class, offset=offset)
    files = {f"/data/upload/1/{i:03d}-{p.name}": p.read_bytes() for i, (_, p) in enumerate(pairs)}
    template = captured["POST /predict"]["body"]["tasks"][0]
    tasks = []
    for n, path in enumerate(files):
        task = copy.deepcopy(template)
        task.update(id=500 + n, data={"image": path})
        tasks.append(task)
    return files, dict(captured["POST /predict"]["body"], tasks=tasks)


def test_onnx_runtime_and_pytorch_give_the_same_answers(tmp_path):
    captured = protocol_requests()
    files, body = predict_body(captured)
    answers = {}
    with FileServer(files, TOKEN) as ls:
        for engine in ("torch", "onnx"):  # one store: published once, served by each engine in turn
            with BackendThread(Settings(data_dir=tmp_path / "backend", engine=engine)) as backend:
                assert post_json(backend.url + "/setup", setup_body(captured, ls.url)).status_code == 200
                if engine == "torch":
                    vid = publish_direct(backend.service, "1")
                r = post_json(backend.url + "/predict", body)
                assert r.status_code == 200, r.text
                answers[engine] = r.json()["results"]
                _, clf = backend.service.serving.classifier("1")
                assert clf.backbone.engine == engine
    for torch_answer, ort_answer in zip(answers["torch"], answers["onnx"]):
        assert torch_answer["model_version"] == ort_answer["model_version"] == vid
        assert torch_answer["result"][0]["value"] == ort_answer["result"][0]["value"]
        assert ort_answer["result"][0]["score"] == pytest.approx(torch_answer["result"][0]["score"], abs=2e-4)
        assert ort_answer["score"] == pytest.approx(torch_answer["score"], abs=2e-4)


def test_head_versions_share_one_onnx_session(tmp_path):
    with BackendThread(Settings(data_dir=tmp_path / "backend", engine="onnx")) as backend:
        post_json(backend.url + "/setup", setup_body(protocol_requests(), "http://127.0.0.1:9"))
        first = publish_direct(backend.service, "1", per_class=2)
        _, a = backend.service.serving.classifier("1")
        second = publish_direct(backend.service, "1", per_class=3)
        vid, b = backend.service.serving.classifier("1")
        assert (vid, a.version, b.version) == (second, first, second)
        assert a.backbone is b.backbone and a.backbone.engine == "onnx"


def test_settings_refuse_training_in_a_process_with_the_torch_engine():
    with pytest.raises(SettingsError, match="TASVEER_TRAIN_IN=process"):
        Settings(engine="torch", train_in="process")
    with pytest.raises(SettingsError, match="TASVEER_ENGINE must be one of"):
        Settings.from_env({"TASVEER_ENGINE": "tensorrt"})


def torch_blocker(tmp_path) -> Path:
    """A sitecustomize that makes `import torch` raise (sys.modules["torch"] = None) in a process
    started with TASVEER_TRAIN_IN=process: the serving process. Its training worker runs with
    TASVEER_TRAIN_IN=thread and may import torch."""
    block = tmp_path / "block-torch"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        "import os, sys\nif os.environ.get('TASVEER_TRAIN_IN') == 'process':\n    sys.modules['torch'] = None\n"
    )
    return block


def test_a_server_without_torch_answers_predict(tmp_path):
    """`python -m backend` with torch made unimportable serves a version published by another
    process with ONNX Runtime."""
    captured = protocol_requests()
    files, body = predict_body(captured)
    block = torch_blocker(tmp_path)
    data_dir = tmp_path / "backend"
    with FileServer(files, TOKEN) as ls, BackendThread(Settings(data_dir=data_dir, engine="torch")) as trainer:
        post_json(trainer.url + "/setup", setup_body(captured, ls.url))
        vid = publish_direct(trainer.service, "1")  # another process publishes
    server = BackendServer(
        data_dir,
        free_port(),
        label_studio_url="http://127.0.0.1:9",
        label_studio_token="",
        extra_env={"PYTHONPATH": f"{block}:{REPO}", "TASVEER_TRAIN_IN": "process", "TASVEER_ENGINE": "auto"},
    )
    with FileServer(files, TOKEN) as ls:
        server.start()
        try:
            assert post_json(server.url + "/setup", setup_body(captured, ls.url)).status_code == 200
            r = post_json(server.url + "/predict", body)
            assert r.status_code == 200, r.text + server.log_tail()
            results = r.json()["results"]
            assert all(res["model_version"] == vid and "error" not in res for res in results), results
            maps = Path(f"/proc/{server.pid}/maps").read_text()
            assert "libtorch" not in maps and "onnxruntime" in maps  # ORT serves; torch never loaded
        finally:
            server.stop()
    assert "Traceback" not in server.log_tail(200), server.log_tail(200)


@pytest.mark.labelstudio
def test_training_in_a_child_process_publishes_what_the_torch_free_server_serves(label_studio, shared_data, tmp_path):
    from test_backend_labelstudio import CONFIG, annotate, create_project, project_uid, upload

    ls = label_studio
    project = create_project(ls, "train-in-process")
    pairs = scene_files(3, offset=40, classes=["forest", "sea", "street"])
    tasks = upload(ls, project, [(p.name, p.read_bytes()) for _, p in pairs])
    by_name = {p.name: label for label, p in pairs}
    for t in tasks:
        annotate(ls, t["id"], by_name[t["data"]["image"].rsplit("/", 1)[1].split("-", 1)[1]])
    server = BackendServer(
        tmp_path / "backend",
        free_port(),
        label_studio_url=ls.url,
        label_studio_token=ls.token,
        extra_env={"PYTHONPATH": f"{torch_blocker(tmp_path)}:{REPO}", "TASVEER_TRAIN_IN": "process"},
    )
    server.start()
    try:
        uid = project_uid(ls, project)
        r = post_json(
            f"{server.url}/setup", {"project": uid, "schema": CONFIG, "hostname": ls.url, "access_token": ls.token}
        )
        assert r.status_code == 200 and r.json()["model_version"] == "INITIAL", r.text
        r = post_json(f"{server.url}/webhook", {"action": "START_TRAINING", "project": {"id": project}})
        assert r.json()["status"] == "scheduled", r.text

        def published():
            info = requests.get(f"{server.url}/projects/{project}/jobs", timeout=10).json()
            done = [j for j in info["jobs"] if j["state"] in ("done", "failed", "skipped")]
            return done[-1] if done and info["running"] is None else None

        job = wait_for(published, timeout=240, what="the worker's training job")
        assert job["state"] == "done", f"{job}\n{server.log_tail(60)}"
        vid = job["result"]["version"]
        assert (
            requests.post(f"{server.url}/setup", json={"project": uid, "schema": CONFIG}, timeout=30).json()[
                "model_version"
            ]
            == vid
        )
        r = post_json(f"{server.url}/predict", {"tasks": tasks[:3], "project": uid, "label_config": CONFIG})
        assert all(res["model_version"] == vid and "error" not in res for res in r.json()["results"]), r.text
        assert "libtorch" not in Path(f"/proc/{server.pid}/maps").read_text()
    finally:
        server.stop()
