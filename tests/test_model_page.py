"""The model page's data over real HTTP against a backend with really trained versions: metrics from
the first labels (leave-one-out, with what k-fold cross-validation still needs, never a bare dash),
the page's sections, training status with its last error, "train now", parameters checked field by
field, and `retrain_every` counting annotations. (The page in a browser, with Label Studio:
test_browser_model_page.py.)"""

from __future__ import annotations

import re
import time

import pytest
import requests

import scenes
from backend.settings import Settings
from test_backend_helpers import BackendThread, post_json, protocol_requests
from test_backend_protocol import publish_direct, setup_body
from training.params import TrainParams
from training.train import fit


def test_the_first_labels_get_an_honest_estimate_and_say_what_cross_validation_needs():
    paths, labels = scenes.sample(1, seed=5, classes=["forest", "sea", "street"])
    paths2, labels2 = scenes.sample(2, seed=5, classes=["forest"], skip=1)
    blobs = scenes.read(paths + paths2)
    seen = []
    result = fit(blobs, labels + labels2, ["forest", "sea", "street"], TrainParams(), report=lambda **f: seen.append(f))
    assert result.metrics_source == "leave-one-out" and result.metrics["n"] == 5
    assert result.metrics["accuracy"] is not None and "reliability" in result.metrics
    assert result.metrics_note == "k-fold cross-validation needs 1 more label of sea, 1 more label of street"
    assert {"phase": "embedding", "step": 5, "steps": 5} in seen  # progress reports as it goes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    captured = protocol_requests()
    with BackendThread(Settings(data_dir=tmp_path_factory.mktemp("page") / "backend")) as server:
        # project 1: a Label Studio that is not there (nothing listens on port 9)
        post_json(server.url + "/setup", setup_body(captured, "http://127.0.0.1:9"))
        versions = [
            publish_direct(server.service, "1", per_class=n, params=TrainParams(head_c=c))
            for n, c in ((1, 0.002), (2, 0.01))
        ]
        # project 2: no Label Studio host known, so parameters stay in the backend
        post_json(server.url + "/setup", setup_body(captured, None, project="2.1795492545", access_token=None))
        yield server, versions


def test_page_data_has_metrics_for_every_version(server):
    server, versions = server
    data = requests.get(f"{server.url}/projects/1/page.json", timeout=30).json()
    rows = {r["version"]: r for r in data["versions"]}
    assert list(rows) == versions and data["serving"] == versions[-1] == data["selected"]
    first = rows[versions[0]]  # one label of each of six classes
    assert first["metrics_source"] == "leave-one-out" and first["accuracy"] is not None
    assert "needs 1 more label of" in first["metrics_note"] and first["n_train"] == 6
    second = rows[versions[1]]
    assert second["metrics_source"] == "cross-validation" and second["hyperparameters"] == {"head_c": 0.01}
    assert second["serving"] and second["train_seconds"] > 0 and second["ece"] is not None
    assert sum(b["n"] for b in data["selected_metrics"]["reliability"]) == 12
    old = requests.get(f"{server.url}/projects/1/page.json", params={"version": versions[0]}, timeout=30).json()
    assert old["selected"] == versions[0] and old["selected_note"] == first["metrics_note"]


def test_page_html_has_every_section(server):
    server, versions = server
    r = requests.get(f"{server.url}/projects/1/page", params={"version": versions[0]}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for heading in (
        "Training",
        "Latest batch",
        "Versions",
        f"Version {versions[0]}",
        "Learning curve",
        "Training parameters",
    ):
        assert f">{heading}</h2>" in page, heading
    assert "Cannot list the newest tasks" in page  # Label Studio is down: said, and the rest shows
    assert "aria-label='learning curve" in page and "aria-label='confusion matrix'" in page
    assert "aria-label='reliability diagram'" in page and "leave-one-out" in page
    assert "&ndash;</td>" not in page.split("id='versions'")[1].split("</table>")[0]  # no bare dash
    assert not re.findall(r"src=['\"]https?:|<link", page)  # nothing loaded from elsewhere
    assert requests.get(f"{server.url}/projects/7/page", timeout=30).status_code == 404
    assert "/projects/1/page" in requests.get(f"{server.url}/metrics", timeout=30).text


def test_params_are_checked_field_by_field_and_saved(server):
    server, _ = server
    url = f"{server.url}/projects/2/params"
    bad = requests.put(url, json={"lr": -1, "kernel_size": 4, "epochs": 3, "nonsense": 1}, timeout=30)
    assert bad.status_code == 422
    fields = bad.json()["fields"]
    assert set(fields) == {"lr", "kernel_size", "nonsense"} and fields["lr"].startswith("lr must be > 0")
    cross = requests.put(url, json={"model": "smallcnn", "mode": "head"}, timeout=30).json()["fields"]
    assert list(cross) == ["model"] and "finetune" in cross["model"]
    good = requests.put(url, json={"mode": "finetune", "lr": 0.01, "retrain_every": 2}, timeout=30)
    assert good.status_code == 200 and good.json()["params"] == {"mode": "finetune", "lr": 0.01, "retrain_every": 2}
    assert requests.put(url, data='{"lr": 1}', timeout=30).status_code == 415  # JSON content type only


def test_training_status_train_now_and_retrain_every(server):
    server, _ = server
    base = f"{server.url}/projects/2"
    assert requests.put(f"{base}/params", json={"retrain_every": 3}, timeout=30).status_code == 200
    hook = {"action": "ANNOTATION_CREATED", "project": {"id": 2}, "annotation": {"id": 1}}
    answers = [post_json(f"{server.url}/webhook", hook).json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["counted", "counted", "scheduled"], answers
    assert answers[1]["annotations_since_training"] == 2
    start = post_json(f"{server.url}/webhook", {"action": "START_TRAINING", "project": {"id": 2}}).json()
    assert start["status"] == "counted"  # LS sends one per annotation: gated by the same count
    server.service.wait_idle("2", timeout=60)

    assert requests.post(f"{base}/train", data="{}", timeout=30).status_code == 415
    job = post_json(f"{base}/train", {}).json()
    assert job["status"] in ("queued", "running", "failed")  # it fails at once here
    deadline = time.monotonic() + 60
    while (status := requests.get(f"{base}/training", timeout=30).json())["state"] != "idle":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # no Label Studio for project 2: the job fails, and the page says why
    assert status["last"]["id"] == job["job"] and status["last"]["state"] == "failed"
    assert status["last_error"]["job"] == job["job"] and "no Label Studio URL" in status["last_error"]["error"]
    assert status["last"]["progress"]["phase"] == "listing annotations"
    assert status["annotations_since_training"] == 0

    bad = post_json(f"{base}/train", {"preset": "fastest"})
    assert bad.status_code == 422 and "preset must be 'accurate'" in bad.json()["error"]
    accurate = post_json(f"{base}/train", {"preset": "accurate"}).json()
    assert server.service.wait_idle("2", timeout=60)
    assert server.service.jobs.get(accurate["job"]).reason == "train now [accurate]"
