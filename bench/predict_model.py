"""Pure model time, ONNX Runtime against PyTorch eager, and the memory of a serving process.

    .venv/bin/python bench/predict_model.py [--n 128] [--sizes 224,160] [--repeats 3] [--quick] [--json]

For each image size: EfficientNet-Lite0 (ImageNet) exported to ONNX, then the same photos through
both engines, best of --repeats, nothing cached:
  - "with decode":    Backbone.embed / OrtBackbone.embed on image bytes (hash, decode, resize,
                      normalise, network; decoding overlaps the network in both engines)
  - "without decode": the network alone on the already preprocessed (N, 3, S, S) batch
The four measurements take turns in each of --repeats rounds (fair under load from other work).
Then two fresh processes each load a head version from a store and predict the photos: one with
ONNX Runtime and `import torch` blocked, one with PyTorch; their peak RSS is reported.
--quick: 32 photos, one repeat (well under a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"

SERVE = """
import json, sys, time
if {block_torch}:
    sys.modules["torch"] = None  # the ONNX server must not need torch
sys.path.insert(0, {repo!r})
from pathlib import Path
def peak_rss_mb():  # VmHWM: this process's own peak (ru_maxrss would keep the parent's across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
t0 = time.perf_counter()
from training.serving import load_classifier
from training.store import ModelStore
clf = load_classifier(ModelStore({root!r}), engine={engine!r})
blobs = [Path(p).read_bytes() for p in {paths!r}]
t1 = time.perf_counter()
proba = clf.predict_proba(blobs)
t2 = time.perf_counter()
print(json.dumps({{"engine": {engine!r}, "torch_imported": sys.modules.get("torch") is not None,
                  "load_s": round(t1 - t0, 2), "predict_s": round(t2 - t1, 2),
                  "peak_rss_mb": peak_rss_mb()}}))
"""


def best_times(fns: dict, repeats: int) -> dict:
    """Best wall time of each function; the functions take turns in every round, so load from
    other work on the machine hits all of them alike. One warm-up call each first (first-run
    allocations, ORT's arena, oneDNN primitives)."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def model_times(size: int, blobs: list[bytes], repeats: int, workdir: Path) -> dict:
    from training.backbones import create_backbone
    from training.onnx_export import export_features
    from training.ort import OrtBackbone

    torch_bb = create_backbone("efficientnet_lite0", image_size=size)
    path = export_features(torch_bb.module, size, workdir / f"lite0-{size}.onnx")
    ort_bb = OrtBackbone(path, torch_bb.spec(), torch_bb.id)
    with ThreadPoolExecutor(4) as pool:
        batch, _, _ = torch_bb.preprocessing.batch(blobs, [str(i) for i in range(len(blobs))], pool)
    n = len(blobs)

    def network(bb):
        return lambda: [bb.forward_array(batch[s : s + 64]) for s in range(0, n, 64)]

    fns = {}
    for name, bb in (("onnx", ort_bb), ("torch", torch_bb)):
        fns[f"{name}_with_decode_img_s"] = lambda bb=bb: bb.embed(blobs)
        fns[f"{name}_without_decode_img_s"] = network(bb)
    row = {"image_size": size, "n": n}
    row.update({key: round(n / seconds, 1) for key, seconds in best_times(fns, repeats).items()})
    row["speedup_with_decode"] = round(row["onnx_with_decode_img_s"] / row["torch_with_decode_img_s"], 2)
    row["speedup_without_decode"] = round(row["onnx_without_decode_img_s"] / row["torch_without_decode_img_s"], 2)
    return row


def serving_rss(paths: list[str], labels: list[str], classes: list[str], workdir: Path) -> list[dict]:
    from training.images import read_image_file
    from training.params import TrainParams
    from training.store import ModelStore
    from training.train import fit

    store = ModelStore(workdir / "store")
    result = fit([read_image_file(p) for p in paths], labels, classes, TrainParams())
    store.publish(result, params=TrainParams(), plot=False)
    out = []
    for engine in ("onnx", "torch"):
        code = SERVE.format(
            block_torch=engine == "onnx", repo=str(REPO), root=str(store.root), engine=engine, paths=paths
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{engine} server failed:\n{proc.stderr[-2000:]}")
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=128, help="photos (default 128)")
    ap.add_argument("--sizes", default="224,160")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="32 photos, one repeat")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    args = ap.parse_args()
    if args.quick:
        args.n, args.repeats = 32, 1
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from training.data import balanced_sample, list_folder
    from training.images import read_image_file
    from training.ort import cpu_count

    paths, labels, classes = list_folder(DATA)
    pick = balanced_sample(labels, args.n, seed=7)
    blobs = [read_image_file(paths[i]) for i in pick]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [model_times(int(s), blobs, args.repeats, Path(tmp)) for s in args.sizes.split(",")]
        servers = serving_rss([str(paths[i]) for i in pick], [labels[i] for i in pick], classes, Path(tmp))
    result = {
        "n": args.n,
        "repeats": args.repeats,
        "cores": cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "models": rows,
        "servers": servers,
        "bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.n} photos, EfficientNet-Lite0, CPU, {result['cores']} cores, best of {args.repeats}\n")
    print("| image size | ORT with decode | PyTorch with decode | ORT network only | PyTorch network only |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['image_size']} px | {r['onnx_with_decode_img_s']} img/s | {r['torch_with_decode_img_s']} img/s"
            f" (ORT {r['speedup_with_decode']}x) | {r['onnx_without_decode_img_s']} img/s | "
            f"{r['torch_without_decode_img_s']} img/s (ORT {r['speedup_without_decode']}x) |"
        )
    print("\n| serving process (load a head version, predict the photos) | torch imported | peak RSS |")
    print("| --- | --- | ---: |")
    for s in servers:
        print(f"| {s['engine']} | {s['torch_imported']} | {s['peak_rss_mb']} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
