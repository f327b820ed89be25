"""The prediction API for applications: `/classify` against the model it serves, and the exported graph.

    .venv/bin/python bench/classify.py [--json] [--quick] [--rounds 8] [--keep]

`python -m backend` (as `tasveer up` runs it) on loopback in a temp dir, project 1 set up (/setup,
no Label Studio); the default head (Lite2, 260 px) trained here on 60 shared photos, published into
its store and deployed (the PRODUCTION pointer). Each photo sent is a distinct shared photo, sent
once (the embedding cache never answers). The model "here" is that version loaded in this process
as the backend loads it (load_classifier, engine onnx: the same ORT threads), nothing cached.
Everything takes turns, so that both sides of each ratio see the same load:

  single      per photo: `predict_proba([photo])` here, then `POST /classify` of it (raw JPEG body).
  concurrent  per round: `predict_proba` here of 128 photos in one call, then 16 client threads at
              once, each sending one multipart request of 8 of those photos.
  exported    per round: `predict_proba` here of 128 photos, then `tasveer export`'s model.onnx on
              them in a bare process (numpy, Pillow, onnxruntime; torch and tasveer blocked), fed
              as its model card says, timed inside from the bytes, session threads as the backend's;
              then 16 of those photos one at a time, here and there.

CPU time per image (the backend process's, this one's, the bare one's) is reported beside.
Targets: /classify p50 <= 1.5x the model's for one image; 16 clients >= 0.8x the batch throughput;
no 5xx or unanswered request; the exported file within 1.1x of the model here (one image p50, batch).
Exit code 1 on a 5xx or an image error (speed misses are reported, not failed). --quick (make
bench): 30 training photos, 12 single, one round, batches of 16 for the exported graph.
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
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
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
# the table: (what, timed, against, statistic, target)
ROWS = [
    ("one image, p50: `/classify` vs the model here", "classify_one", "model_one", "p50_ms", ("<=", 1.5)),
    ("one image, p99: the same", "classify_one", "model_one", "p99_ms", None),
    (
        f"{CLIENTS} clients x {PER_REQUEST} images per request vs the model here on the same photos in one call",
        "classify_16",
        "model_batch",
        "img_s",
        (">=", 0.8),
    ),
    (
        "exported model.onnx in a bare onnxruntime process vs the model here: one image, p50",
        "bare_one",
        "here_one",
        "p50_ms",
        ("<=", 1.1),
    ),
    ("the same, batches of 128 (16 with --quick), per image", "bare_batch", "here_batch", "ms_per_image", ("<=", 1.1)),
]

# The bare process: numpy, Pillow and onnxruntime only, fed as MODEL_CARD.md says. Per line on
# stdin {"paths", "single"}: those photos one at a time or as one batch, timed inside; one line back.
BARE = r"""
import json, sys, time
for name in ("torch", "training", "backend", "sync", "cli"):
    sys.modules[name] = None  # importing any of them fails here
