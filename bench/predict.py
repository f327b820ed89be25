"""Prediction end to end, in one run: model time, the backend's /predict, Label Studio's import,
a naive backend's second prediction, head-only re-predict, and serving memory.

    .venv/bin/python bench/predict.py [--json] [--quick] [--keep]

Starts Label Studio 1.23.2 and `python -m backend` (ONNX Runtime, reading uploads from LS's media
dir, as `tasveer up` runs it) in a temp dir; 30 other photos are imported and annotated so that a
trained head version serves. Then, on N = 128 shared photos (16 with --quick):

  (c) ls_import_predict_s        the N photos uploaded in ONE request (like the import dialog),
                                 until every new task has a prediction in LS
  (n) tasveer_second_s           one more annotation -> a new head version; then the backend's
                                 /predict of the same N tasks (features from the embedding cache)
      naive_second_s             the same N tasks through a naive backend written below (the
                                 pattern of Label Studio's public ML backend examples): per task,
                                 the version rebuilt from disk with PyTorch, one image per call,
                                 no embedding cache
  (a1) backend_predict_s         a fresh `python -m backend` (a copy of the model store, ORT),
                                 /predict of the N tasks with empty caches, images read from LS's disk
  (a2) backend_predict_download_s  the same with images downloaded from LS over HTTP
  (b) model_ort_s, model_torch_s   `predict_proba` of the served version in this process on the N
                                 image bytes, nothing cached (decode included)
      (a1, a2, b and a1 on a torch-free server take turns in each of --repeats rounds, each
      backend's caches emptied before its request; best of the rounds)
  (r) repredict_head_s           the same with the backend's embedding cache: head only, best of 5
      serving_rss_mb             peak RSS (VmHWM) of a fresh backend with TASVEER_ENGINE=torch
                                 after /predict of the N tasks (cold caches)
      serving_rss_no_torch_mb    the same with TASVEER_TRAIN_IN=process and `import torch` made to
                                 fail in the serving process (a sitecustomize)

Each fresh backend answers a /predict of 8 already annotated (other) tasks first, so the timed
requests do not include loading the model. Every figure is one request or call, on one machine
whose cores other work may share: compare the ratios. --json prints one JSON object of the ten figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from lsproto.results import choice_result  # noqa: E402
from lsproto.tokens import LSAuth  # noqa: E402
from sync.backendproc import BackendServer  # noqa: E402
from sync.labelstudio import LabelStudioServer  # noqa: E402
from sync.netutil import free_port  # noqa: E402
from sync.predictions import tasks_with_predictions  # noqa: E402
from sync.project import connect_backend, ensure_project, verify_webhook  # noqa: E402
from sync.upload import upload_files  # noqa: E402
from training.data import balanced_sample, list_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
N_WARMUP = 30
KEYS = (
    "model_ort_s",
    "model_torch_s",
    "backend_predict_s",
    "backend_predict_download_s",
    "ls_import_predict_s",
    "naive_second_s",
    "tasveer_second_s",
    "repredict_head_s",
    "serving_rss_mb",
    "serving_rss_no_torch_mb",
)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def naive_predict(store_root: Path, vid: str, media_dir: Path, tasks: list[dict]) -> list:
    """The naive backend: per task, load the version from disk with PyTorch, predict one image."""
    from training.store import ModelStore

    out = []
    for task in tasks:
        clf = ModelStore(store_root).load(vid)
        blob = (media_dir / "upload" / task["data"]["image"][len("/data/upload/") :]).read_bytes()
        out.append(clf.predict_proba([blob])[0])
    return out


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for pid {pid}")


def torch_loaded(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


class Run:
    def __init__(self, root: Path, n: int, repeats: int):
        from lsclient import open_client

        self.root = root
        paths, labels, _ = list_folder(DATA)
        warm = balanced_sample(labels, N_WARMUP, seed=41)
        rest = [i for i in range(len(paths)) if i not in set(warm)]
        timed = [rest[j] for j in balanced_sample([labels[i] for i in rest], n, seed=42)]
        # more sets of N for the repeats of (c): each import brings photos nobody has seen
        self.more_sets, used = [], set(warm) | set(timed)
        for k in range(1, repeats):
            rest = [i for i in range(len(paths)) if i not in used]
            pick = [rest[j] for j in balanced_sample([labels[i] for i in rest], n, seed=42 + k)]
            used |= set(pick)
            self.more_sets.append([paths[i] for i in pick])
        self.warm_paths, self.warm_labels = [paths[i] for i in warm], [labels[i] for i in warm]
        self.paths, self.labels = [paths[i] for i in timed], [labels[i] for i in timed]
        self.classes = sorted(set(labels))
        self.ls = LabelStudioServer(
            root / "labelstudio",
            free_port(),
            username="bench@tasveer.local",
            password="bench-password",
            token="bench" + secrets.token_hex(16),
        )
        self.backends: list[BackendServer] = []
        self.headers = {"Authorization": f"Token {self.ls.token}"}
        self.open_client = open_client

    # -- servers ------------------------------------------------------------------------------------
    def backend(
        self, name: str, *, media: bool = True, env: dict | None = None, copy_from: Path | None = None
    ) -> BackendServer:
        data_dir = self.root / name
        if copy_from is not None:  # the model store and project state only: caches start empty
            shutil.copytree(copy_from / "projects", data_dir / "projects")
        server = BackendServer(
            data_dir,
            free_port(),
            label_studio_url=self.ls.url,
            label_studio_token=self.ls.token,
            label_studio_media_dir=self.ls.media_dir if media else None,
            extra_env={"TASVEER_ENGINE": "onnx", "CUDA_VISIBLE_DEVICES": "", **(env or {})},
        )
        self.backends.append(server)
        server.start()
        return server

    def stop(self) -> None:
        for server in self.backends:
            server.stop()
        self.ls.stop()

    # -- Label Studio -------------------------------------------------------------------------------
    def project_info(self) -> dict:
        r = requests.get(f"{self.ls.url}/api/projects/{self.pid}", headers=self.headers, timeout=60)
        r.raise_for_status()
        return r.json()

    def wait_predictions(self, task_ids, before: int, timeout: float = 600.0) -> float:
        """Monotonic time when every task in task_ids has a prediction in LS (polls the project's
        prediction count, then checks per task)."""
        wanted, deadline = set(task_ids), time.monotonic() + timeout
        while True:
            t = time.monotonic()
            if int(self.project_info().get("total_predictions_number") or 0) - before >= len(wanted):
                if tasks_with_predictions(self.client, self.pid) >= wanted:
                    return t
            if t > deadline:
                raise RuntimeError(f"not all tasks predicted after {timeout:.0f} s:\n{self.b1.log_tail()}")
            time.sleep(0.1)

    def annotate(self, task_id: int, label: str) -> None:
        r = requests.post(
            f"{self.ls.url}/api/tasks/{task_id}/annotations/",
            headers=self.headers,
            timeout=120,
            json={"result": choice_result("choice", "image", label), "project": self.pid},
        )
        if r.status_code != 201:
            raise RuntimeError(f"annotating task {task_id}: HTTP {r.status_code} {r.text[:200]}")

    def tasks(self, ids: list[int]) -> list[dict]:
        r = requests.get(
            f"{self.ls.url}/api/tasks/",
            params={"project": self.pid, "page_size": 10000},
            headers=self.headers,
            timeout=120,
        )
        r.raise_for_status()
        body = r.json()
        rows = body.get("tasks", body.get("results", [])) if isinstance(body, dict) else body
        by_id = {t["id"]: t for t in rows}
        return [{"id": i, "project": self.pid, "data": by_id[i]["data"]} for i in ids]

    # -- backend ------------------------------------------------------------------------------------
    def versions(self, server: BackendServer) -> dict:
        r = requests.get(f"{server.url}/versions", params={"project": self.pid}, timeout=30)
        r.raise_for_status()
        return r.json()

    def wait_quiet(self, server: BackendServer, not_version: str | None = "INITIAL", timeout: float = 300.0) -> str:
        """Wait until `server` serves a version other than `not_version` and no training job nor
        background prediction run is queued or running; returns the serving version."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.versions(server)
            jobs = v["jobs"]
            if v["model_version"] != not_version and jobs["running"] is None and jobs["pending"] is None:
                r = requests.get(f"{server.url}/projects/{self.pid}/jobs", timeout=30).json()
                if all(rec.get("state") in ("done", "failed") for rec in r.get("background", [])):
                    return v["model_version"]
            time.sleep(0.1)
        raise RuntimeError(f"backend did not settle in {timeout:.0f} s:\n{server.log_tail()}")

    def retrain(self, task_id: int, label: str) -> str:
        """One more annotation -> a new head version; served (promoted by hand, as `tasveer promote`
        does, when the promotion rule kept it as a candidate). Returns it once everything settled."""
        known = set(self.versions(self.b1)["versions"])
        self.annotate(task_id, label)
        deadline = time.monotonic() + 300
        while not set(self.versions(self.b1)["versions"]) - known:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no new version after an annotation:\n{self.b1.log_tail()}")
            time.sleep(0.1)
        self.wait_quiet(self.b1, not_version=None)
        new = sorted(set(self.versions(self.b1)["versions"]) - known)[-1]
        if self.versions(self.b1)["model_version"] != new:
            r = requests.post(f"{self.b1.url}/projects/{self.pid}/rollback", json={"version": new}, timeout=60)
            r.raise_for_status()
        self.wait_quiet(self.b1, not_version=None)
        return new

    def predict(self, server: BackendServer, tasks: list[dict]) -> float:
        body = {"tasks": tasks, "project": f"{self.pid}.{int(time.time())}", "label_config": self.label_config}
        t = time.perf_counter()
        r = requests.post(f"{server.url}/predict", json=body, timeout=600)
        took = time.perf_counter() - t
        r.raise_for_status()
        results = r.json()["results"]
        bad = [p for p in results if not p.get("result")]
        if len(results) != len(tasks) or bad:
            raise RuntimeError(f"/predict answered {len(results)} results, {len(bad)} without a label: {bad[:2]}")
        return took

    def fresh_predict(self, name: str, **kw) -> tuple[float, BackendServer]:
        """A fresh backend (copied store, empty caches): warm-up /predict of 8 annotated tasks, then
        the timed /predict of the N tasks. The server is left running (stopped by the caller)."""
        server = self.backend(name, copy_from=self.b1.data_dir, **kw)
        self.predict(server, self.warm_tasks[:8])
        took = self.predict(server, self.timed_tasks)
        return took, server

    # -- the run ------------------------------------------------------------------------------------
    def run(self, repeats: int) -> dict:
        f: dict = {}
        t = time.monotonic()
        self.ls.start()
        self.b1 = self.backend("backend")
        say(f"Label Studio {self.ls.url} and backend {self.b1.url} up in {time.monotonic() - t:.1f} s")
        self.client = self.open_client(LSAuth(self.ls.url, self.ls.token), timeout=300)
        project = ensure_project(self.client, "bench-predict", self.classes)
        self.pid, self.label_config = project.id, project.label_config
        connect_backend(self.client, project, self.b1.url)
        verify_webhook(self.client, self.pid, self.b1.url)

        warm_ids = upload_files(self.client, self.pid, self.warm_paths, progress=False)
        self.wait_predictions(warm_ids, 0)
        for task_id, label in zip(warm_ids, self.warm_labels):
            self.annotate(task_id, label)
        v1 = self.wait_quiet(self.b1)
        say(f"warm-up: {len(warm_ids)} annotations -> {v1}")

        # (c) N photos in one upload request -> every task has a prediction in LS; --repeats times
        # (new photos each time), taking turns with (b) ORT in this process, so both see the same load
        store_root = self.b1.data_dir / "projects" / str(self.pid) / "models"
        clfs, blobs = self.models(store_root, v1)
        best_c, best_b, ids = float("inf"), float("inf"), None
        for r, paths in enumerate([self.paths, *self.more_sets]):
            t = time.perf_counter()
            clfs["model_ort_s"].predict_proba(blobs)
            model_s = time.perf_counter() - t
            best_b = min(best_b, model_s)
            self.wait_quiet(self.b1)
            before = int(self.project_info().get("total_predictions_number") or 0)
            t0 = time.monotonic()
            got = upload_files(self.client, self.pid, paths, chunk_size=len(paths), progress=False)
            t_up = time.monotonic() - t0
            took = self.wait_predictions(got, before) - t0
            best_c = min(best_c, took)
            ids = ids or got  # the first set's tasks are the ones predicted again below
            say(
                f"(c) round {r + 1}: {len(got)} photos in one request ({t_up:.2f} s): all predicted after "
                f"{took:.2f} s; ORT model time just before: {model_s:.2f} s"
            )
        f["ls_import_predict_s"], f["_model_ort_c_rounds_s"] = best_c, best_b
        self.wait_quiet(self.b1)
        self.warm_tasks, self.timed_tasks = self.tasks(warm_ids), self.tasks(ids)

        # (n) a retrain (one more annotation -> new head version), then the second prediction
        t = time.monotonic()
        v2 = self.retrain(ids[0], self.labels[0])
        f["_versions"], f["_retrain_and_refresh_s"] = [v1, v2], time.monotonic() - t
        # (the classifiers in this process stay v1's: model time is the same for any head)
        f["tasveer_second_s"] = self.predict(self.b1, self.timed_tasks)
        say(f"(n) {v2}: tasveer's second /predict {f['tasveer_second_s']:.3f} s")
        t = time.perf_counter()
        naive_predict(store_root, v2, self.ls.media_dir, self.timed_tasks)
        f["naive_second_s"] = time.perf_counter() - t
        say(f"(n) naive second prediction {f['naive_second_s']:.2f} s")

        # (a1), (a2), (b): fresh backends (copied store, empty caches), each warmed up once; then in
        # every round, taking turns: ORT in this process, a1, PyTorch in this process, a2 and the
        # torch-free server, each backend's caches emptied before its timed /predict; best of rounds
        block = self.root / "block-torch"
        block.mkdir()
        (block / "sitecustomize.py").write_text(
            "import os, sys\nif os.environ.get('TASVEER_TRAIN_IN') == 'process':\n    sys.modules['torch'] = None\n"
        )
        servers = {
            "backend_predict_s": self.backend("backend-a1", copy_from=self.b1.data_dir),
            "backend_predict_download_s": self.backend("backend-a2", media=False, copy_from=self.b1.data_dir),
            "_backend_predict_no_torch_s": self.backend(
                "backend-notorch",
                copy_from=self.b1.data_dir,
                env={"TASVEER_TRAIN_IN": "process", "PYTHONPATH": f"{block}{os.pathsep}{REPO}"},
            ),
        }
        for server in servers.values():
            self.predict(server, self.warm_tasks[:8])  # loads the model: not part of the timed request
        best = {k: float("inf") for k in ("model_ort_s", "model_torch_s", *servers)}
        best["model_ort_s"] = f["_model_ort_c_rounds_s"]  # best of all rounds, those beside (c) too
        for r in range(repeats):
            for key in (
                "model_ort_s",
                "backend_predict_s",
                "model_torch_s",
                "backend_predict_download_s",
                "_backend_predict_no_torch_s",
            ):
                if key in servers:
                    clear_caches(servers[key].data_dir)
                    took = self.predict(servers[key], self.timed_tasks)
                else:
                    t = time.perf_counter()
                    clfs[key].predict_proba(blobs)
                    took = time.perf_counter() - t
                best[key] = min(best[key], took)
                say(f"round {r + 1}: {key} {took:.3f} s")
        f.update(best)
        f["_rss_default_mb"] = peak_rss_mb(servers["backend_predict_s"].pid)  # ORT; trainings in-process
        f["serving_rss_no_torch_mb"] = peak_rss_mb(servers["_backend_predict_no_torch_s"].pid)
        f["_rss_no_torch_loaded"] = torch_loaded(servers["_backend_predict_no_torch_s"].pid)
        for server in servers.values():
            server.stop()
        f["_rss_torch_predict_s"], server = self.fresh_predict("backend-torch", env={"TASVEER_ENGINE": "torch"})
        f["serving_rss_mb"], f["_rss_torch_loaded"] = peak_rss_mb(server.pid), torch_loaded(server.pid)
        server.stop()
        say(f"serving RSS: torch {f['serving_rss_mb']} MB, without torch {f['serving_rss_no_torch_mb']} MB")

        # (r) head only: the served version on the same bytes with the backend's embedding cache
        from training.cache import EmbeddingCache

        cache = EmbeddingCache(self.b1.data_dir / "cache")
        head = []
        for _ in range(5):
            t = time.perf_counter()
            clfs["model_ort_s"].predict_proba(blobs, cache=cache)
            head.append(time.perf_counter() - t)
        f["repredict_head_s"] = min(head)
        f["_image_size"] = clfs["model_ort_s"].backbone.image_size
        f["_torch_threads"] = self._torch_threads
        return f

    def models(self, store_root: Path, vid: str) -> tuple[dict, list[bytes]]:
        """The served version with both engines in this process, warmed up on other photos."""
        import torch

        from training.serving import load_classifier
        from training.store import ModelStore

        store = ModelStore(store_root)
        clfs = {
            "model_ort_s": load_classifier(store, vid, engine="onnx"),
            "model_torch_s": load_classifier(store, vid, engine="torch"),
        }
        warm = [p.read_bytes() for p in self.warm_paths[:8]]
        for clf in clfs.values():
            clf.predict_proba(warm)  # first-run allocations, on other photos
        self._torch_threads = torch.get_num_threads()
        return clfs, [p.read_bytes() for p in self.paths]


