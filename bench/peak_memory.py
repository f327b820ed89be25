"""What the backend's two largest transient buffers cost, per batch size: speed and peak memory.

Found by tracking the backend's allocations (memray) through bench/scale.py: at its high-water mark
the two largest were ONNX Runtime's activations while embedding new photos (its arena keeps the
largest run's for the session's life) and the near-duplicate check's photo views (training/layout.py).
Each configuration runs in a fresh process (peak memory is the process's VmHWM less what it held
before the timed work), the same work per configuration, so the figures compare within one run:

  ort    OrtBackbone (training/ort.py) embedding --photos shared photos with the default network
         (exported once to a temp dir), `run_batch` images per session run;
  views  layout.pair_similarity over --photos thumbnails, 4 candidate pairs a photo (what
         duplicates.py checks per new photo, at most 16), `VIEW_BATCH` photos' views at a time.

    .venv/bin/python bench/peak_memory.py [--ort 16,8,4,2] [--views 64,16,8,4] [--photos 400] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data" / "intel-scenes" / "train"


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def photos(n: int) -> list[bytes]:
    files = sorted(DATA.glob("*/*.jpg"))
    step = max(1, len(files) // n)
    return [f.read_bytes() for f in files[::step][:n]]


def one_ort(graph: Path, run_batch: int, n: int) -> dict:
    from training.ort import OrtBackbone

    spec = json.loads((graph.parent / "spec.json").read_text())
    backbone = OrtBackbone(graph, spec["spec"], spec["id"], run_batch=run_batch)
    blobs = photos(n)
    backbone.embed(blobs[:4])
    before = peak_mb()
    start = time.perf_counter()
    backbone.embed(blobs)
    seconds = time.perf_counter() - start
    return {"photos_per_s": round(n / seconds, 1), "peak_mb": round(peak_mb() - before)}


def one_views(batch: int, n: int) -> dict:
    import numpy as np

    from training import layout

    layout.VIEW_BATCH = batch
    thumbs = np.stack([layout.thumbnail(b) for b in photos(n)])
    rng = np.random.default_rng(0)
    a = np.repeat(np.arange(n // 5, n), 4)
    b = rng.integers(0, n // 5, len(a))
    layout.filters()
    before = peak_mb()
    start = time.perf_counter()
    layout.pair_similarity(thumbs, a, b)
    seconds = time.perf_counter() - start
    return {"pairs": len(a), "seconds": round(seconds, 2), "peak_mb": round(peak_mb() - before)}


def export(folder: Path) -> Path:
    """The default network's feature graph and its spec, as a version's store keeps them."""
    from training.onnx_export import export_features
    from training.params import TrainParams
    from training.train import backbone_for

    backbone = backbone_for(TrainParams())
    graph = export_features(backbone.module, backbone.image_size, folder / "features.onnx")
    (folder / "spec.json").write_text(json.dumps({"spec": backbone.spec(), "id": backbone.id}))
    return graph


def fresh(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--one", *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ort", default="16,8,4,2", help="run_batch values for ONNX Runtime")
    parser.add_argument("--views", default="64,16,8,4", help="VIEW_BATCH values for the duplicate check")
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, value, *rest = args.one
        out = one_ort(Path(rest[0]), int(value), args.photos) if kind == "ort" else one_views(int(value), args.photos)
        print(json.dumps(out))
        return 0
    results: dict = {"photos": args.photos, "ort": {}, "views": {}}
    with tempfile.TemporaryDirectory() as tmp:
        graph = export(Path(tmp))
        for value in [v for v in args.ort.split(",") if v]:
            results["ort"][value] = fresh("ort", value, str(graph))
    for value in [v for v in args.views.split(",") if v]:
        results["views"][value] = fresh("views", value)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"ONNX Runtime, {args.photos} photos:  run_batch  photos/s  peak MB")
    for value, r in results["ort"].items():
        print(f"{'':38}{value:>9}{r['photos_per_s']:>10}{r['peak_mb']:>9}")
    print(f"duplicate check, {args.photos} photos:  VIEW_BATCH  pairs  seconds  peak MB")
    for value, r in results["views"].items():
        print(f"{'':36}{value:>11}{r['pairs']:>7}{r['seconds']:>9}{r['peak_mb']:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