import numpy as np, onnxruntime as ort
from io import BytesIO
from PIL import Image, ImageOps
setup = json.loads(sys.stdin.readline()); opts = ort.SessionOptions()
opts.intra_op_num_threads, opts.inter_op_num_threads = setup["threads"], 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(setup["model"], sess_options=opts, providers=["CPUExecutionProvider"])
specs, prep = json.loads(session.get_modelmeta().custom_metadata_map["inputs"]), []
def fit(img, size, interpolation):
    w, h = img.size; k = size / min(w, h); W, H = max(size, round(w * k)), max(size, round(h * k))
    img = img.resize((W, H), Image.Resampling[interpolation.upper()])
    return np.asarray(img.crop(((W - size) // 2, (H - size) // 2, (W + size) // 2, (H + size) // 2)))
def run(blobs, step=setup["run_batch"]):
    t = time.perf_counter(); imgs = [ImageOps.exif_transpose(Image.open(BytesIO(b))).convert("RGB") for b in blobs]
    feed = {name: np.stack([fit(img, **spec) for img in imgs]) for name, spec in specs.items()}
    prep.append(time.perf_counter() - t)
    return np.concatenate([session.run(["probabilities"], {k: v[s:s + step] for k, v in feed.items()})[0]
                           for s in range(0, len(blobs), step)])
for line in sys.stdin:
    job, walls, out, prep[:] = json.loads(line), [], [], []
    blobs, cpu = [open(p, "rb").read() for p in job["paths"]], time.process_time()
    for part in ([[b] for b in blobs] if job["single"] else [blobs]):
        t = time.perf_counter(); out.append(run(part)); walls.append(time.perf_counter() - t)
    assert not [m for m in ("torch", "training", "backend") if sys.modules.get(m) is not None]
    print(json.dumps({"walls": walls, "cpu": time.process_time() - cpu, "prep": sum(prep),
                      "proba": np.concatenate(out).tolist()}), flush=True)
"""


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Photos:
    """The shared photos: a balanced training set; the others in a fixed random order, each handed out once."""

    def __init__(self, n_train: int):
        paths, labels, self.classes = list_folder(DATA)
        chosen = balanced_sample(labels, n_train, seed=7)
        self.train, taken = [(paths[i], labels[i]) for i in chosen], set(chosen)
        self.rest = [p for i, p in enumerate(paths) if i not in taken]
        random.Random(0).shuffle(self.rest)

    def take(self, n: int) -> list[Path]:
        if n > len(self.rest):
            raise RuntimeError(f"not enough distinct photos left: {n} wanted, {len(self.rest)} left")
        out, self.rest = self.rest[:n], self.rest[n:]
        return out


class Tally:
    """What was timed: wall seconds per call, and in all the images and CPU seconds; HTTP statuses."""

    def __init__(self):
        self.walls: dict[str, list[float]] = defaultdict(list)
        self.sums: Counter = Counter()
        self.statuses: Counter = Counter()
        self.image_errors = 0
        self.lock = threading.Lock()

    def add(self, key: str, wall: float, cpu: float = 0.0, images: int = 1) -> None:
        with self.lock:
            self.walls[key].append(wall)
            self.sums.update({key: wall, f"{key} cpu": cpu, f"{key} images": images})

    def figures(self, key: str) -> dict:
        walls, n = sorted(self.walls[key]), self.sums[f"{key} images"]
        at = lambda q: round(1000 * walls[min(len(walls) - 1, int(q * len(walls)))], 2)  # noqa: E731
        return {
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "ms_per_image": round(1000 * self.sums[key] / n, 2),
            "img_s": round(n / self.sums[key], 2),
            "cpu_ms_per_image": round(1000 * self.sums[f"{key} cpu"] / n, 2),
            "images": n,
        }


def train_and_deploy(store_root: Path, photos: Photos) -> str:
    """The default head trained here on the training photos, published and deployed to production."""
    from training.images import content_hash
    from training.params import TrainParams
    from training.store import ModelStore, data_fingerprint
    from training.train import fit

    params = TrainParams()
    blobs, labels = [p.read_bytes() for p, _ in photos.train], [label for _, label in photos.train]
    result = fit(blobs, labels, photos.classes, params)
    store = ModelStore(store_root)
    fingerprint = data_fingerprint([content_hash(b) for b in blobs], labels)
    vid = store.publish(result, params=params, plot=False, data_fingerprint=fingerprint)
    store.deploy(vid, by="bench", via="bench/classify.py")
    return vid


def post(session: requests.Session, url: str, blobs: list[bytes], tally: Tally | None = None, key: str = "") -> None:
    """One /classify request (raw JPEG for one image, multipart for more); noted in `tally` under `key`."""
    if len(blobs) == 1:
        kwargs: dict = {"data": blobs[0], "headers": {"Content-Type": "image/jpeg"}}
    else:
        kwargs = {"files": [("files", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(blobs)]}
    t, status, bad = time.perf_counter(), "no answer", 0
    try:
        r = session.post(url, timeout=120, **kwargs)
        status, bad = r.status_code, sum(1 for i in r.json()["images"] if i["error"]) if r.status_code == 200 else 0
    except (requests.RequestException, ValueError, KeyError):
        pass
    if tally is not None:
        tally.add(key, time.perf_counter() - t, images=len(blobs))
        with tally.lock:
            tally.statuses[status] += 1
            tally.image_errors += bad


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the backend process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def here(tally: Tally, key: str, clf, blobs: list[bytes]):
    """`predict_proba` in this process, timed (wall and this process's CPU) under `key`."""
    t, c = time.perf_counter(), time.process_time()
    proba = clf.predict_proba(blobs)
    tally.add(key, time.perf_counter() - t, time.process_time() - c, len(blobs))
    return proba


class Bare:
    """The exported graph in a process of its own (isolated: -I, torch and tasveer blocked)."""

    def __init__(self, model: Path, threads: int, run_batch: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", BARE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.send({"model": str(model), "threads": threads, "run_batch": run_batch})

    def send(self, job: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job, default=str) + "\n")
        self.proc.stdin.flush()

    def run(self, paths: list[Path], single: bool) -> dict:
        self.send({"paths": paths, "single": single})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the bare onnxruntime process ended (exit {self.proc.wait(60)})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(60)


def single_phase(tally: Tally, url: str, pid: int, clf, photos: Photos, n: int) -> None:
    say(f"single: {n} photos, the model here then /classify, in turn")
    session, cpu = requests.Session(), backend_cpu(pid)
    for path in photos.take(n):
        blob = path.read_bytes()
        here(tally, "model_one", clf, [blob])
        post(session, url, [blob], tally, "classify_one")
    tally.sums["classify_one cpu"] += backend_cpu(pid) - cpu


def concurrent_phase(tally: Tally, url: str, pid: int, clf, photos: Photos, rounds: int) -> None:
    def client(blobs: list[bytes]):
        post(requests.Session(), url, blobs, tally, "classify_16 requests")

    for r in range(rounds):
        blobs = [p.read_bytes() for p in photos.take(CLIENTS * PER_REQUEST)]
        here(tally, "model_batch", clf, blobs)
        t, cpu = time.perf_counter(), backend_cpu(pid)
        with ThreadPoolExecutor(CLIENTS) as pool:  # one thread per client, all at once
            list(pool.map(client, [blobs[s : s + PER_REQUEST] for s in range(0, len(blobs), PER_REQUEST)]))
        tally.add("classify_16", time.perf_counter() - t, backend_cpu(pid) - cpu, len(blobs))
        say(
            f"round {r + 1}: {len(blobs)} photos: model here {tally.walls['model_batch'][-1]:.2f} s, "
            f"{CLIENTS} clients {tally.walls['classify_16'][-1]:.2f} s"
        )


def exported_phase(tally: Tally, clf, model: Path, photos: Photos, args) -> dict:
    """Taking turns on the same photos: a batch here, then there; its first photos one at a time, here, there."""
    import numpy as np

    from training.ort import cpu_count

    bare, diff, prep = Bare(model, cpu_count(), getattr(clf.backbone, "run_batch", 16)), 0.0, 0.0
    try:
        for _ in range(2):  # first-run allocations, each batch size (here: done by the phases before)
            bare.run(photos.take(args.export_batch), single=False)
            bare.run(photos.take(2), single=True)
        for _ in range(args.rounds):
            paths = photos.take(args.export_batch)
            proba = here(tally, "here_batch", clf, [p.read_bytes() for p in paths])
            got = bare.run(paths, single=False)
            tally.add("bare_batch", got["walls"][0], got["cpu"], len(paths))
            diff, prep = max(diff, float(np.abs(np.asarray(got["proba"]) - proba).max())), prep + got["prep"]
            for path in paths[: args.export_single]:
                here(tally, "here_one", clf, [path.read_bytes()])
                got = bare.run([path], single=True)
                tally.add("bare_one", got["walls"][0], got["cpu"])
    finally:
        bare.close()
    return {"exported_max_abs_diff": diff, "exported_decode_ms_per_image": 1000 * prep / (args.rounds * len(paths))}


def measure(url: str, pid: int, clf, model: Path, photos: Photos, args) -> dict:
    """All three phases; one dict of figures."""
    tally = Tally()
    for blobs in ([p.read_bytes() for p in photos.take(8)], [photos.take(1)[0].read_bytes()]):
        clf.predict_proba(blobs)  # first-run allocations, here and in the backend (its model loads)
        post(requests.Session(), url, blobs)
    single_phase(tally, url, pid, clf, photos, args.single)
    concurrent_phase(tally, url, pid, clf, photos, args.rounds)
    extra = exported_phase(tally, clf, model, photos, args)
    statuses = tally.statuses
    return {
        **{key: tally.figures(key) for key in tally.walls},
        **extra,
        "server_errors": sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500),
        "image_errors": tally.image_errors,
        "statuses": {str(k): v for k, v in statuses.items()},
        "rounds": args.rounds,
    }


def table(f: dict) -> str:
    """Each figure against its baseline, the ratio, the target (PASS / MISS) and the CPU time per image."""
    lines = [
        "| what | measured | against | ratio | target | met | CPU ms per image, measured / against |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for what, key, base, stat, target in ROWS:
        got, against = f[key][stat], f[base][stat]
        ratio, unit = got / against, "img/s" if stat == "img_s" else "ms"
        ok = None if target is None else ratio <= target[1] if target[0] == "<=" else ratio >= target[1]
        cpu = (f[key]["cpu_ms_per_image"], f[base]["cpu_ms_per_image"]) if stat != "p99_ms" else None
        lines.append(
            f"| {what} | {got:.1f} {unit} | {against:.1f} {unit} | {ratio:.2f}x | "
            f"{f'{target[0]} {target[1]}x' if target else ''} | {verdict(ok)} | "
            f"{f'{cpu[0]:.1f} / {cpu[1]:.1f} ({cpu[0] / cpu[1]:.2f}x)' if cpu else ''} |"
        )
    ok = f["server_errors"] == 0
    lines.append(f"| 5xx or unanswered requests | {f['server_errors']} | | | 0 | {verdict(ok)} | |")
    return "\n".join([*lines, "", notes(f)])


def notes(f: dict) -> str:
    requests_16, n = f["classify_16 requests"], {k: f[k]["images"] for k in ("classify_one", "classify_16")}
    return (
        f"Photos: {n['classify_one']} one at a time; {n['classify_16']} by {CLIENTS} clients in {f['rounds']} rounds "
        f"(request p50 {requests_16['p50_ms']:.0f} ms, p99 {requests_16['p99_ms']:.0f} ms); exported graph: "
        f"{f['bare_batch']['images']} in batches, {f['bare_one']['images']} one at a time, its decode + resize "
        f"(one thread) {f['exported_decode_ms_per_image']:.1f} ms per image, largest probability difference "
        f"{f['exported_max_abs_diff']:.0e}. Statuses {f['statuses']}; images with an error {f['image_errors']}."
    )


def verdict(ok: bool | None) -> str:
    return "" if ok is None else "PASS" if ok else "MISS"


def run(args, root: Path) -> dict:
    from training.exportgraph import export_version
    from training.serving import load_classifier
    from training.store import ModelStore

    photos = Photos(args.train)
    server = BackendServer(root / "backend", free_port(), label_studio_url=NOWHERE, label_studio_token="unused")
    server.start()
    try:
        schema = build_label_config(photos.classes)
        body = {"project": f"{PID}.{int(time.time())}", "schema": schema, "hostname": NOWHERE, "access_token": "-"}
        requests.post(f"{server.url}/setup", json=body, timeout=120).raise_for_status()
        store_root = root / "backend" / "projects" / PID / "models"
        t = time.monotonic()
        vid = train_and_deploy(store_root, photos)
        say(f"{vid} trained on {len(photos.train)} photos, published and deployed in {time.monotonic() - t:.0f} s")
        store = ModelStore(store_root)
        model = export_version(store, vid, root / "exported")
        clf = load_classifier(store, vid, engine="onnx")
        assert server.pid is not None
        return {
            "version": vid,
            **measure(f"{server.url}/projects/{PID}/classify", server.pid, clf, model, photos, args),
        }
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a little of everything (make bench)")
    ap.add_argument("--json", action="store_true", help="print one JSON object of the figures")
    ap.add_argument("--rounds", type=int, default=8, help="concurrent and exported rounds (default 8)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    args = ap.parse_args()
    args.train, args.single, args.export_single, args.export_batch = (
        (30, 12, 8, 16) if args.quick else (60, 200, 16, 128)
    )
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