def clear_caches(data_dir: Path) -> None:
    """Empty a backend's embedding and image caches (it keeps its loaded model): the next /predict
    reads, hashes, decodes and embeds every image again."""
    cache = data_dir / "cache"
    for db, table in (("embeddings.sqlite", "emb"), ("urls.sqlite", "urls")):
        conn = sqlite3.connect(cache / db, timeout=30)
        with conn:
            conn.execute(f"DELETE FROM {table}")
        conn.close()
    shutil.rmtree(cache / "blobs", ignore_errors=True)


def targets(f: dict) -> list[tuple[str, str, str, bool]]:
    """(what, figure, target, met)."""
    a1 = f["backend_predict_s"] / f["model_ort_s"]
    c = f["ls_import_predict_s"] / f["model_ort_s"]
    c_turns = f["ls_import_predict_s"] / f["_model_ort_c_rounds_s"]  # (b) taken in the same rounds as (c)
    n = f["naive_second_s"] / f["tasveer_second_s"]
    return [
        ("(a1) backend /predict / ORT model time", f"{a1:.2f}x", "<= 1.5x", a1 <= 1.5),
        ("(c) LS import -> all predicted / ORT model time (best of the run)", f"{c:.2f}x", "<= 3x", c <= 3),
        ("(c) the same / ORT model time of the (c) rounds (same load)", f"{c_turns:.2f}x", "<= 3x", c_turns <= 3),
        ("(n) naive second / tasveer second", f"{n:.1f}x", ">= 5x", n >= 5),
        ("(r) head-only re-predict", f"{1000 * f['repredict_head_s']:.1f} ms", "< 50 ms", f["repredict_head_s"] < 0.05),
        ("serving RSS, torch engine", f"{f['serving_rss_mb']:.0f} MB", "< 1 GB", f["serving_rss_mb"] < 1024),
        (
            "serving RSS, no torch",
            f"{f['serving_rss_no_torch_mb']:.0f} MB",
            "< 1 GB",
            f["serving_rss_no_torch_mb"] < 1024,
        ),
    ]


