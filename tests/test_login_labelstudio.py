"""The login with a real Label Studio: a backend with TASVEER_SECRET (as `tasveer up` runs it) is
connected by Label Studio with basic auth, trains through Label Studio's webhook, its predictions show in
Label Studio, and Label Studio's own /predict call logs in too; without the login
nothing answers, and a request naming a foreign Host gets no byte of a task's photo."""

from __future__ import annotations

import pytest
import requests

import scenes
from lsfixture import backend_on, poll
from sync.importer import import_images
from sync.predictions import ensure_predictions
from sync.project import connect_backend, ensure_project, secure_webhook, verify_webhook

pytestmark = pytest.mark.labelstudio
SECRET = "label-studio-login-secret-0123456789"
AUTH = ("tasveer", SECRET)
CLASSES = ["forest", "sea", "street"]


def idle_version(url: str, project: int) -> str | None:
    info = requests.get(f"{url}/versions", params={"project": project}, auth=AUTH, timeout=30).json()
    idle = info["jobs"]["running"] is None and info["jobs"]["pending"] is None
    return info["versions"][-1] if idle and info["versions"] else None


def test_label_studio_connects_trains_and_predicts_with_the_secret(label_studio, shared_data, tmp_path):
    ls, client = label_studio, label_studio.client()
    with backend_on(ls, tmp_path / "backend", TASVEER_SECRET=SECRET) as backend:
        project = ensure_project(client, "login-secret", CLASSES)
        pid = project.id
        ml = connect_backend(client, project, backend.url, basic_auth=AUTH)  # LS's /health and /setup log in
        assert str(getattr(ml.state, "value", ml.state)) == "CO"
        secure_webhook(client, verify_webhook(client, pid, backend.url), basic_auth=AUTH)
        secured_at = len(backend.log_path.read_text(errors="replace"))  # (PROJECT_UPDATED came before: 401)
        for path in (f"/projects/{pid}/jobs", f"/projects/{pid}/page", "/health", f"/versions?project={pid}"):
            assert requests.get(backend.url + path, timeout=10).status_code == 401, path

        # annotations made in Label Studio reach /webhook (with the credentials) and train a version
        paths, labels = scenes.sample(2, seed=41, classes=CLASSES)
        tree = tmp_path / "labeled"
        for path, label in zip(paths, labels):
            (tree / label).mkdir(parents=True, exist_ok=True)
            (tree / label / path.name).symlink_to(path)
        labeled = import_images(
            client, pid, [tree], labels_from_folders=True, wait=False, progress=False, log=lambda m: None
        )
        version = poll(
            lambda: idle_version(backend.url, pid),
            "version trained through the webhook",
            300,
            detail=lambda: "\n" + backend.log_tail(),
        )
        log = backend.log_path.read_text(errors="replace")[secured_at:]
        assert '"POST /webhook HTTP/1.1" 200' in log and '"POST /webhook HTTP/1.1" 401' not in log

        # Label Studio asks /predict (Retrieve Predictions) with the login; the predictions show there
        batch = tmp_path / "batch"
        batch.mkdir()
        for path in scenes.sample(1, seed=41, classes=CLASSES, skip=2)[0]:
            (batch / path.name).symlink_to(path)
        new = import_images(client, pid, [batch], wait=False, progress=False, log=lambda m: None)
        report = ensure_predictions(
            client, pid, labeled.task_ids + new.task_ids, wait_backend=5, timeout=240, progress=False
        )
        assert report.complete, (report.missing, report.errors)
        # where Label Studio predicted a task itself (the backend 5 s late), the backend's write-back
        # replaces that prediction with its own (delete, then import): listed once both are done
        rows = poll(
            lambda: (lambda rs: rs if {r["task"] for r in rs} >= set(new.task_ids) else None)(
                client.project_predictions(pid)
            ),
            "the new tasks' predictions listed",
            60,
        )
        assert {r["model_version"] for r in rows if r["task"] in new.task_ids} == {version}
        # and Label Studio's own /predict call (its "test" of the connection, on a random task) logs in
        r = requests.post(
            f"{ls.url}/api/ml/{ml.id}/predict/test", params={"random": "true"}, headers=ls.headers, timeout=60
        )
        assert r.status_code == 200, r.text
        assert '"POST /predict HTTP/1.1" 200' in backend.log_path.read_text(errors="replace")

        # a task's photo: to a foreign Host not one byte, even with the login; to loopback the JPEG
        task = new.task_ids[0]
        photo = f"{backend.url}/projects/{pid}/tasks/{task}/image"
        for host in ("evil.example", f"evil.example:{backend.port}", f"127.0.0.1.evil.example:{backend.port}"):
            r = requests.get(photo, headers={"Host": host}, auth=AUTH, timeout=30)
            assert r.status_code == 421 and b"\xff\xd8" not in r.content and len(r.content) < 400, host
        assert requests.get(photo, timeout=30).status_code == 401
        r = requests.get(photo, auth=AUTH, timeout=60)
        assert r.status_code == 200 and r.content.startswith(b"\xff\xd8")
        assert SECRET not in backend.log_path.read_text(errors="replace")
