"""Training parameters set from the command line reach the backend and Label Studio's extra params
(one source of truth); a deliberately worse training stays a candidate; promoting it by hand changes
what /predict answers; "train accurate now" trains the accurate preset. Real Label Studio, real
backend process, real CLI."""

from __future__ import annotations

import json
import time
from contextlib import nullcontext

import pytest
import requests

import scenes
from lsfixture import run_tasveer
from sync.importer import import_images
from sync.project import connect_backend, ensure_project

pytestmark = pytest.mark.labelstudio
CLASSES = ["forest", "sea", "street"]


def wait_idle_version(backend_url: str, project: int, not_in=(), timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = requests.get(f"{backend_url}/versions", params={"project": project}, timeout=30).json()
        idle = info["jobs"]["running"] is None and info["jobs"]["pending"] is None
        if idle and info["versions"] and info["versions"][-1] not in not_in:
            return info
        time.sleep(0.5)
    pytest.fail(f"no new version within {timeout} s")


def test_params_reach_label_studio_and_a_worse_version_stays_a_candidate(
    label_studio, shared_backend, shared_data, tmp_path
):
    ls, client = label_studio, label_studio.client()
    with nullcontext(shared_backend) as backend:  # the session's backend (lsfixture), a project of its own
        project = ensure_project(client, "params-and-promotion", CLASSES)
        connect_backend(client, project, backend.url)
        paths, labels = scenes.sample(6, seed=21, classes=CLASSES)
        tree = tmp_path / "labeled"
        for path, label in zip(paths, labels):
            (tree / label).mkdir(parents=True, exist_ok=True)
            (tree / label / path.name).symlink_to(path)
        import_images(
            client, project.id, [tree], labels_from_folders=True, wait=False, progress=False, log=lambda m: None
        )
        first = wait_idle_version(backend.url, project.id)["model_version"]
        cli = ["--project", str(project.id), "--backend", backend.url, "--data-dir", str(tmp_path / "none")]

        bad = run_tasveer("params", *cli, "--set", "lr=-1")
        assert bad.returncode == 2 and "lr must be > 0" in bad.stderr and "Traceback" not in bad.stderr
        worse = {"mode": "finetune", "lr": 5.0, "epochs": 1, "image_size": 64, "augment": False}
        sets = [f"--set={k}={json.dumps(v)}" for k, v in worse.items()]
        done = run_tasveer("params", *cli, *sets, "--json")
        assert done.returncode == 0, done.stderr + backend.log_tail(40)
        assert json.loads(done.stdout)["params"] == worse
        # the same values in Label Studio's settings of the ML backend connection
        ml = requests.get(f"{ls.url}/api/ml", params={"project": project.id}, headers=ls.headers, timeout=30).json()
        assert [m["extra_params"] for m in ml] == [worse]
        shown = run_tasveer("params", *cli)
        assert "* mode" in shown.stdout and '"finetune"' in shown.stdout and "  head_c" in shown.stdout

        r = requests.post(f"{ls.url}/api/ml/{ml[0]['id']}/train", headers=ls.headers, timeout=120)
        assert r.status_code == 200, r.text  # LS's "train": a START_TRAINING webhook
        info = wait_idle_version(backend.url, project.id, not_in=(first,))
        candidate = info["versions"][-1]
        assert info["model_version"] == first, info  # the worse version does not serve
        detail = next(d for d in info["details"] if d["version"] == candidate)
        assert detail["promotion"].startswith("candidate"), detail
        listing = run_tasveer("versions", *cli)
        assert listing.returncode == 0 and "candidate" in listing.stdout and "serving" in listing.stdout

        task = requests.get(
            f"{ls.url}/api/tasks", params={"project": project.id}, headers=ls.headers, timeout=30
        ).json()["tasks"][0]
        body = {"tasks": [task], "project": str(project.id), "label_config": project.label_config}
        before = requests.post(f"{backend.url}/predict", json=body, timeout=60).json()["results"][0]
        assert before["model_version"] == first
        promoted = run_tasveer("promote", *cli, candidate)
        assert promoted.returncode == 0 and candidate in promoted.stdout, promoted.stderr
        after = requests.post(f"{backend.url}/predict", json=body, timeout=60).json()["results"][0]
        assert after["model_version"] == candidate

        # "train accurate now" (the model page's button, `tasveer retrain --preset accurate`): the
        # accurate preset over the project's parameters, recorded with the version, served only if better
        retrained = run_tasveer("retrain", *cli, "--preset", "accurate", "--wait", "--timeout", "400", "--json")
        assert retrained.returncode == 0, retrained.stderr + backend.log_tail(40)
        job = json.loads(retrained.stdout)
        assert job["state"] == "done" and job["result"]["recipe"] == "accurate", job
        assert " ..." in retrained.stderr  # phases shown while it waits
        info = wait_idle_version(backend.url, project.id, not_in=(first, candidate), timeout=60)
        assert info["versions"][-1] == job["result"]["version"]
        page = requests.get(f"{backend.url}/projects/{project.id}/page.json", timeout=30).json()
        row = next(r for r in page["versions"] if r["version"] == info["versions"][-1])
        assert row["recipe"] == "accurate" and row["mode"] == "finetune", row
        hyper = row["hyperparameters"]
        assert (hyper["image_size"], hyper["epochs"], hyper["lr"], hyper["tta"], hyper["augment"]) == (
            160,
            6,
            5e-4,
            True,
            False,
        ), hyper  # the preset's recipe; the project's other values stay
        assert row["promotion"].startswith(("served", "candidate")) and row["accuracy"] is not None
