"""Pre-annotation through the whole product, against model time alone; and annotation -> new version.

    .venv/bin/python bench/preannotate.py [--images 128] [--keep]

Starts Label Studio and the backend (`python -m backend`) in a temp dir, creates a project and
connects the backend, as `tasveer up` does. Then:

  warm-up  30 other photos are imported and annotated through LS's API, so the backend trains a
           real version (later predictions run the network, not the cold-start shortcut).
  (a)      end-to-end pre-annotation: upload N photos the backend has never seen, like LS's import
           dialog (sync.upload.upload_files), and time until every new task has a prediction in LS
           (polling GET /api/predictions/). LS sends TASKS_CREATED during the upload; the backend
           downloads, decodes, embeds, classifies and writes the predictions back.
  (b)      pure model time: the same version loaded in this process from the backend's model store,
           `predict_proba` on the same N image bytes with no embedding cache (decode + network),
           after a warm-up on other photos; best of 2. Ratio (a) / (b).
  (c)      annotation -> new version served: one more annotation through LS's API, timed until the
           backend's /versions names a new serving version (polled every 50 ms); the image is
           already embedded. 3 repeats, median.

Prints one JSON line with all figures, then a markdown table. Figures only, no asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from lsproto.results import choice_result  # noqa: E402
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


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, ls: LabelStudioServer, backend: BackendServer):
        from lsclient import open_client
        from lsproto.tokens import LSAuth

        self.ls, self.backend = ls, backend
        self.headers = {"Authorization": f"Token {ls.token}"}
        self.client = open_client(LSAuth(ls.url, ls.token), timeout=300)
        self.project = None

    def versions(self) -> dict:
        r = requests.get(f"{self.backend.url}/versions", params={"project": self.project.id}, timeout=30)
        r.raise_for_status()
        return r.json()

    def wait_idle_version(self, not_this: str | None, timeout: float = 300.0) -> str:
        """Wait until the backend serves a version other than `not_this` and no job runs or waits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.versions()
            if (
                v["model_version"] not in ("INITIAL", not_this)
                and v["jobs"]["running"] is None
                and v["jobs"]["pending"] is None
            ):
                return v["model_version"]
            time.sleep(0.2)
        raise RuntimeError(f"no trained version after {timeout:.0f} s; backend log:\n{self.backend.log_tail()}")

    def wait_idle(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.versions()["jobs"]
            if jobs["running"] is None and jobs["pending"] is None:
                return
            time.sleep(0.1)
        raise RuntimeError("backend training did not settle")

    def prediction_count(self) -> int:
        """The project's prediction count (one cheap request; lists nothing)."""
        r = requests.get(f"{self.ls.url}/api/projects/{self.project.id}", headers=self.headers, timeout=60)
        r.raise_for_status()
        return int(r.json().get("total_predictions_number") or 0)

    def wait_predictions(self, task_ids, before: int = 0, timeout: float = 600.0, poll: float = 0.2) -> float:
        """Monotonic time at which every task in task_ids had a prediction in LS. Polls the project's
        prediction count (cheap, so polling does not slow LS down) until it grew by len(task_ids),
        then checks per task with GET /api/predictions/ (polling that again until complete)."""
        wanted = set(task_ids)
        deadline = time.monotonic() + timeout
        self.polls = []
        while True:
            t = time.monotonic()
            count = self.prediction_count()
            self.polls.append(time.monotonic() - t)
            if count - before >= len(wanted):
                got = tasks_with_predictions(self.client, self.project.id) & wanted
                if got == wanted:
                    return t
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"not all {len(wanted)} tasks have a prediction after {timeout:.0f} s; "
                    f"backend log:\n{self.backend.log_tail()}"
                )
            time.sleep(poll)

    def annotate(self, task_id: int, label: str) -> None:
        r = requests.post(
            f"{self.ls.url}/api/tasks/{task_id}/annotations/",
            headers=self.headers,
            timeout=120,
            json={"result": choice_result("choice", "image", label), "project": self.project.id},
        )
        if r.status_code != 201:
            raise RuntimeError(f"annotating task {task_id}: HTTP {r.status_code} {r.text[:200]}")

    def predictions(self) -> list[dict]:
        r = requests.get(
            f"{self.ls.url}/api/predictions/", params={"project": self.project.id}, headers=self.headers, timeout=60
        )
        r.raise_for_status()
        data = r.json()
        return data.get("results", data) if isinstance(data, dict) else data


