"""Load while training: many /predict clients while a finetune runs, then a burst of webhooks.

    .venv/bin/python bench/load.py [--quick] [--json] [--clients 20] [--tasks 128] [--seconds 60]

Starts Label Studio 1.23.2 and `python -m backend` (as `tasveer up` runs them: uploads read from
LS's media dir, trainings in the backend process) in a temp dir, on loopback only. Imports a pool
of shared photos, annotates PER_CLASS of each of the 6 classes and trains a head version. Then:

  load    the project is switched to finetune and a training starts; once it runs, CLIENTS threads
          each send /predict requests of TASKS tasks (drawn from the pool, so images and features
          are cached after their first use) for SECONDS seconds. Reported: requests, 5xx count,
          per-task errors, p50/p95/max latency, throughput (tasks/s), whether the finetune was still
          running when the load ended, and the backend's peak RSS (VmHWM, the whole run).
  burst   back to head mode; WEBHOOKS webhooks (ANNOTATION_CREATED) spread over BURST_S seconds,
          a new annotation made in Label Studio just before the last one. Reported: how many
          trainings the burst caused (must be <= 2) and whether the last one has the final
          annotation.

Exit code 1 when a 5xx was seen, the burst made more than 2 trainings, or the final annotation
is missing. --quick: 4 clients x 32 tasks for 8 s, 40 webhooks over 2 s, fewer photos.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from lsproto.config import build_label_config  # noqa: E402
from lsproto.results import choice_result  # noqa: E402
from sync.backendproc import BackendServer  # noqa: E402
from sync.labelstudio import LabelStudioServer  # noqa: E402
from sync.netutil import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCENES = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Bench:
    def __init__(self, root: Path, args):
        self.args = args
        self.ls = LabelStudioServer(
            root / "labelstudio",
            free_port(),
            username="bench@tasveer.local",
            password="bench-password",
            token="bench" + secrets.token_hex(16),
            backend_hosts=("127.0.0.1",),
        )
        self.backend = None
        self.root = root
        self.headers = {}

    # -- Label Studio --------------------------------------------------------------------------------
    def start(self):
        self.ls.start()
        self.headers = {"Authorization": f"Token {self.ls.token}"}
        self.backend = BackendServer(
            self.root / "backend",
            free_port(),
            label_studio_url=self.ls.url,
            label_studio_token=self.ls.token,
            label_studio_media_dir=self.ls.media_dir,
        )
        self.backend.start()

    def stop(self):
        if self.backend:
            self.backend.stop()
        self.ls.stop()

    def ls_call(self, method, path, **kw):
        r = requests.request(method, self.ls.url + path, headers=self.headers, timeout=120, **kw)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def make_project(self, per_class: int, pool_size: int):
        project = self.ls_call(
            "POST", "/api/projects", json={"title": "load", "label_config": build_label_config(CLASSES)}
        )
        self.project = project["id"]
        created = datetime.fromisoformat(project["created_at"].replace("Z", "+00:00"))
        self.uid = f"{self.project}.{int(created.timestamp())}"
        train = [(c, p) for c in CLASSES for p in sorted((SCENES / c).glob("*.jpg"))[:per_class]]
        pool = [
            (c, p)
            for c in CLASSES
            for p in sorted((SCENES / c).glob("*.jpg"))[per_class : per_class + pool_size // 6 + 1]
        ]
        self.train_tasks = self.upload(train)
        self.pool_tasks = self.upload(pool)

    def upload(self, pairs):
        tasks = []
        for start in range(0, len(pairs), 50):
            chunk = pairs[start : start + 50]
            before = {t["id"] for t in self.list_tasks()}
            files = [(f"f{i}", (p.name, p.read_bytes(), "image/jpeg")) for i, (_, p) in enumerate(chunk)]
            self.ls_call("POST", f"/api/projects/{self.project}/import", files=files)
            new = sorted((t for t in self.list_tasks() if t["id"] not in before), key=lambda t: t["id"])
            tasks += [(t, label) for t, (label, _) in zip(new, chunk)]
        return tasks

    def list_tasks(self):
        return self.ls_call("GET", "/api/tasks", params={"project": self.project, "page_size": 5000})["tasks"]

    def annotate(self, task_id: int, label: str) -> int:
        return self.ls_call(
            "POST", f"/api/tasks/{task_id}/annotations", json={"result": choice_result("choice", "image", label)}
        )["id"]

    # -- backend -------------------------------------------------------------------------------------
    def post(self, path, body, timeout=120):
        return requests.post(self.backend.url + path, json=body, timeout=timeout)

    def jobs(self):
        return requests.get(f"{self.backend.url}/projects/{self.project}/jobs", timeout=30).json()

    def wait_job(self, job_id, timeout=1800):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = next((j for j in self.jobs()["jobs"] if j["id"] == job_id), None)
            if job and job["state"] not in ("queued", "running"):
                return job
            time.sleep(0.5)
        raise RuntimeError(f"job {job_id} did not end within {timeout} s")

    def set_params(self, **params):
        r = requests.put(f"{self.backend.url}/projects/{self.project}/params", json=params, timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"PUT params: {r.status_code} {r.text}")

    def setup(self):
        body = {
            "project": self.uid,
            "schema": build_label_config(CLASSES),
            "hostname": self.ls.url,
            "access_token": self.ls.token,
            "extra_params": {"promotion_margin": 1.0},
        }
        r = self.post("/setup", body)
        if r.status_code != 200:
            raise RuntimeError(f"/setup: {r.status_code} {r.text}")

    # -- phases --------------------------------------------------------------------------------------
    def load(self, clients: int, n_tasks: int, seconds: float) -> dict:
        self.set_params(mode="finetune", epochs=self.args.epochs, promotion_margin=1.0)
        job_id = self.post("/train", {"project": self.project}).json()["job"]
        deadline = time.monotonic() + 120
        while (self.jobs()["running"] or {}).get("id") != job_id or self.jobs()["running"]["state"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError("the finetune did not start")
            time.sleep(0.2)
        pool = [{"id": t["id"], "data": t["data"]} for t, _ in self.pool_tasks]
        latencies, statuses, task_errors, lock = [], {}, [0], threading.Lock()
        stop_at = time.monotonic() + seconds

        def client(seed):
            rng = random.Random(seed)
            session = requests.Session()
            while time.monotonic() < stop_at:
                tasks = [rng.choice(pool) for _ in range(n_tasks)]
                t0 = time.monotonic()
                try:
                    r = session.post(
                        self.backend.url + "/predict", json={"tasks": tasks, "project": self.uid}, timeout=300
                    )
                    status, errors = (
                        r.status_code,
                        sum("error" in x for x in r.json().get("results", [])) if r.ok else 0,
                    )
                except requests.RequestException:
                    status, errors = "no answer", 0
                took = time.monotonic() - t0
                with lock:
                    latencies.append(took)
                    statuses[status] = statuses.get(status, 0) + 1
                    task_errors[0] += errors

        rss = [0.0]
        sampling = threading.Event()

        def sample_rss():
            while not sampling.is_set():
                rss[0] = max(rss[0], peak_rss_mb(self.backend.pid))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        sampling.set()
        still_training = (self.jobs()["running"] or {}).get("id") == job_id
        finetune = self.wait_job(job_id)
        lat = sorted(latencies)
        server_errors = sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500)
        return {
            "clients": clients,
            "tasks_per_request": n_tasks,
            "seconds": round(wall, 1),
            "requests": len(lat),
            "statuses": {str(k): v for k, v in statuses.items()},
            "server_errors": server_errors,
            "task_errors": task_errors[0],
            "p50_s": round(statistics.median(lat), 3) if lat else None,
            "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3) if lat else None,
            "max_s": round(lat[-1], 3) if lat else None,
            "tasks_per_s": round(len(lat) * n_tasks / wall, 1),
            "finetune_running_at_end": still_training,
            "finetune_state": finetune["state"],
            "finetune_s": round((finetune["finished_at"] or 0) - (finetune["started_at"] or 0), 1),
            "peak_rss_mb": round(max(rss[0], peak_rss_mb(self.backend.pid)), 1),
        }

    def burst(self, webhooks: int, seconds: float) -> dict:
        self.set_params(mode="head", promotion_margin=1.0)
        spare = [(t, label) for t, label in self.pool_tasks][-3:]
        before = {j["id"] for j in self.jobs()["jobs"]}
        final = None
        gap = seconds / webhooks
        t0 = time.monotonic()
        for i in range(webhooks):
            if i == webhooks - 1:
                task, label = spare[-1]
                final = self.annotate(task["id"], label)
            body = {
                "action": "ANNOTATION_CREATED",
                "project": {"id": self.project},
                "annotation": {"id": final or i, "project": self.project},
            }
            r = self.post("/webhook", body, timeout=10)
            if r.status_code != 200:
                raise RuntimeError(f"/webhook: {r.status_code} {r.text}")
            time.sleep(max(0.0, t0 + (i + 1) * gap - time.monotonic()))
        sent_s = time.monotonic() - t0
        deadline = time.monotonic() + 600
        while self.jobs()["running"] or self.jobs()["pending"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the burst's trainings did not end")
            time.sleep(0.5)
        new = [j for j in self.jobs()["jobs"] if j["id"] not in before]
        done = [j for j in new if j["state"] == "done"]
        has_final = False
        if done:
            vid = done[-1]["result"]["version"]
            manifest = json.loads(
                (
                    self.root
                    / "backend"
                    / "projects"
                    / str(self.project)
                    / "models"
                    / "versions"
                    / vid
                    / "manifest.json"
                ).read_text()
            )
            has_final = final in manifest["extra"]["annotations"]
        return {
            "webhooks": webhooks,
            "sent_in_s": round(sent_s, 1),
            "trainings": len(new),
            "states": [j["state"] for j in new],
            "requests_per_training": [j["requests"] for j in new],
            "last_has_final_annotation": has_final,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--clients", type=int)
    ap.add_argument("--tasks", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--epochs", type=int)
    args = ap.parse_args()
    quick = args.quick
    clients = args.clients or (4 if quick else 20)
    n_tasks = args.tasks or (32 if quick else 128)
    seconds = args.seconds or (8 if quick else 60)
    args.epochs = args.epochs or (1 if quick else 3)
    per_class, pool = (3, 36) if quick else (10, 300)
    webhooks, burst_s = (40, 2.0) if quick else (200, 10.0)
    with tempfile.TemporaryDirectory(prefix="tasveer-load-") as tmp:
        bench = Bench(Path(tmp), args)
        try:
            bench.start()
            bench.make_project(per_class, pool)
            bench.setup()
            for task, label in bench.train_tasks:
                bench.annotate(task["id"], label)
            first = bench.wait_job(bench.post("/train", {"project": bench.project}).json()["job"])
            if first["state"] != "done":
                raise RuntimeError(f"first training: {first}")
            load = bench.load(clients, n_tasks, seconds)
            burst = bench.burst(webhooks, burst_s)
        finally:
            bench.stop()
    out = {"load": load, "burst": burst}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"load : {load['clients']} clients x {load['tasks_per_request']} tasks for {load['seconds']} s "
            f"while a finetune ran (still running at the end: {load['finetune_running_at_end']}, "
            f"{load['finetune_state']} after {load['finetune_s']} s)"
        )
        print(
            f"       {load['requests']} requests, 5xx/no answer {load['server_errors']}, statuses {load['statuses']}, "
            f"per-task errors {load['task_errors']}"
        )
        print(
            f"       latency p50 {load['p50_s']} s, p95 {load['p95_s']} s, max {load['max_s']} s; "
            f"throughput {load['tasks_per_s']} tasks/s; backend peak RSS {load['peak_rss_mb']} MB"
        )
        print(
            f"burst: {burst['webhooks']} webhooks in {burst['sent_in_s']} s -> {burst['trainings']} training(s) "
            f"{burst['states']} covering {burst['requests_per_training']} requests; last has the final "
            f"annotation: {burst['last_has_final_annotation']}"
        )
    ok = load["server_errors"] == 0 and burst["trainings"] <= 2 and burst["last_has_final_annotation"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
