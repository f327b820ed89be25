"""Security defects found in review, each shown fixed over real HTTP against the real app:
a token never leaves for another host, no cross-site form can change the serving version, deeply
nested JSON is a 400, a GET creates nothing, a head is never fitted on random features, and a 500
carries no internals."""

from __future__ import annotations

import json

import pytest
import requests

from backend.settings import Settings
from test_backend_helpers import BackendThread, post_json, protocol_requests
from test_backend_protocol import TOKEN, publish_direct, setup_body
from training.params import ParamError, TrainParams

LS = "http://127.0.0.1:18080"


@pytest.fixture
def backend(tmp_path):
    with BackendThread(
        Settings(data_dir=tmp_path / "backend", label_studio_url=LS, label_studio_api_key="env-token-0123456789")
    ) as server:
        yield server


def test_setup_with_another_host_and_no_token_keeps_no_token(backend):
    captured = protocol_requests()
    assert post_json(backend.url + "/setup", setup_body(captured, LS)).status_code == 200
    projects = backend.service.projects
    assert projects.connection(projects.state("1")) == (LS, TOKEN)
    body = setup_body(captured, "http://attacker.example:8080")
    del body["access_token"]
    assert post_json(backend.url + "/setup", body).status_code == 200
    host, token = projects.connection(projects.state("1"))
    assert host == "http://attacker.example:8080" and token is None  # neither the stored nor the env token
    # the environment's token is for the environment's Label Studio only
    body = setup_body(captured, LS)
    del body["access_token"]
    post_json(backend.url + "/setup", body)
    assert projects.connection(projects.state("1")) == (LS, "env-token-0123456789")


def test_a_cross_site_form_post_cannot_roll_back(backend):
    post_json(backend.url + "/setup", setup_body(protocol_requests(), LS))
    first = publish_direct(backend.service, "1", per_class=2)
    second = publish_direct(backend.service, "1", per_class=3)
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = requests.post(
            f"{backend.url}/projects/1/rollback",
            data=json.dumps({"version": first}),
            headers={"Content-Type": kind},
            timeout=10,
        )
        assert r.status_code == 415 and "application/json" in r.json()["error"], r.text
    assert backend.service.serving.model_version("1") == second
    r = post_json(f"{backend.url}/projects/1/rollback", {"version": first})
    assert r.status_code == 200 and backend.service.serving.model_version("1") == first


def test_deeply_nested_json_is_a_400_and_the_service_keeps_serving(backend):
    for path in ("/setup", "/predict", "/webhook"):
        r = requests.post(
            backend.url + path,
            data="[" * 200_000 + "]" * 200_000,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 400 and "nested too deeply" in r.json()["error"], r.text
    assert requests.get(backend.url + "/health", timeout=5).json()["status"] == "UP"


def test_a_get_for_an_unknown_project_leaves_nothing_on_disk(backend, tmp_path):
    for path in (
        "/projects/77/versions/v0001/confusion.png",
        "/versions/v0001/confusion.png?project=77",
        "/projects/77/jobs",
        "/versions?project=77",
        "/metrics?project=77",
    ):
        requests.get(backend.url + path, timeout=10)
    assert not (tmp_path / "backend" / "projects" / "77").exists()


@pytest.mark.parametrize(
    "values", [{"model": "smallcnn"}, {"pretrained": False}, {"model": "smallcnn", "mode": "head", "pretrained": False}]
)
def test_a_head_on_random_features_is_refused(backend, values):
    with pytest.raises(ParamError, match="needs a pretrained backbone"):
        TrainParams.from_dict(values)
    r = post_json(backend.url + "/setup", setup_body(protocol_requests(), LS, extra_params=values))
    assert r.status_code == 422 and "needs a pretrained backbone" in r.json()["error"], r.text
    assert TrainParams.from_dict({**values, "mode": "finetune"}).mode == "finetune"


def test_a_server_error_tells_no_internals(backend, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret detail /etc/passwd token=abc")

    monkeypatch.setattr(backend.service.serving, "versions", boom)  # any unexpected failure inside
    r = requests.get(backend.url + "/versions?project=1", timeout=10)
    assert r.status_code == 500 and "secret" not in r.text and "ref " in r.json()["error"]