def pick_images(n: int) -> tuple[list[Path], list[str], list[Path], list[str]]:
    """(warm-up paths, labels, timed paths, labels): balanced, seeded, disjoint."""
    paths, labels, _ = list_folder(DATA)
    warm = balanced_sample(labels, N_WARMUP, seed=21)
    taken = set(warm)
    rest = [i for i in range(len(paths)) if i not in taken]
    timed = [rest[j] for j in balanced_sample([labels[i] for i in rest], n, seed=22)]
    return ([paths[i] for i in warm], [labels[i] for i in warm], [paths[i] for i in timed], [labels[i] for i in timed])


def run(args, root: Path) -> dict:
    warm_paths, warm_labels, paths, labels = pick_images(args.images)
    classes = sorted(set(warm_labels) | set(labels))
    figures: dict = {"images": len(paths), "host": platform.node(), "cpus": os.cpu_count()}

    t = time.monotonic()
    ls = LabelStudioServer(
        root / "labelstudio",
        free_port(),
        username="bench@tasveer.local",
        password="bench-password",
        token="bench" + secrets.token_hex(16),
    )
    ls.start()
    backend = BackendServer(
        root / "backend",
        free_port(),
        label_studio_url=ls.url,
        label_studio_token=ls.token,
        label_studio_media_dir=ls.media_dir,
    )  # same disk, as `tasveer up` sets it
    try:
        backend.start()
        figures["startup_s"] = round(time.monotonic() - t, 1)
        say(f"Label Studio {ls.url} and backend {backend.url} up in {figures['startup_s']} s")
        b = Bench(ls, backend)
        b.project = ensure_project(b.client, "bench-preannotate", classes)
        connect_backend(b.client, b.project, backend.url)
        verify_webhook(b.client, b.project.id, backend.url)

        # warm-up: a trained version, from 30 other photos annotated through LS
        warm_ids = upload_files(b.client, b.project.id, warm_paths, progress=False)
        b.wait_predictions(warm_ids)
        t = time.monotonic()
        for task_id, label in zip(warm_ids, warm_labels):
            b.annotate(task_id, label)
        vid = b.wait_idle_version(None)
        figures["warmup_version"] = vid
        figures["warmup_train_s"] = round(time.monotonic() - t, 2)
        say(f"warm-up: {len(warm_ids)} annotations -> {vid} in {figures['warmup_train_s']} s")

        # (a) end to end: upload -> every task has a prediction in LS
        before = b.prediction_count()
        t0, t0_wall = time.monotonic(), time.time()
        task_ids = upload_files(b.client, b.project.id, paths, progress=False)
        t_uploaded = time.monotonic()
        t_done = b.wait_predictions(task_ids, before)
        figures["e2e_polls"] = len(b.polls)
        figures["e2e_poll_ms"] = round(1000 * statistics.mean(b.polls), 1)
        figures["e2e_s"] = round(t_done - t0, 2)
        figures["e2e_upload_s"] = round(t_uploaded - t0, 2)
        new = [p for p in b.predictions() if p["task"] in set(task_ids)]
        figures["e2e_versions"] = sorted({p["model_version"] for p in new})
        figures["e2e_accuracy"] = round(
            sum(
                p["result"][0]["value"]["choices"][0] == dict(zip(task_ids, labels))[p["task"]]
                for p in new
                if p["result"]
            )
            / len(task_ids),
            3,
        )
        runs = requests.get(f"{backend.url}/projects/{b.project.id}/jobs", timeout=30).json()["background"]
        timed_runs = [r for r in runs if r.get("submitted_at", 0) >= t0_wall]
        if timed_runs and all(r.get("finished_at") for r in timed_runs):
            figures["e2e_backend_busy_s"] = round(
                max(r.get("finished_at", 0) for r in timed_runs) - min(r["submitted_at"] for r in timed_runs), 2
            )
        say(
            f"(a) {len(task_ids)} images: upload {figures['e2e_upload_s']} s, all predicted after "
            f"{figures['e2e_s']} s (versions {figures['e2e_versions']})"
        )

        # (b) pure model time in this process, same version, no embedding cache
        import torch

        from training.store import ModelStore

        store = ModelStore(backend.data_dir / "projects" / str(b.project.id) / "models")
        served = figures["e2e_versions"][0]
        clf = store.load(served)
        blobs = [p.read_bytes() for p in paths]
        clf.predict_proba([p.read_bytes() for p in warm_paths[:8]])  # warm up the network, other photos
        times = []
        for _ in range(2):
            t = time.perf_counter()
            clf.predict_proba(blobs)
            times.append(time.perf_counter() - t)
        figures["pure_s"] = round(min(times), 2)
        figures["pure_runs_s"] = [round(x, 2) for x in times]
        figures["pure_threads"] = torch.get_num_threads()
        figures["ratio_e2e_over_pure"] = round(figures["e2e_s"] / figures["pure_s"], 2)
        say(f"(b) predict_proba on {len(blobs)} images: {figures['pure_s']} s; ratio {figures['ratio_e2e_over_pure']}")
        del clf

        # (c) one more annotation -> a new version served
        b.wait_idle()
        current = b.versions()["model_version"]
        samples, post_s = [], []
        for i in range(args.repeats):
            t0 = time.monotonic()
            b.annotate(task_ids[i], labels[i])
            post_s.append(time.monotonic() - t0)
            while True:
                v = b.versions()["model_version"]
                if v != current:
                    break
                if time.monotonic() - t0 > 120:
                    raise RuntimeError(f"no new version 120 s after an annotation; log:\n{backend.log_tail()}")
                time.sleep(0.05)
            samples.append(time.monotonic() - t0)
            say(f"(c) annotation {i + 1}: {v} served after {samples[-1]:.2f} s (LS request {post_s[-1]:.2f} s)")
            current = v
            b.wait_idle()
        figures["annotation_to_version_s"] = [round(x, 2) for x in samples]
        figures["annotation_to_version_median_s"] = round(statistics.median(samples), 2)
        figures["annotation_request_s"] = [round(x, 2) for x in post_s]
        mf = store.manifest(current)
        figures["last_version"] = current
        figures["last_version_train_s"] = mf.get("train_seconds")
        figures["last_version_n_train"] = mf.get("n_train")
    finally:
        backend.stop()
        ls.stop()
    return figures


