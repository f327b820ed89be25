"""The team deployment of docker-compose.yml, proven natively on real services (no Docker engine here).

Every service the compose file names runs here from the same settings: Label Studio 1.23.2 on the
real PostgreSQL (a fresh database, pgls.py) with sync/labelstudio.py's policy settings (the ones
deploy/labelstudio.env exports), the real Redis (a key prefix of its own), an S3 server (moto in
server mode, for MinIO) holding the photos (Label Studio source storage) and the model store, two
API processes and two RQ worker processes. One worker is SIGKILLed mid-training; the job is
re-queued and the other worker publishes the version, which both API processes then serve.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
import yaml

from lsfixture import REPO_ROOT, poll, scene_dir
from pgls import label_studio_on_postgres
from rqfix import REDIS, kill_worker, redis_prefix, stop_worker  # noqa: F401 (fixture)
from s3fixture import moto_s3  # noqa: F401 (fixture)
from sync.backendproc import BackendServer
from sync.labelstudio import env_file
from sync.netutil import free_port

COMPOSE = REPO_ROOT / "docker-compose.yml"
SERVICES = {"postgres", "redis", "minio", "minio-init", "label-studio", "api", "worker"}
CLASSES = ("buildings", "forest", "sea", "street")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_is_valid_and_gives_label_studio_tasveer_up_settings(tmp_path):
    """`docker-compose config` (Debian's docker-compose 1.29; no engine needed) accepts the file
    with .env.example, and Label Studio's env file is exactly what sync/labelstudio.py exports
    for the compose file's ML network."""
    env = tmp_path / ".env"
    env.write_text((REPO_ROOT / ".env.example").read_text())
    for extra in ([], ["-f", str(REPO_ROOT / "docker-compose.gpu.yml")]):
        proc = subprocess.run(
            ["docker-compose", "--env-file", str(env), "-f", str(COMPOSE), *extra, "config"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    assert set(resolved["services"]) == SERVICES
    assert resolved["services"]["label-studio"]["image"] == "heartexlabs/label-studio:1.23.2"
    assert "change-me" not in COMPOSE.read_text()  # secrets only in .env
    subnet = compose()["networks"]["ml"]["ipam"]["config"][0]["subnet"]
    assert (REPO_ROOT / "deploy" / "labelstudio.env").read_text() == env_file([subnet])


def _ls_storage(ls, pid: int, bucket: str, endpoint: str, keys: dict) -> int:
    body = {
        "project": pid,
        "title": "photos",
        "bucket": bucket,
        "prefix": "",
        "regex_filter": r".*\.jpg",
        "use_blob_urls": True,
        "presign": True,
        "presign_ttl": 15,
        "s3_endpoint": endpoint,
        "aws_access_key_id": keys["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": keys["AWS_SECRET_ACCESS_KEY"],
        "region_name": keys["AWS_DEFAULT_REGION"],
    }
    r = requests.post(
        f"{ls.url}/api/storages/s3", json=body, headers={"Authorization": f"Token {ls.token}"}, timeout=30
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    r = requests.post(
        f"{ls.url}/api/storages/s3/{sid}/sync", headers={"Authorization": f"Token {ls.token}"}, timeout=120
    )
    assert r.status_code == 200, r.text
    return sid


@pytest.fixture
def postgres_label_studio(tmp_path):
    with label_studio_on_postgres(tmp_path) as server:
        yield server


def _storage_uri(url: str) -> str:
    """s3://... of an `s3://` URI or of LS's `/tasks/<id>/resolve/?fileuri=<base64url>` for it."""
    import base64
    from urllib.parse import parse_qs, urlsplit

    if url.startswith("s3://"):
        return url
    return base64.urlsafe_b64decode(parse_qs(urlsplit(url).query)["fileuri"][0]).decode()


def test_cluster_trains_on_a_worker_survives_a_killed_worker_and_serves_from_every_replica(
    postgres_label_studio, moto_s3, redis_prefix, tmp_path
):
    from rq.job import Job as RQJob

    from backend.jobs.redisrunner import RQJobRunner
    from lsclient import open_client
    from lsproto.tokens import LSAuth
    from sync.annotate import annotate_tasks
    from sync.predictions import ensure_predictions, tasks_with_predictions
    from sync.project import connect_backend, ensure_project
    from training.objectstore import S3Objects
    from training.store import ModelStore

    ls = postgres_label_studio
    client = open_client(LSAuth(ls.url, ls.token), timeout=60.0)
    s3 = moto_s3.client()
    photos, models = moto_s3.bucket("photos"), moto_s3.bucket("models")
    truth = {}
    for cls in CLASSES:
        for path in sorted((scene_dir() / cls).glob("*.jpg"))[:32]:
            s3.upload_file(str(path), photos, f"{cls}-{path.name}")
            truth[f"s3://{photos}/{cls}-{path.name}"] = cls
    assert len(truth) == 128

    prefix = redis_prefix
    moto_hostport = moto_s3.endpoint.split("//")[1]
    # the environment compose gives `api` and `worker` (x-tasveer), with this machine's addresses
    env = {
        **moto_s3.env,
        "REDIS_URL": REDIS,
        "TASVEER_QUEUE_PREFIX": prefix,
        "TASVEER_STORE": f"s3://{models}/models",
        "LABEL_STUDIO_URL": ls.url,
        "LABEL_STUDIO_API_KEY": ls.token,
        "TASVEER_ALLOWED_HOSTS": moto_hostport,
        "TASVEER_ENGINE": "onnx",
        "TASVEER_RQ_HEARTBEAT": "1",
        "TASVEER_RQ_GRACE": "3",
        "TASVEER_RQ_MAINTENANCE": "2",
        "TASVEER_LOG_LEVEL": "info",
    }
    assert set(compose()["x-tasveer"]["environment"]) <= set(env)
    apis, workers, logs = [], {}, []
    try:
        for i in range(2):
            api = BackendServer(
                tmp_path / f"api{i}", free_port(), label_studio_url=ls.url, label_studio_token=ls.token, extra_env=env
            )
            apis.append(api)
            api.start()

        project = ensure_project(client, "Cluster scenes", CLASSES)
        connect_backend(client, project, apis[0].url)
        _ls_storage(ls, project.id, photos, moto_s3.endpoint, moto_s3.env)
        tasks = list(client.tasks.list(project=project.id, fields="all"))
        # Label Studio's API hands tasks out with the URI resolved to its own /tasks/<id>/resolve/
        uri = {t.id: _storage_uri(t.data["image"]) for t in tasks}
        assert len(tasks) == 128 and set(uri.values()) == set(truth)
        report = ensure_predictions(client, project.id, [t.id for t in tasks], timeout=240, progress=False)
        assert report.complete, report.missing
        assert len(tasks_with_predictions(client, project.id)) == 128

        by_class = {}
        for t in tasks:
            by_class.setdefault(truth[uri[t.id]], []).append(t.id)
        corrections = [(tid, cls) for cls in CLASSES for tid in by_class[cls][:6]]
        assert len(corrections) == 24
        annotate_tasks(client, project, corrections, progress=False)
        # the workers start now: the jobs the 24 webhooks made wait in Redis (coalesced to one
        # running + one pending), and the first one reads all 24 annotations when it starts
        for name in ("w1", "w2"):
            log = open(tmp_path / f"{name}.log", "wb")
            logs.append(log)
            workers[name] = subprocess.Popen(
                [sys.executable, "-m", "backend.workers.rqworker", f"{prefix}-{name}"],
                cwd=REPO_ROOT,
                env={**os.environ, **env, "TASVEER_DATA_DIR": str(tmp_path / name)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        runner = RQJobRunner(REDIS, prefix=prefix)
        pid = str(project.id)
        queued = runner.status(pid)
        assert queued["running"]["state"] == "queued" and queued["pending"]["requests"] >= 1, queued
        running = poll(
            lambda: (runner.status(pid)["running"] or {}).get("state") == "running" and runner.status(pid)["running"],
            "running training job",
            120,
            interval=0.1,
        )
        rq_job = poll(
            lambda: RQJob.fetch(f"{prefix}-{running['id']}", connection=runner.conn).worker_name,
            "worker name",
            30,
            interval=0.1,
        )
        victim = next(n for n in workers if rq_job.endswith(n))
        kill_worker(workers[victim])  # the machine is gone: worker and work horse

        store = ModelStore(tmp_path / "check", remote=S3Objects(f"s3://{models}/models/{pid}", client=s3), poll=0)
        vid = poll(
            store.serving,
            "published version after the worker was killed",
            240,
            detail=lambda: "\n" + (tmp_path / "w1.log").read_text()[-3000:] + (tmp_path / "w2.log").read_text()[-3000:],
        )
        assert runner.wait_idle(pid, timeout=120)
        killed = runner.get(running["id"])
        assert killed.state == "done", killed.to_dict()  # re-queued and finished by the other worker
        manifest = store.manifest(store.serving())
        assert sorted(manifest["extra"]["tasks"]) == sorted(t for t, _ in corrections)  # nothing lost
        assert all(j.state in ("done", "skipped") for j in runner.jobs(pid))
        vid = store.serving()

        config = (
            project.label_config
            if isinstance(project.label_config, str)
            else client.projects.get(project.id).label_config
        )
        sample = [{"id": t.id, "data": t.data, "project": project.id} for t in tasks[:8]]
        for api in apis:  # every replica serves the new version, photos read through LS from the bucket
            r = requests.post(
                f"{api.url}/predict",
                json={"tasks": sample, "project": str(project.id), "label_config": config},
                timeout=120,
            )
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            assert all(res["model_version"] == vid and res["result"] for res in results), results[:2]
        _an_open_task_survives_a_version_written_by_a_worker(ls, project.id, apis, runner, store, vid)
    finally:
        for proc in workers.values():
            stop_worker(proc)
        for api in apis:
            api.stop()
        for log in logs:
            log.close()


def _an_open_task_survives_a_version_written_by_a_worker(ls, project_id, apis, runner, store, vid) -> None:
    """A person's submit reaches an API replica (its webhook); the version it trains is written by a
    worker, which holds the task Label Studio served that person next (the record is in Redis,
    backend/writeback/opentasks.py): their submit from the prediction they were shown is taken."""
    from lsproto.results import choice_result

    headers = {"Authorization": f"Token {ls.token}"}
    base = f"{ls.url}/api/projects/{project_id}"

    def submit(task: dict, label: str) -> requests.Response:
        body = {"result": choice_result("choice", "image", label), "project": project_id}
        body["parent_prediction"] = task["predictions"][0]["id"]
        return requests.post(f"{ls.url}/api/tasks/{task['id']}/annotations/", json=body, headers=headers, timeout=60)

    def label_of(task: dict) -> str:
        return task["predictions"][0]["result"][0]["value"]["choices"][0]

    poll(
        lambda: requests.get(base, headers=headers, timeout=30).json()["model_version"] == vid, "LS on the version", 120
    )
    first = requests.get(f"{base}/next/", headers=headers, timeout=60).json()
    assert submit(first, next(c for c in CLASSES if c != label_of(first))).status_code == 201
    second = requests.get(f"{base}/next/", headers=headers, timeout=60).json()
    assert second["predictions"][0]["model_version"] == vid
    newer = poll(lambda: store.serving() not in (None, vid) and store.serving(), "a version after the correction", 240)
    assert runner.wait_idle(str(project_id), timeout=120)
    poll(lambda: requests.get(base, headers=headers, timeout=30).json()["model_version"] == newer, "LS on it", 120)
    kept = requests.get(f"{apis[1].url}/versions", params={"project": project_id}, timeout=30).json()["kept_open"]
    assert second["id"] in kept, kept  # the replica that got no webhook knows it too
    r = submit(second, label_of(second))
    assert r.status_code == 201, r.text
