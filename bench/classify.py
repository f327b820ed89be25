"""The prediction API for applications: `/classify` against the model it serves, and the exported graph.

    .venv/bin/python bench/classify.py [--json] [--quick] [--rounds 3] [--keep]

`python -m backend` (as `tasveer up` runs it) on loopback in a temp dir, project 1 set up (/setup,
no Label Studio); the default head (Lite2, 260 px) trained here on 60 shared photos, published into
its store and deployed (the PRODUCTION pointer). Each photo sent is a distinct shared photo, sent
once (the embedding cache never answers). The model "here" is that version loaded in this process
as the backend loads it (load_classifier, engine onnx: same ORT threads), nothing cached.

  single      per photo in turn: `predict_proba([photo])` here, then one `POST /classify` (raw JPEG).
  concurrent  per round: `predict_proba` here of the round's photos in one call, then 16 client
              threads at once, each sending REQUESTS multipart requests of 8 of those photos.
  exported    per round: `tasveer export`'s model.onnx in a bare process (numpy, Pillow, onnxruntime;
              torch and tasveer blocked), fed as its model card says, timed inside from the bytes,
              one photo at a time and one batch, session threads as the backend's; then here.

Targets: /classify p50 <= 1.5x the model's for one image; 16 clients >= 0.8x the batch throughput;
no 5xx or unanswered request; the exported file within 1.1x of the model here (one image p50, batch).
Exit code 1 on a 5xx or an image error (speed misses are reported, not failed). --quick (make
bench): 30 training photos, 12 single, one round of 16 x 1 request, 8 + 16 exported. --json: one object.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from lsproto.config import build_label_config  # noqa: E402
from sync.backendproc import BackendServer  # noqa: E402
from sync.netutil import free_port  # noqa: E402
from training.data import balanced_sample, list_folder  # noqa: E402

DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
PID = "1"
CLIENTS, PER_REQUEST = 16, 8
NOWHERE = "http://127.0.0.1:9"  # no Label Studio: /classify with uploads needs none

# The bare process: numpy, Pillow and onnxruntime only, fed as MODEL_CARD.md says; times inside.
BARE = r"""
import json, sys, time
for name in ("torch", "training", "backend", "sync", "cli"):
    sys.modules[name] = None  # importing any of them fails here
