"""Held-out accuracy of head mode for a grid of `head_c` (inverse L2 strength) and training sizes,
on the same split as bench/accuracy.py: how the default `head_c` was chosen.

    .venv/bin/python bench/head_sweep.py [--cs 0.0003,0.001,0.002,0.003,0.01,0.1,0.5]

Embeds every photo once (EfficientNet-Lite0, 224 px), then fits only heads. No temperature here:
accuracy does not depend on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from training.backbones import create_backbone  # noqa: E402
from training.cache import EmbeddingCache  # noqa: E402
from training.data import balanced_sample, list_folder, stratified_split  # noqa: E402
from training.head import fit_linear  # noqa: E402
from training.images import read_image_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cs", default="0.0003,0.001,0.002,0.003,0.01,0.1,0.5")
    ap.add_argument("--sizes", default="60,300,1200,all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a small run that checks the benchmark works (make bench)")
    args = ap.parse_args()
    if args.quick:
        args.cs, args.sizes = "0.002,0.1", "60"
    cs = [float(c) for c in args.cs.split(",")]
    paths, labels, classes = list_folder(DATA)
    if args.quick:  # 300 photos instead of 8,741
        keep = balanced_sample(labels, 300, args.seed)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    rest, held = stratified_split(labels, 0.2, args.seed)
    backbone = create_backbone("efficientnet_lite0")
    cache = EmbeddingCache(Path(tempfile.mkdtemp()))
    X = backbone.embed([read_image_file(p) for p in paths], cache=cache, progress=True)
    y = np.array([classes.index(label) for label in labels])
    rest_labels = [labels[i] for i in rest]
    print("\n| labels | " + " | ".join(f"C = {c:g}" for c in cs) + " |")
    print("| ---: |" + " ---: |" * len(cs))
    for size in args.sizes.split(","):
        n = len(rest) if size == "all" else int(size)
        pick = np.array([rest[i] for i in balanced_sample(rest_labels, n, args.seed)])
        row = []
        for c in cs:
            W, b = fit_linear(X[pick], y[pick], len(classes), c, args.seed)
            row.append(float(((X[held] @ W.T + b).argmax(1) == y[held]).mean()))
        print(f"| {n} | " + " | ".join(f"{a:.1%}" for a in row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
