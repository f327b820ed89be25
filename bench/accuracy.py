"""Label efficiency: accuracy on a fixed held-out 20 % of the shared scene photos for growing
numbers of training labels, head mode and finetune mode, with the wall time of each run.

    .venv/bin/python bench/accuracy.py                      # everything (about 30 min on 2 cores)
    .venv/bin/python bench/accuracy.py --modes head         # head mode only (about 5 min)

Each head run starts from an empty embedding cache, so its time includes embedding its own
training images (the held-out embeddings are computed once and shared). Prints a markdown table
and writes bench/out/accuracy.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.backbones import create_backbone  # noqa: E402
from training.cache import EmbeddingCache  # noqa: E402
from training.data import balanced_sample, list_folder, stratified_split  # noqa: E402
from training.images import read_image_file  # noqa: E402
from training.metrics import evaluate  # noqa: E402
from training.params import TrainParams  # noqa: E402
from training.train import fit  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="60,300,1200,all")
    ap.add_argument("--modes", default="head,finetune")
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ft-image-size", type=int, default=128)
    ap.add_argument("--ft-epochs", default="12,6,3,2", help="finetune epochs per size, in --sizes order")
    ap.add_argument("--ft-lr", type=float, default=5e-4)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "accuracy.json")
    ap.add_argument("--quick", action="store_true", help="a small run that checks the benchmark works (make bench)")
    args = ap.parse_args()
    if args.quick:
        args.holdout, args.sizes, args.ft_epochs, args.ft_image_size = 0.02, "60", "1", 64

    paths, labels, classes = list_folder(DATA)
    rest, held = stratified_split(labels, args.holdout, args.seed)
    test_blobs = [read_image_file(paths[i]) for i in held]
    test_labels = [labels[i] for i in held]
    rest_labels = [labels[i] for i in rest]
    sizes = [len(rest) if s == "all" else int(s) for s in args.sizes.split(",")]
    ft_epochs = [int(e) for e in args.ft_epochs.split(",")]
    print(f"{len(paths)} photos, {len(classes)} classes; held out {len(held)}, training pool {len(rest)}",
          flush=True)

    rows = []
    lite0 = create_backbone("efficientnet_lite0")
    shared = EmbeddingCache(Path(tempfile.mkdtemp()) / "eval")
    t = time.perf_counter()
    lite0.embed(test_blobs, cache=shared, progress=True)
    print(f"held-out embeddings: {time.perf_counter() - t:.1f}s", flush=True)
    for mode in args.modes.split(","):
        for k, n in enumerate(sizes):
            pick = [rest[i] for i in balanced_sample(rest_labels, n, args.seed)]
            blobs = [read_image_file(paths[i]) for i in pick]
            ys = [labels[i] for i in pick]
            if mode == "head":
                params = TrainParams()
                cache = EmbeddingCache(Path(tempfile.mkdtemp()) / "train")
                t = time.perf_counter()
                result = fit(blobs, ys, classes, params, cache=cache, backbone=lite0, progress=True)
                seconds = time.perf_counter() - t
                proba = result.classifier.predict_proba(test_blobs, cache=shared)
            else:
                params = TrainParams(mode="finetune", image_size=args.ft_image_size, lr=args.ft_lr,
                                     epochs=ft_epochs[min(k, len(ft_epochs) - 1)], seed=args.seed)
                cache = EmbeddingCache(Path(tempfile.mkdtemp()) / "train")  # cold, like head runs
                t = time.perf_counter()
                result = fit(blobs, ys, classes, params, cache=cache, progress=True)
                seconds = time.perf_counter() - t
                proba = result.classifier.predict_proba(test_blobs, progress=True)
            m = evaluate(test_labels, proba, classes)
            row = {"mode": mode, "labels": n, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                   "ece": m["ece"], "train_seconds": round(seconds, 1), "n_test": m["n"],
                   "params": {k2: v for k2, v in params.to_dict().items()
                              if k2 in ("model", "image_size", "epochs", "lr", "head_c")}}
            rows.append(row)
            print(json.dumps(row), flush=True)

    print("\n| mode | labels | held-out accuracy | macro F1 | ECE | wall time (s) | settings |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        s = r["params"]
        setting = (f"image {s['image_size'] or 224}px" if r["mode"] == "head"
                   else f"{s['epochs']} epochs, {s['image_size']}px, lr {s['lr']}")
        print(f"| {r['mode']} | {r['labels']} | {r['accuracy']:.1%} | {r['macro_f1']:.3f} | {r['ece']:.3f} "
              f"| {r['train_seconds']} | {setting} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
