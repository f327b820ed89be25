"""Embedding and prediction throughput for one 128-image batch, and peak memory.

    .venv/bin/python bench/throughput.py [--image-size 224] [--repeats 3]

Runs in a fresh process so peak RSS is this workload's own. 'cold' = nothing cached (decode +
network); 'warm' = embeddings already in the cache (what a retrain or a re-prediction pays).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from training.backbones import create_backbone  # noqa: E402
from training.cache import EmbeddingCache  # noqa: E402
from training.data import balanced_sample, list_folder  # noqa: E402
from training.images import read_image_file  # noqa: E402
from training.params import TrainParams  # noqa: E402
from training.train import fit  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="a small run that checks the benchmark works (make bench)")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.batch = 1, 16

    paths, labels, classes = list_folder(DATA)
    pick = balanced_sample(labels, args.batch, seed=7)
    blobs = [read_image_file(paths[i]) for i in pick]
    ys = [labels[i] for i in pick]
    backbone = create_backbone("efficientnet_lite0", image_size=args.image_size)
    clf = fit(blobs, ys, classes, TrainParams(image_size=args.image_size), backbone=backbone).classifier
    other = [read_image_file(paths[i]) for i in balanced_sample(labels, args.batch, seed=8)]

    def best(fn):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    embed_cold = best(lambda: backbone.embed(other))
    predict_cold = best(lambda: clf.predict_proba(other))
    cache = EmbeddingCache(Path(tempfile.mkdtemp()))
    clf.predict_proba(other, cache=cache)
    predict_warm = best(lambda: clf.predict_proba(other, cache=cache))
    result = {
        "batch": args.batch,
        "image_size": args.image_size,
        "threads": torch.get_num_threads(),
        "device": str(backbone.device),
        "embed_cold_img_per_s": round(args.batch / embed_cold, 1),
        "predict_cold_img_per_s": round(args.batch / predict_cold, 1),
        "predict_warm_cache_img_per_s": round(args.batch / predict_warm, 1),
        "peak_rss_mb": round(rss_mb(), 1),
    }
    print(json.dumps(result))
    print(f"\n128-image batch at {args.image_size}px on {result['threads']} threads ({result['device']}):")
    print(f"  embed (decode + network): {result['embed_cold_img_per_s']} img/s")
    print(f"  predict, nothing cached:  {result['predict_cold_img_per_s']} img/s")
    print(f"  predict, cached features: {result['predict_warm_cache_img_per_s']} img/s")
    print(f"  peak RSS: {result['peak_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
