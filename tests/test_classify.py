"""The prediction API for applications and the production version, over real HTTP against a backend
with really trained versions: `/classify` with a raw JPEG, a multipart upload, a list of URLs (a local
image server, TASVEER_ALLOWED_HOSTS) and a corrupt image among good ones; 413 past the body limit;
409 until a version is deployed; a new labeling version leaves /classify's version alone; deploy,
rollback and history (HTTP, model page, `tasveer deploy`); API keys, basic auth, and clients off
this machine refused when nothing is configured (the app in-process: no network traffic); the
export zip and `tasveer export`; the classify path without torch. (The store's pointer:
test_store_production.py.)"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
import requests

import scenes
from backend.api.app import create_app
from backend.settings import Settings
from cli.deploy import os_user
from cli.main import main as tasveer
from imageserver import ImageServer
from test_backend_helpers import BackendThread, post_json, protocol_requests
from test_backend_protocol import publish_direct, setup_body
from training.params import TrainParams

REPO = Path(__file__).resolve().parents[1]
PARAMS = TrainParams(model="efficientnet_lite0")  # the smallest offline backbone: quick to train here
BODY_LIMIT = 300_000
CORRUPT = b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 20


# -- the backend -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos():
    paths, labels = scenes.sample(1, seed=11, classes=["forest", "sea", "street"], skip=20)
    return {p.name: p.read_bytes() for p in paths}, labels


@pytest.fixture(scope="module")
def backend(tmp_path_factory, photos):
    """A backend with two trained versions of project 1 (none deployed) and an image server it may
    download from."""
    blobs, _ = photos
    routes = {f"/{name}": data for name, data in blobs.items()} | {"/broken.jpg": CORRUPT, "/gone.jpg": 404}
    with ImageServer(routes) as images:
        port = images.httpd.server_address[1]
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("classify") / "backend",
            max_body_bytes=BODY_LIMIT,
            allowed_hosts=(f"127.0.0.1:{port}",),
            fetch_timeout=5.0,
        )
        with BackendThread(settings) as server:
            post_json(server.url + "/setup", setup_body(protocol_requests(), "http://127.0.0.1:9"))
            versions = [publish_direct(server.service, "1", per_class=n, params=PARAMS) for n in (1, 2)]
            yield server, versions, images


def classify(server, body=None, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}/projects/1/classify", data=body, timeout=120, **kwargs)


def deploy(server, vid: str) -> requests.Response:
    return requests.post(
        f"{server.url}/projects/1/production", json={"version": vid}, timeout=60, headers={"X-Tasveer-User": "tester"}
    )


def test_classify_waits_for_a_deploy_then_answers_with_production(backend, photos):
    server, (v1, v2), _ = backend
    jpeg = next(iter(photos[0].values()))
    none = classify(server, jpeg, headers={"Content-Type": "image/jpeg"})
    assert none.status_code == 409 and "tasveer deploy" in none.json()["error"]
    assert deploy(server, v1).json()["production"] == v1
    assert server.service.serving.serving_version("1") == v2  # labeling still serves its own
    r = classify(server, jpeg, headers={"Content-Type": "image/jpeg", "X-Filename": "photo.jpg"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["model_version"], answer["production"], len(answer["images"])) == (v1, True, 1)
    image = answer["images"][0]
    assert image["name"] == "photo.jpg" and image["error"] is None and image["model_version"] == v1
    assert image["label"] in scenes.CLASSES and image["label"] == image["top_k"][0]["label"]
    confidences = [t["confidence"] for t in image["top_k"]]
    assert len(confidences) == 3 and confidences == sorted(confidences, reverse=True) and 0 < sum(confidences) <= 1.0001
    one = classify(server, jpeg, headers={"Content-Type": "image/jpeg"}, params={"top_k": 1, "version": v2}).json()
    assert one["model_version"] == v2 and not one["production"] and len(one["images"][0]["top_k"]) == 1
    assert classify(server, jpeg, headers={"Content-Type": "image/jpeg"}, params={"top_k": "x"}).status_code == 422
    assert (
        classify(server, jpeg, headers={"Content-Type": "image/jpeg"}, params={"version": "v0099"}).status_code == 404
    )


def test_multipart_upload_urls_and_a_corrupt_image(backend, photos):
    server, (v1, _), images = backend
    blobs, labels = photos
    names = list(blobs)
    files = [("files", (name, blobs[name], "image/jpeg")) for name in names]
    files.insert(1, ("files", ("broken.jpg", CORRUPT, "image/jpeg")))
    r = requests.post(f"{server.url}/projects/1/classify", files=files, timeout=120)
    assert r.status_code == 200, r.text
    got = r.json()["images"]
    assert [g["name"] for g in got] == [names[0], "broken.jpg", *names[1:]]
    assert [g["index"] for g in got] == [0, 1, 2, 3]
    assert "broken.jpg" in got[1]["error"] and got[1]["label"] is None and got[1]["top_k"] == []
    assert all(g["error"] is None and g["model_version"] == v1 for g in got[:1] + got[2:])
    urls = [f"{images.url}/{name}" for name in names]
    other = images.url.replace("127.0.0.1", "localhost")  # a host not in TASVEER_ALLOWED_HOSTS
    sent = [*urls, f"{images.url}/broken.jpg", f"{images.url}/gone.jpg", f"{other}/{names[0]}"]
    by_url = requests.post(f"{server.url}/projects/1/classify", json={"urls": sent}, timeout=120)
    assert by_url.status_code == 200, by_url.text
    answers = by_url.json()["images"]
    assert [a["label"] for a in answers[:3]] == [g["label"] for g in got[:1] + got[2:]]  # the same photos
    assert answers[3]["error"] and "HTTP 404" in answers[4]["error"] and "host not allowed" in answers[5]["error"]
    assert requests.post(f"{server.url}/projects/1/classify", json={"urls": []}, timeout=30).status_code == 400
    assert (
        requests.post(
            f"{server.url}/projects/1/classify", data="x", timeout=30, headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )


def test_an_oversize_body_is_refused(backend, photos):
    server = backend[0]
    r = classify(server, b"\xff" * (BODY_LIMIT + 1), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    files = [("files", (f"{i}.jpg", b"\xff" * (BODY_LIMIT // 3), "image/jpeg")) for i in range(4)]
    assert requests.post(f"{server.url}/projects/1/classify", files=files, timeout=60).status_code == 413


def test_labeling_does_not_move_production_and_rollback_goes_back(backend, photos, tmp_path, capsys):
    server, (v1, v2), _ = backend
    jpeg = next(iter(photos[0].values()))
    v3 = publish_direct(server.service, "1", per_class=3, params=PARAMS)  # a new labeling version
    assert server.service.serving.serving_version("1") == v3
    assert classify(server, jpeg, headers={"Content-Type": "image/jpeg"}).json()["model_version"] == v1
    cli = ["--project", "1", "--backend", server.url, "--data-dir", str(tmp_path)]
    assert tasveer(["deploy", v2, *cli]) == 0 and f"production is now {v2} (was {v1})" in capsys.readouterr().out
    assert classify(server, jpeg, headers={"Content-Type": "image/jpeg"}).json()["model_version"] == v2
    page = requests.post(f"{server.url}/projects/1/deploy", json={"version": v3}, timeout=60)
    assert page.status_code == 200 and page.json()["entry"]["by"] == "model page"
    assert requests.post(f"{server.url}/projects/1/deploy", data='{"version": "v0001"}', timeout=30).status_code == 415
    assert tasveer(["deploy", "--rollback", *cli]) == 0 and f"rolled back to {v2}" in capsys.readouterr().out
    assert classify(server, jpeg, headers={"Content-Type": "image/jpeg"}).json()["model_version"] == v2
    assert tasveer(["deploy", *cli]) == 0
    shown = capsys.readouterr().out
    assert f"production {v2}; labeling serves {v3}" in shown and "by tester via cli" in shown
    info = requests.get(f"{server.url}/projects/1/production", timeout=30).json()
    history = info["history"]
    assert [(e["version"], e["via"], e["rollback"]) for e in history] == [
        (v1, "cli", False),
        (v2, "cli", False),
        (v3, "model page", False),
        (v2, "cli", True),
    ]
    assert history[0]["by"] == "tester" and history[1]["by"] == os_user() and history[1]["previous"] == v1
    assert history[0]["metrics"]["source"] and "accuracy" in history[0]["metrics"]
    html = requests.get(f"{server.url}/projects/1/page", timeout=60).text
    assert ">Production</h2>" in html and "id='production-history'" in html and "deploy to production" in html
    assert f"<b id='production'>{v2}</b>" in html and "model page" in html
    assert requests.get(f"{server.url}/projects/1/page.json", timeout=30).json()["production"] == v2
    assert tasveer(["deploy", "v0099", *cli]) == 2 and "no model version" in capsys.readouterr().err


def in_process(app, method: str, url: str, client=("10.1.2.3", 1234), **kwargs) -> httpx.Response:
    """One request to the app in this process, from `client` (no network)."""

    async def send():
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9090") as http:
            return await http.request(method, url, **kwargs)

    return asyncio.run(send())


def test_api_keys_basic_auth_and_clients_off_this_machine(backend, photos, tmp_path, capsys):
    server, _, _ = backend
    jpeg = {"content": next(iter(photos[0].values())), "headers": {"Content-Type": "image/jpeg"}}
    url = "/projects/1/classify"
    refused = in_process(server.app, "POST", url, **jpeg)
    assert refused.status_code == 403 and "tasveer deploy --new-key" in refused.json()["error"]
    assert in_process(server.app, "POST", url, client=("127.0.0.1", 5), **jpeg).status_code == 200
    assert in_process(server.app, "POST", "/projects/1/api-key", json={}).status_code == 403
    cli = ["--project", "1", "--backend", server.url, "--data-dir", str(tmp_path)]
    try:
        assert tasveer(["deploy", "--new-key", *cli]) == 0
        key = capsys.readouterr().out.split("\n")[1].strip()
        assert key.startswith("tsv_") and key not in (server.service.projects.root / "1" / "API_KEY.json").read_text()
        bearer = {"Authorization": f"Bearer {key}", "Content-Type": "image/jpeg"}
        assert in_process(server.app, "POST", url, content=jpeg["content"], headers=bearer).status_code == 200
        assert (
            in_process(
                server.app,
                "POST",
                url,
                content=jpeg["content"],
                headers={"X-API-Key": key, "Content-Type": "image/jpeg"},
            ).status_code
            == 200
        )
        wrong = in_process(
            server.app,
            "POST",
            url,
            content=jpeg["content"],
            headers={"X-API-Key": key + "x", "Content-Type": "image/jpeg"},
        )
        assert wrong.status_code == 401
        assert classify(server, jpeg["content"], headers=jpeg["headers"]).status_code == 401  # loopback: a key now
        guarded = create_app(
            Settings(data_dir=server.service.settings.data_dir, basic_auth_user="u", basic_auth_password="p")
        )
        try:
            local = ("127.0.0.1", 5)
            assert in_process(guarded, "POST", url, client=local, **jpeg).status_code == 401
            assert in_process(guarded, "POST", url, auth=("u", "p"), **jpeg).status_code == 200
            assert in_process(guarded, "POST", url, content=jpeg["content"], headers=bearer).status_code == 200
            assert in_process(guarded, "GET", "/projects/1/production", headers=bearer).status_code == 401
            assert in_process(guarded, "POST", "/projects/1/api-key", json={}, auth=("u", "p")).status_code == 200
        finally:
            guarded.state.backend.close()
    finally:
        (server.service.projects.root / "1" / "API_KEY.json").unlink(missing_ok=True)


def test_export_zip_and_openapi(backend, tmp_path, capsys):
    server, (v1, v2), _ = backend
    r = requests.get(f"{server.url}/projects/1/versions/{v1}/export", timeout=300)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    assert names == {"model.onnx", "labels.json", "MODEL_CARD.md"}
    cached = list((server.service.settings.data_dir / "cache" / "exports" / "1").glob(f"{v1}-*.zip"))
    assert len(cached) == 1 and cached[0].read_bytes() == r.content
    assert requests.get(f"{server.url}/projects/1/versions/v0099/export", timeout=30).status_code == 404
    # `tasveer export`: the production version by default, from the backend or from the store itself
    assert server.service.production.version("1") == v2 != server.service.serving.serving_version("1")
    remote = ["export", "--backend", server.url, "--project", "1", "--data-dir", str(tmp_path)]
    assert tasveer([*remote, "--out", str(tmp_path / "remote")]) == 0 and f"exported {v2}" in capsys.readouterr().out
    assert {f.name for f in (tmp_path / "remote").iterdir()} == {"model.onnx", "labels.json", "MODEL_CARD.md"}
    assert tasveer([*remote, "--version", v1, "--out", str(tmp_path / "v1")]) == 0
    assert (tmp_path / "v1" / "model.onnx").read_bytes() == zipfile.ZipFile(io.BytesIO(r.content)).read("model.onnx")
    store = server.service.serving.store("1").root
    assert tasveer(["export", "--model", str(store), "--out", str(tmp_path / "local")]) == 0
    assert f"exported {v2}" in capsys.readouterr().out
    schema = server.app.openapi()
    operation = schema["paths"]["/projects/{project}/classify"]["post"]
    assert {"image/*", "multipart/form-data", "application/json"} <= set(operation["requestBody"]["content"])
    assert {p["name"] for p in operation["parameters"]} >= {"top_k", "version"}
    answer = schema["components"]["schemas"]["ImageAnswer"]["properties"]
    assert "calibrated" in answer["confidence"]["description"] and answer["top_k"]["description"]


def test_the_classify_path_imports_no_torch(backend, photos):
    server, _, _ = backend
    jpeg = next(iter(scenes.sample(1, seed=2, classes=["sea"])[0]))
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from backend.service import Backend\nfrom backend.settings import Settings\n"
        f"b = Backend(Settings(data_dir={str(server.service.settings.data_dir)!r}, train_in='process'), resume=False)\n"
        f"r = b.classifier.classify('1', uploads=[('sea', open({str(jpeg)!r}, 'rb').read())])\n"
        "assert r['images'][0]['label'] and not r['images'][0]['error'], r\n"
        "assert not [m for m, mod in sys.modules.items() if m.split('.')[0] == 'torch' and mod is not None]\n"
        "b.close(); print(r['model_version'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == server.service.production.version("1")


@pytest.mark.labelstudio
def test_a_correction_in_label_studio_moves_labeling_not_production(label_studio, tmp_path):
    """Real Label Studio and backend process: a person's correction trains a new labeling version
    (it serves /predict), while /classify keeps answering with the deployed one."""
    from lsfixture import backend_on, run_tasveer
    from sync.annotate import annotate_tasks
    from sync.importer import import_images
    from sync.project import connect_backend, ensure_project
    from test_params_promotion import wait_idle_version

    ls, client, classes = label_studio, label_studio.client(), ["forest", "sea", "street"]
    with backend_on(ls, tmp_path / "backend") as backend:
        project = ensure_project(client, "classify-keeps-production", classes)
        connect_backend(client, project, backend.url)
        paths, labels = scenes.sample(4, seed=31, classes=classes)
        for path, label in zip(paths, labels):
            (tmp_path / "labeled" / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / "labeled" / label / path.name).symlink_to(path)
        import_images(
            client,
            project.id,
            [tmp_path / "labeled"],
            labels_from_folders=True,
            wait=False,
            progress=False,
            log=lambda m: None,
        )
        first = wait_idle_version(backend.url, project.id)["model_version"]
        cli = ["--project", str(project.id), "--backend", backend.url, "--data-dir", str(tmp_path / "none")]
        assert run_tasveer("params", *cli, "--set", "promotion_margin=1.0").returncode == 0  # any new version serves
        deployed = run_tasveer("deploy", first, *cli)
        assert deployed.returncode == 0 and f"production is now {first}" in deployed.stdout, deployed.stderr

        def classify_version() -> str:
            r = requests.post(
                f"{backend.url}/projects/{project.id}/classify",
                data=paths[0].read_bytes(),
                headers={"Content-Type": "image/jpeg"},
                timeout=120,
            )
            assert r.status_code == 200, r.text
            return r.json()["model_version"]

        assert classify_version() == first
        tasks = requests.get(
            f"{ls.url}/api/tasks", params={"project": project.id}, headers=ls.headers, timeout=30
        ).json()["tasks"]
        task = tasks[0]
        uploaded = task["data"]["image"].rsplit("/", 1)[-1]  # "<prefix>-<file name>"
        label = next(lab for path, lab in zip(paths, labels) if uploaded.endswith(path.name))
        wrong = next(c for c in classes if c != label)
        annotate_tasks(client, project, [(task["id"], wrong)], progress=False)  # the correction
        second = wait_idle_version(backend.url, project.id, not_in=(first,))["model_version"]
        assert second != first, backend.log_tail(40)
        body = {"tasks": [task], "project": str(project.id), "label_config": project.label_config}
        assert (
            requests.post(f"{backend.url}/predict", json=body, timeout=60).json()["results"][0]["model_version"]
            == second
        )
        assert classify_version() == first
        shown = run_tasveer("deploy", *cli)
        assert f"production {first}; labeling serves {second}" in shown.stdout, shown.stderr
