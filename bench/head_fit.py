"""How long does a correction's head fit take, per stopping tolerance of the solver?

What a training job fits after each correction (training.train.fit_head): the semi-supervised head
(training/semi.py) on N labels and up to 2,000 unlabeled photos, once on every label and once per
fold of the 5-fold cross-validation that gives its temperature and metrics. Timed here on cached
Lite2 features (bench/feature_sets.py), so embedding is left out; tolerances take turns on the same
draws, so their times compare within one run.

    .venv/bin/python bench/feature_sets.py --sets efficientnet_lite2@260   # once (~2 min)
    .venv/bin/python bench/head_fit.py [--tols 1e-4,1e-3] [--sizes 100,600] [--repeats 3]

Accuracy per tolerance: bench/semi_supervised.py with `semi:2000:TOL`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.head import TOL, cross_val_logits  # noqa: E402
from training.params import TrainParams  # noqa: E402
from training.semi import Graph, fit_semi  # noqa: E402

FEATS = REPO / "bench" / "out" / "feats"


def timed_fit(X_all: np.ndarray, y: np.ndarray, n_classes: int, params: TrainParams, tol: float) -> float:
    """Seconds of one correction's fit: the graph, the head on every label, the 5 folds."""
    start = time.perf_counter()
    graph = Graph(X_all)

    def head(rows):
        return fit_semi(X_all, rows, y[rows], n_classes, params.head_c, params.seed, graph=graph, tol=tol)

    head(np.arange(len(y)))
    cross_val_logits(X_all[: len(y)], y, n_classes, params.head_c, params.seed, fit=head)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tols", default=f"1e-4,{TOL:g}", help="solver tolerances, in turn on each draw")
    ap.add_argument("--sizes", default="100,600", help="labels per draw")
    ap.add_argument("--repeats", type=int, default=3, help="draws per size")
    args = ap.parse_args()
    X = np.load(FEATS / "efficientnet_lite2-260.npy").astype(np.float32)
    meta = json.loads((FEATS / "labels.json").read_text())
    y_all = np.array([meta["classes"].index(label) for label in meta["labels"]])
    params, tols = TrainParams(), [float(t) for t in args.tols.split(",")]
    print(f"| labels (+ {params.unlabeled:,} unlabeled) | " + " | ".join(f"tol {t:g}, s" for t in tols) + " |")
    print("| ---: |" + " ---: |" * len(tols))
    for n in (int(s) for s in args.sizes.split(",")):
        times: dict[float, list[float]] = {t: [] for t in tols}
        for draw in range(args.repeats):
            order = np.random.default_rng(draw).permutation(len(X))
            rows = np.r_[order[:n], order[n : n + params.unlabeled]]
            for tol in tols:
                times[tol].append(timed_fit(X[rows], y_all[order[:n]], len(meta["classes"]), params, tol))
        print(f"| {n} | " + " | ".join(f"{np.median(times[t]):.2f}" for t in tols) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