def table(f: dict, n: int) -> str:
    rows = [
        ("(b) model time, ORT (decode + network + head, nothing cached)", f"{f['model_ort_s']:.3f} s"),
        ("(b) model time, PyTorch", f"{f['model_torch_s']:.3f} s"),
        ("(a1) backend /predict, images from LS's disk, cold caches", f"{f['backend_predict_s']:.3f} s"),
        ("(a2) backend /predict, images downloaded from LS, cold caches", f"{f['backend_predict_download_s']:.3f} s"),
        (
            "(a1') the same, server with TASVEER_TRAIN_IN=process (torch never imported)",
            f"{f['_backend_predict_no_torch_s']:.3f} s",
        ),
        ("(c) LS import (one request) -> every task predicted", f"{f['ls_import_predict_s']:.3f} s"),
        ("(b) ORT model time in the (c) rounds, just before each import", f"{f['_model_ort_c_rounds_s']:.3f} s"),
        ("(n) naive backend, second prediction after a retrain", f"{f['naive_second_s']:.3f} s"),
        ("(n) tasveer /predict, second prediction after a head retrain", f"{f['tasveer_second_s']:.3f} s"),
        ("(r) head-only re-predict from the embedding cache", f"{1000 * f['repredict_head_s']:.1f} ms"),
        ("serving process peak RSS, TASVEER_ENGINE=torch", f"{f['serving_rss_mb']:.0f} MB"),
        (
            "serving process peak RSS, ORT engine, trainings in the process (the a1 server)",
            f"{f['_rss_default_mb']:.0f} MB",
        ),
        ("serving process peak RSS, TASVEER_TRAIN_IN=process (no torch)", f"{f['serving_rss_no_torch_mb']:.0f} MB"),
    ]
    lines = [f"{n} photos, image size {f.get('_image_size')} px", "", "| what | figure |", "| --- | ---: |"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    lines += ["", "| target | measured | target | met |", "| --- | ---: | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else '**no**'} |" for a, b, c, ok in targets(f)]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=128, help="photos (default 128)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of the model-time measurement")
    ap.add_argument("--quick", action="store_true", help="16 photos, one round (make bench)")
    ap.add_argument("--json", action="store_true", help="print one JSON object of the ten figures")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    args = ap.parse_args()
    if args.quick:
        args.images, args.repeats = 16, 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = Path(tempfile.mkdtemp(prefix="tasveer-bench-predict-"))
    run = Run(root, args.images, args.repeats)
    try:
        figures = run.run(args.repeats)
    finally:
        run.stop()
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    say("all figures: " + json.dumps(figures, default=str))
    if args.json:
        print(json.dumps({k: round(figures[k], 6) for k in KEYS}))
    else:
        print(table(figures, args.images))
    return 0


if __name__ == "__main__":
    sys.exit(main())
