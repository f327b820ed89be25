"""Embed every shared scene photo once per (backbone, input size, flip) into bench/out/feats/, so
head experiments (bench/head_features.py) run on cached features in seconds.

    .venv/bin/python bench/feature_sets.py [--sets efficientnet_lite0@224,efficientnet_lite0@224:flip,...]

A set is `MODEL@SIZE` (the photo as the network's eval transform gives it) or `MODEL@SIZE:flip`
(the same, mirrored left-right). ONNX Runtime, 2 threads, decode included. Files:
bench/out/feats/<model>-<size>[-flip].npy (float32, rows in `training.data.list_folder` order) and
labels.json (class names and the label of every row). Existing files are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.data import balanced_sample, list_folder  # noqa: E402
from training.embedder import embed_images  # noqa: E402
from training.images import read_image_file  # noqa: E402

DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
FEATS = REPO / "bench" / "out" / "feats"
DEFAULT_SETS = "efficientnet_lite0@224,efficientnet_lite0@224:flip,efficientnet_lite2@260,efficientnet_lite2@260:flip"


def set_path(root: Path, spec: str) -> Path:
    model, rest = spec.split("@")
    size, _, flip = rest.partition(":")
    return root / f"{model}-{size}{'-flip' if flip else ''}.npy"


def ort_for(model: str, size: int):
    from training.backbones import create_backbone
    from training.onnx_export import ensure_backbone_onnx
    from training.ort import OrtBackbone

    torch_backbone = create_backbone(model, image_size=size)
    path = ensure_backbone_onnx(Path(tempfile.mkdtemp()), torch_backbone)
    return OrtBackbone(path, torch_backbone.spec(), torch_backbone.id)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=DEFAULT_SETS)
    ap.add_argument("--out", type=Path, default=FEATS)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="120 photos, Lite0 at 128 px with and without flip, into bench/out/feats_quick",
    )
    args = ap.parse_args()
    paths, labels, classes = list_folder(DATA)
    if args.quick:
        keep = balanced_sample(labels, 120, 0)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
        args.sets, args.out = (
            "efficientnet_lite0@128,efficientnet_lite0@128:flip",
            REPO / "bench" / "out" / "feats_quick",
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "labels.json").write_text(json.dumps({"classes": classes, "labels": labels}))
    blobs = [read_image_file(p) for p in paths]
    for spec in args.sets.split(","):
        target = set_path(args.out, spec)
        if target.exists():
            print(f"{spec}: have {target.name}", flush=True)
            continue
        model, rest = spec.split("@")
        size, _, flip = rest.partition(":")
        ort = ort_for(model, int(size))
        forward = (
            (lambda arr, ort=ort: ort.forward_array(np.ascontiguousarray(arr[..., ::-1])))
            if flip
            else ort.forward_array
        )
        start = time.perf_counter()
        X = embed_images(forward, ort.preprocessing, "", ort.num_features, blobs, progress=True)
        took = time.perf_counter() - start
        np.save(target.with_suffix(".tmp.npy"), X)
        os.replace(target.with_suffix(".tmp.npy"), target)
        print(f"{spec}: {len(X)} photos in {took:.0f}s ({len(X) / took:.1f} img/s) -> {target.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
