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


def post(session: requests.Session, url: str, blobs: list[bytes], seen: dict | None = None, kind: str = "") -> None:
    """One /classify request; its status, seconds (under `kind`) and image errors noted in `seen`."""
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
    if seen is not None:
        with seen["lock"]:
            seen["statuses"][status] += 1
            seen[kind].append(time.perf_counter() - t)
            seen["image_errors"] += bad


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the backend process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn, *args) -> tuple:
    """(fn's result, wall seconds, CPU seconds of this process)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t, time.process_time() - c


def one_by_one(clf, paths: list[Path], then=None) -> tuple[list[float], float]:
    """Wall seconds of `predict_proba([photo])` here per photo, and their CPU seconds in all;
    `then(blob)` after each, untimed."""
    walls, cpu = [], 0.0
    for path in paths:
        blob = path.read_bytes()
        _, wall, used = timed(clf.predict_proba, [blob])
        walls.append(wall)
        cpu += used
        if then is not None:
            then(blob)
    return walls, cpu


def concurrent(url: str, requests_of: list[list[list[bytes]]], seen: dict) -> float:
    """One client thread per list of requests, all at once, each sending its requests in turn; the wall time."""
    def client(mine: list[list[bytes]]):
        session = requests.Session()
        for blobs in mine:
            post(session, url, blobs, seen, "many")

    t = time.perf_counter()
    with ThreadPoolExecutor(len(requests_of)) as pool:
        list(pool.map(client, requests_of))
    return time.perf_counter() - t


class Bare:
    """The exported graph in a process of its own (isolated: -I, torch and tasveer blocked)."""

    def __init__(self, model: Path, threads: int, run_batch: int):
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", BARE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
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


def ms(values: list[float], q: float = 0.5) -> float:
    """The q-quantile of `values` (seconds) in milliseconds."""
    return round(1000 * sorted(values)[min(len(values) - 1, int(q * len(values)))], 2)


def single_phase(url: str, pid: int, clf, photos: Photos, args, seen: dict) -> dict:
    session = requests.Session()
    say(f"single: {args.single} photos, the model here then /classify, in turn")
    cpu = backend_cpu(pid)
    walls, used = one_by_one(clf, photos.take(args.single), lambda blob: post(session, url, [blob], seen, "one"))
    return {"model_single_p50_ms": ms(walls), "model_single_p99_ms": ms(walls, 0.99),
            "classify_single_p50_ms": ms(seen["one"]), "classify_single_p99_ms": ms(seen["one"], 0.99),
            "cpu_ms": {"model_single": used / len(walls), "classify_single": (backend_cpu(pid) - cpu) / len(walls)}}


def concurrent_phase(url: str, pid: int, clf, photos: Photos, args, seen: dict) -> dict:
    sums: Counter = Counter()
    for r in range(args.rounds):
        blobs = [p.read_bytes() for p in photos.take(CLIENTS * args.requests * PER_REQUEST)]
        _, took, used = timed(clf.predict_proba, blobs)
        chunks, cpu = [blobs[s : s + PER_REQUEST] for s in range(0, len(blobs), PER_REQUEST)], backend_cpu(pid)
        wall = concurrent(url, [chunks[c::CLIENTS] for c in range(CLIENTS)], seen)
        sums.update(model_s=took, model_cpu=used, http_s=wall, http_cpu=backend_cpu(pid) - cpu, n=len(blobs))
        say(f"round {r + 1}: {len(blobs)} photos: model here {len(blobs) / took:.1f} img/s, "
            f"{CLIENTS} clients {len(blobs) / wall:.1f} img/s")
    return {"model_batch_img_s": sums["n"] / sums["model_s"], "classify_16_clients_img_s": sums["n"] / sums["http_s"],
            "classify_16_clients_p50_ms": ms(seen["many"]), "classify_16_clients_p99_ms": ms(seen["many"], 0.99),
            "cpu_ms": {"model_batch": sums["model_cpu"] / sums["n"], "classify_16": sums["http_cpu"] / sums["n"]},
            "concurrent_photos": sums["n"]}


def exported_phase(clf, model: Path, photos: Photos, args) -> dict:
    """Taking turns, on the same photos: one batch here, the same batch there, then its first
    photos one at a time here and there."""
    import numpy as np

    from training.ort import cpu_count

    bare = Bare(model, cpu_count(), getattr(clf.backbone, "run_batch", 16))
    sums, here, there, diff = Counter(), [], [], 0.0
    try:
        bare.run(photos.take(8), single=False)  # first-run allocations
        for _ in range(args.export_rounds):
            paths = photos.take(args.export_batch)
            proba, wall, cpu = timed(clf.predict_proba, [p.read_bytes() for p in paths])
            got = bare.run(paths, single=False)
            diff = max(diff, float(np.abs(np.asarray(got["proba"]) - proba).max()))
            walls, cpu_one = one_by_one(clf, paths[: args.export_single])
            one = bare.run(paths[: args.export_single], single=True)
            here, there = here + walls, there + one["walls"]
            sums.update(here_batch=wall, here_batch_cpu=cpu, there_batch=got["walls"][0], there_batch_cpu=got["cpu"],
                        there_prep=got["prep"], here_cpu=cpu_one, there_cpu=one["cpu"])
    finally:
        bare.close()
    n_batch = args.export_rounds * args.export_batch
    return {"backend_model_single_p50_ms": ms(here), "exported_single_p50_ms": ms(there),
            "backend_model_batch_ms_per_img": 1000 * sums["here_batch"] / n_batch,
            "exported_batch_ms_per_img": 1000 * sums["there_batch"] / n_batch,
            "exported_batch_decode_ms_per_img": 1000 * sums["there_prep"] / n_batch, "exported_max_abs_diff": diff,
            "cpu_ms": {"here_single": sums["here_cpu"] / len(here), "here_batch": sums["here_batch_cpu"] / n_batch,
                       "exported_single": sums["there_cpu"] / len(there),
                       "exported_batch": sums["there_batch_cpu"] / n_batch}}


def measure(url: str, pid: int, clf, model: Path, photos: Photos, args) -> dict:
    """All three phases; one dict of figures (CPU times in ms per image under "cpu_ms")."""
    seen: dict = {"statuses": Counter(), "one": [], "many": [], "image_errors": 0, "lock": threading.Lock()}
    for blobs in ([p.read_bytes() for p in photos.take(8)], [photos.take(1)[0].read_bytes()]):
        clf.predict_proba(blobs)  # first-run allocations, here and in the backend (its model loads)
        post(requests.Session(), url, blobs)
    f: dict = {"cpu_ms": {}}
    for part in (single_phase(url, pid, clf, photos, args, seen), concurrent_phase(url, pid, clf, photos, args, seen),
                 exported_phase(clf, model, photos, args)):
        f["cpu_ms"].update({k: round(1000 * v, 2) for k, v in part.pop("cpu_ms").items()})
        f.update(part)
    statuses = seen["statuses"]
    f.update(server_errors=sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500),
             image_errors=seen["image_errors"], statuses={str(k): v for k, v in statuses.items()},
             photos={"single": args.single, "concurrent": f.pop("concurrent_photos"), "export_single":
                     args.export_rounds * args.export_single, "export_batch": args.export_batch,
                     "rounds": args.rounds, "export_rounds": args.export_rounds})
    return f


def table(f: dict) -> str:
    """Each figure against its baseline, the ratio and the target (PASS / MISS), with the CPU time
    per image of both (the backend process's, this process's, the bare process's)."""
    n, cpu = f["photos"], f["cpu_ms"]
    lines = ["| what | measured | against | ratio | target | met | CPU ms per image, measured / against |",
             "| --- | ---: | ---: | ---: | --- | --- | ---: |"]

    def row(what: str, got: float, base: float, unit: str, target: tuple | None = None, cpus=("", "")) -> None:
        ratio = got / base
        ok = None if target is None else ratio <= target[1] if target[0] == "<=" else ratio >= target[1]
        used = f"{cpu[cpus[0]]:.1f} / {cpu[cpus[1]]:.1f} ({cpu[cpus[0]] / cpu[cpus[1]]:.2f}x)" if cpus[0] else ""
        lines.append(f"| {what} | {got:.1f} {unit} | {base:.1f} {unit} | {ratio:.2f}x | "
                     f"{f'{target[0]} {target[1]}x' if target else ''} | {verdict(ok)} | {used} |")

    row(f"one image, p50 ({n['single']} photos): `/classify` vs the model here", f["classify_single_p50_ms"],
        f["model_single_p50_ms"], "ms", ("<=", 1.5), ("classify_single", "model_single"))
    row("one image, p99: the same", f["classify_single_p99_ms"], f["model_single_p99_ms"], "ms")
    row(f"{CLIENTS} clients x {PER_REQUEST} images per request ({n['concurrent']} photos in {n['rounds']} rounds; "
        f"request p50 {f['classify_16_clients_p50_ms']:.0f} ms, p99 {f['classify_16_clients_p99_ms']:.0f} ms) vs the "
        "model here on them in one call", f["classify_16_clients_img_s"], f["model_batch_img_s"], "img/s", (">=", 0.8),
        ("classify_16", "model_batch"))
    row(f"exported model.onnx in a bare onnxruntime process vs the model here: one image, p50 ({n['export_single']} "
        "photos)", f["exported_single_p50_ms"], f["backend_model_single_p50_ms"], "ms", ("<=", 1.1),
        ("exported_single", "here_single"))
    row(f"the same, batches of {n['export_batch']} ({n['export_rounds']}; max probability difference "
        f"{f['exported_max_abs_diff']:.0e}), per image (exported: decode + resize, one thread, "
        f"{f['exported_batch_decode_ms_per_img']:.1f} ms of it)", f["exported_batch_ms_per_img"],
        f["backend_model_batch_ms_per_img"], "ms", ("<=", 1.1), ("exported_batch", "here_batch"))
    lines.append(f"| 5xx or unanswered requests (all: {f['statuses']}; images with an error: {f['image_errors']}) | "
                 f"{f['server_errors']} | | | 0 | {verdict(f['server_errors'] == 0)} | |")
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
        figures = measure(f"{server.url}/projects/{PID}/classify", server.pid, clf, model, photos, args)
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
    args.train, args.single, args.requests, args.export_single, args.export_batch, args.export_rounds = (
        (30, 12, 1, 8, 16, 1) if args.quick else (60, 200, 4, 16, 128, 2 * args.rounds))
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
