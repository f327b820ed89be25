"""Which input size serves best on the 100x100 scene photos: head accuracy against inference speed.

The photos are 100x100 and are upsampled to the backbone's size. For each size, every shared photo
is embedded with ONNX Runtime (the serving engine) and the product's head (C = 0.002) is trained on
300 / 1,200 / all labels of the 80 % pool and scored on the fixed held-out 20 % (seed 0, as
bench/accuracy.py). Speed: ONNX Runtime images per second on 128 photos, decode included, nothing
cached, measured in this run for every size.

    .venv/bin/python bench/input_size.py [--sizes 224,160,128] [--quick] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.backbones import create_backbone  # noqa: E402
from training.cache import EmbeddingCache  # noqa: E402
from training.data import balanced_sample, list_folder, stratified_split  # noqa: E402
from training.head import fit_linear  # noqa: E402
from training.images import read_image_file  # noqa: E402
from training.onnx_export import ensure_backbone_onnx  # noqa: E402
from training.ort import OrtBackbone  # noqa: E402

DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="224,160,128")
    ap.add_argument("--labels", default="300,1200,all")
    ap.add_argument(
        "--cache", type=Path, default=Path(os.environ.get("TASVEER_CACHE") or REPO / "bench" / "out" / "cache")
    )
    ap.add_argument("--quick", action="store_true", help="600 photos, one size pair (make bench)")
    args = ap.parse_args()
    paths, labels, classes = list_folder(DATA)
    if args.quick:
        keep = balanced_sample(labels, 600, 0)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
        args.sizes, args.labels = "224,160", "300"
    y = np.array([classes.index(label) for label in labels])
    rest, held = stratified_split(labels, 0.2, 0)
    blobs = [read_image_file(p) for p in paths]
    graphs = Path(tempfile.mkdtemp())
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        torch_backbone = create_backbone("efficientnet_lite0", image_size=size)
        ort = OrtBackbone(ensure_backbone_onnx(graphs, torch_backbone), torch_backbone.spec(), torch_backbone.id)
        start = time.perf_counter()
        ort.embed(blobs[:128])  # nothing cached: decode + network
        speed = 128 / (time.perf_counter() - start)
        X = ort.embed(blobs, cache=EmbeddingCache(args.cache), progress=True)
        row = {"size": size, "img_per_s": speed}
        for n in args.labels.split(","):
            count = len(rest) if n == "all" else int(n)
            pick = np.array([rest[i] for i in balanced_sample([labels[i] for i in rest], count, 0)])
            W, b = fit_linear(X[pick], y[pick], len(classes), 0.002, 0)
            row[n] = float(np.mean((X[held] @ W.T + b).argmax(axis=1) == y[held]))
        rows.append(row)
        print(row, flush=True)
    heads = args.labels.split(",")
    print(
        "\n| input size | ORT img/s (128 photos, decode included) | " + " | ".join(f"{h} labels" for h in heads) + " |"
    )
    print("| ---: | ---: | " + " | ".join("---:" for _ in heads) + " |")
    for r in rows:
        print(f"| {r['size']} px | {r['img_per_s']:.1f} | " + " | ".join(f"{r[h]:.1%}" for h in heads) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