def table(f: dict) -> str:
    rows = [
        ("Label Studio + backend start-up", f"{f['startup_s']} s", ""),
        (f"warm-up: {N_WARMUP} annotations -> first version", f"{f['warmup_train_s']} s", ""),
        (
            f"(a) upload {f['images']} images -> all predicted in LS",
            f"{f['e2e_s']} s",
            f"upload requests {f['e2e_upload_s']} s; backend TASKS_CREATED work "
            f"{f.get('e2e_backend_busy_s', '?')} s; version {', '.join(f['e2e_versions'])}; "
            f"accuracy {f['e2e_accuracy']:.1%}",
        ),
        (
            f"(b) predict_proba on the same {f['images']} images, no cache",
            f"{f['pure_s']} s",
            f"{f['pure_threads']} torch threads; runs {f['pure_runs_s']}",
        ),
        ("(a) / (b)", f"{f['ratio_e2e_over_pure']}x", "target <= 1.5x"),
        (
            "(c) annotation -> new version served, median",
            f"{f['annotation_to_version_median_s']} s",
            f"runs {f['annotation_to_version_s']}; target < 3 s",
        ),
    ]
    lines = ["| step | time | notes |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=128, help="photos in the timed import (default 128)")
    ap.add_argument("--repeats", type=int, default=3, help="annotation -> version repeats (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (LS and backend data, logs)")
    ap.add_argument("--quick", action="store_true", help="a small run that checks the benchmark works (make bench)")
    args = ap.parse_args()
    if args.quick:
        args.images, args.repeats = 16, 1
    root = Path(tempfile.mkdtemp(prefix="tasveer-bench-"))
    try:
        figures = run(args, root)
    finally:
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures))
    print()
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