import numpy as np, onnxruntime as ort
from io import BytesIO
from PIL import Image, ImageOps
job = json.load(open(sys.argv[1])); opts = ort.SessionOptions()
opts.intra_op_num_threads, opts.inter_op_num_threads = job["threads"], 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(job["model"], sess_options=opts, providers=["CPUExecutionProvider"])
specs = json.loads(session.get_modelmeta().custom_metadata_map["inputs"])
def fit(img, size, interpolation):
    w, h = img.size; k = size / min(w, h); W, H = max(size, round(w * k)), max(size, round(h * k))
    img = img.resize((W, H), Image.Resampling[interpolation.upper()])
    return np.asarray(img.crop(((W - size) // 2, (H - size) // 2, (W + size) // 2, (H + size) // 2)))
def run(blobs, step=job["run_batch"]):
    imgs = [ImageOps.exif_transpose(Image.open(BytesIO(b))).convert("RGB") for b in blobs]
    feed = {name: np.stack([fit(img, **spec) for img in imgs]) for name, spec in specs.items()}
    return np.concatenate([session.run(["probabilities"], {k: v[s:s + step] for k, v in feed.items()})[0]
                           for s in range(0, len(blobs), step)])
read = lambda paths: [open(p, "rb").read() for p in paths]
run(read(job["warm"])); single = []
for blob in read(job["single"]):
    t = time.perf_counter(); run([blob]); single.append(time.perf_counter() - t)
batch = read(job["batch"]); t = time.perf_counter(); proba = run(batch); batch_s = time.perf_counter() - t
assert not [m for m in ("torch", "training", "backend") if sys.modules.get(m) is not None]
print(json.dumps({"single_s": single, "batch_s": batch_s, "proba": proba.tolist()}))
"""


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Photos:
    """The shared photos: a balanced training set, and the others in a fixed random order, each
    handed out once by `take`."""

    def __init__(self, n_train: int):
        paths, labels, self.classes = list_folder(DATA)
        chosen = balanced_sample(labels, n_train, seed=7)
        self.train = [(paths[i], labels[i]) for i in chosen]
        taken = set(chosen)
        self.rest = [p for i, p in enumerate(paths) if i not in taken]
        random.Random(0).shuffle(self.rest)

    def take(self, n: int) -> list[Path]:
        if n > len(self.rest):
            raise RuntimeError(f"not enough distinct photos left: {n} wanted, {len(self.rest)} left")
        out, self.rest = self.rest[:n], self.rest[n:]
        return out


def train_and_deploy(store_root: Path, photos: Photos) -> str:
    """The default head trained here on the training photos, published and deployed to production."""
    from training.images import content_hash
    from training.params import TrainParams
    from training.store import ModelStore, data_fingerprint
    from training.train import fit

    params = TrainParams()
    blobs = [p.read_bytes() for p, _ in photos.train]
    labels = [label for _, label in photos.train]
    result = fit(blobs, labels, photos.classes, params)
    store = ModelStore(store_root)
    vid = store.publish(result, params=params, plot=False,
                        data_fingerprint=data_fingerprint([content_hash(b) for b in blobs], labels))
    store.deploy(vid, by="bench", via="bench/classify.py")
    return vid


def post(session: requests.Session, url: str, blobs: list[bytes]) -> tuple[int | str, float, int]:
    """One /classify request: (status or "no answer", seconds, images answered with an error)."""
    if len(blobs) == 1:
        kwargs: dict = {"data": blobs[0], "headers": {"Content-Type": "image/jpeg"}}
    else:
        kwargs = {"files": [("files", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(blobs)]}
    t = time.perf_counter()
    try:
        r = session.post(url, timeout=120, **kwargs)
        took = time.perf_counter() - t
        bad = sum(1 for img in r.json()["images"] if img["error"]) if r.status_code == 200 else 0
        return r.status_code, took, bad
    except (requests.RequestException, ValueError, KeyError):
        return "no answer", time.perf_counter() - t, 0


def one_by_one(clf, paths: list[Path], then=None) -> list[float]:
    """Seconds of `predict_proba([photo])` here for each photo; `then(blob)` after each, untimed."""
    times = []
    for path in paths:
        blob = path.read_bytes()
        t = time.perf_counter()
        clf.predict_proba([blob])
        times.append(time.perf_counter() - t)
        if then is not None:
            then(blob)
    return times


def concurrent(url: str, requests_of: list[list[list[bytes]]], seen: dict) -> float:
    """Client threads released together, each sending its list of requests in turn; the wall time."""
    lock, gate = threading.Lock(), threading.Barrier(len(requests_of) + 1)

    def client(mine: list[list[bytes]]):
        session = requests.Session()
        gate.wait()
        for blobs in mine:
            got = post(session, url, blobs)
            with lock:
                note(seen, "many", got)

    threads = [threading.Thread(target=client, args=(mine,)) for mine in requests_of]
    for thread in threads:
        thread.start()
    gate.wait()
    t = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - t


def note(seen: dict, kind: str, got: tuple) -> None:
    status, took, errors = got
    seen["statuses"][status] += 1
    seen[kind].append(took)
    seen["image_errors"] += errors


def bare(model: Path, job: dict, work: Path) -> dict:
    """The exported graph in a process of its own (isolated: -I, torch and tasveer blocked)."""
    spec = work / "bare-job.json"
    spec.write_text(json.dumps({**job, "model": str(model)}, default=str))
    done = subprocess.run([sys.executable, "-I", "-c", BARE, str(spec)], cwd=work, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"the bare onnxruntime process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def exported_round(clf, model: Path, photos: Photos, args, work: Path) -> dict:
    """The version here, then the exported file in its own process, on the same photos."""
    import numpy as np

    from training.ort import cpu_count

    single_paths, batch_paths = photos.take(args.export_single), photos.take(args.export_batch)
    here = one_by_one(clf, single_paths)
    blobs = [p.read_bytes() for p in batch_paths]
    t = time.perf_counter()
    proba = clf.predict_proba(blobs)
    here_batch = time.perf_counter() - t
    job = {"threads": cpu_count(), "run_batch": getattr(clf.backbone, "run_batch", 16),
           "warm": photos.take(8), "single": single_paths, "batch": batch_paths}
    got = bare(model, job, work)
    return {"here": here, "here_batch": here_batch, "there": got["single_s"], "there_batch": got["batch_s"],
            "diff": float(np.abs(np.asarray(got["proba"]) - proba).max())}


def ms(values: list[float], q: float) -> float:
    """The q-quantile of `values` (seconds) in milliseconds."""
    return round(1000 * sorted(values)[min(len(values) - 1, int(q * len(values)))], 2)


def measure(url: str, clf, model: Path, photos: Photos, args, work: Path) -> dict:
    seen: dict = {"statuses": Counter(), "one": [], "many": [], "image_errors": 0}
    session = requests.Session()
    for blobs in ([p.read_bytes() for p in photos.take(8)], [photos.take(1)[0].read_bytes()]):
        clf.predict_proba(blobs)  # first-run allocations, here and in the backend (its model loads)
        post(session, url, blobs)
    say(f"single: {args.single} photos, the model here then /classify, in turn")
    model_one = one_by_one(clf, photos.take(args.single), lambda blob: note(seen, "one", post(session, url, [blob])))
    model_s = http_s = n_images = 0.0
    for r in range(args.rounds):
        blobs = [p.read_bytes() for p in photos.take(CLIENTS * args.requests * PER_REQUEST)]
        t = time.perf_counter()
        clf.predict_proba(blobs)
        took = time.perf_counter() - t
        chunks = [blobs[s : s + PER_REQUEST] for s in range(0, len(blobs), PER_REQUEST)]
        wall = concurrent(url, [chunks[c::CLIENTS] for c in range(CLIENTS)], seen)
        model_s, http_s, n_images = model_s + took, http_s + wall, n_images + len(blobs)
        say(f"round {r + 1}: {len(blobs)} photos: model here {len(blobs) / took:.1f} img/s, "
            f"{CLIENTS} clients {len(blobs) / wall:.1f} img/s")
    rounds = [exported_round(clf, model, photos, args, work) for _ in range(args.rounds)]
    here, there = [x for r in rounds for x in r["here"]], [x for r in rounds for x in r["there"]]
    return {
        "model_single_p50_ms": ms(model_one, 0.5), "model_single_p99_ms": ms(model_one, 0.99),
        "classify_single_p50_ms": ms(seen["one"], 0.5), "classify_single_p99_ms": ms(seen["one"], 0.99),
        "model_batch_img_s": round(n_images / model_s, 2), "classify_16_clients_img_s": round(n_images / http_s, 2),
        "classify_16_clients_p50_ms": ms(seen["many"], 0.5), "classify_16_clients_p99_ms": ms(seen["many"], 0.99),
        "server_errors": sum(n for s, n in seen["statuses"].items() if not isinstance(s, int) or s >= 500),
        "image_errors": seen["image_errors"], "statuses": {str(k): v for k, v in seen["statuses"].items()},
        "backend_model_single_p50_ms": ms(here, 0.5), "exported_single_p50_ms": ms(there, 0.5),
        "backend_model_batch_s": round(sum(r["here_batch"] for r in rounds), 4),
        "exported_batch_s": round(sum(r["there_batch"] for r in rounds), 4),
        "exported_max_abs_diff": max(r["diff"] for r in rounds),
        "photos": {"single": args.single, "concurrent": int(n_images), "export_single": len(here),
                   "export_batch": args.export_batch, "rounds": args.rounds},
    }


def table(f: dict) -> str:
    """The figures, each against its baseline, the ratio and the target (PASS / MISS)."""
    n = f["photos"]
    lines = ["| what | measured | against | ratio | target | met |", "| --- | ---: | ---: | ---: | --- | --- |"]

    def row(what: str, got: float, base: float, unit: str, target: tuple | None = None) -> None:
        ratio = got / base
        ok = None if target is None else ratio <= target[1] if target[0] == "<=" else ratio >= target[1]
        lines.append(f"| {what} | {got:.1f} {unit} | {base:.1f} {unit} | {ratio:.2f}x | "
                     f"{f'{target[0]} {target[1]}x' if target else ''} | {verdict(ok)} |")

    row(f"one image, p50 ({n['single']} photos): `/classify` vs the model here", f["classify_single_p50_ms"],
        f["model_single_p50_ms"], "ms", ("<=", 1.5))
    row("one image, p99: the same", f["classify_single_p99_ms"], f["model_single_p99_ms"], "ms")
    row(f"{CLIENTS} clients x {PER_REQUEST} images per request ({n['concurrent']} photos in {n['rounds']} rounds; "
        f"request p50 {f['classify_16_clients_p50_ms']:.0f} ms, p99 {f['classify_16_clients_p99_ms']:.0f} ms) vs the "
        "model here on them in one call", f["classify_16_clients_img_s"], f["model_batch_img_s"], "img/s", (">=", 0.8))
    row(f"exported model.onnx in a bare onnxruntime process vs the model here: one image, p50 ({n['export_single']} "
        "photos)", f["exported_single_p50_ms"], f["backend_model_single_p50_ms"], "ms", ("<=", 1.1))
    per_image = 1000 / (n["rounds"] * n["export_batch"])
    row(f"the same, batches of {n['export_batch']} ({n['rounds']}; max probability difference "
        f"{f['exported_max_abs_diff']:.0e}), per image", f["exported_batch_s"] * per_image,
        f["backend_model_batch_s"] * per_image, "ms", ("<=", 1.1))
    lines.append(f"| 5xx or unanswered requests (all: {f['statuses']}; images with an error: {f['image_errors']}) | "
                 f"{f['server_errors']} | | | 0 | {verdict(f['server_errors'] == 0)} |")
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return "" if ok is None else "PASS" if ok else "MISS"


def run(args, root: Path) -> dict:
    from training.exportgraph import export_version
    from training.serving import load_classifier
    from training.store import ModelStore

    photos = Photos(args.train)
    server = BackendServer(root / "backend", free_port(), label_studio_url=NOWHERE, label_studio_token="unused",
                           extra_env={"CUDA_VISIBLE_DEVICES": ""})
    server.start()
    try:
        body = {"project": f"{PID}.{int(time.time())}", "schema": build_label_config(photos.classes),
                "hostname": NOWHERE, "access_token": "unused"}
        requests.post(f"{server.url}/setup", json=body, timeout=120).raise_for_status()
        store_root = root / "backend" / "projects" / PID / "models"
        t = time.monotonic()
        vid = train_and_deploy(store_root, photos)
        say(f"{vid} trained on {len(photos.train)} photos, published and deployed in {time.monotonic() - t:.0f} s")
        store = ModelStore(store_root)
        model = export_version(store, vid, root / "exported")
        clf = load_classifier(store, vid, engine="onnx")
        figures = measure(f"{server.url}/projects/{PID}/classify", clf, model, photos, args, root)
        figures["version"] = vid
        return figures
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a little of everything (make bench)")
    ap.add_argument("--json", action="store_true", help="print one JSON object of the figures")
    ap.add_argument("--rounds", type=int, default=3, help="concurrent and exported rounds (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    args = ap.parse_args()
    args.train, args.single, args.requests, args.export_single, args.export_batch = (
        (30, 12, 1, 8, 16) if args.quick else (60, 200, 4, 32, 128))
    args.rounds = 1 if args.quick else args.rounds
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = Path(tempfile.mkdtemp(prefix="tasveer-bench-classify-"))
    try:
        figures = run(args, root)
    finally:
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures) if args.json else table(figures))
    return 1 if figures["server_errors"] or figures["image_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
