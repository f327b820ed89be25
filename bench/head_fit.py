"""How long does a correction's head fit take, per stopping tolerance of the solver and per start of
the cross-validation folds?

What a training job fits after each correction (training.train.fit_head): the semi-supervised head
(training/semi.py) on N labels and up to 2,000 unlabeled photos, once on every label and once per
fold of the 5-fold cross-validation that gives its temperature and metrics. Timed here on cached
Lite2 features (bench/feature_sets.py), so embedding is left out; the variants take turns on the
same draws, so their times compare within one run. Each variant also prints the out-of-fold
accuracy and the temperature (the same problem solved: they should agree).

Fold starts: `cold`, each fold's second fit starts from that fold's supervised head (before
2026-12-05 night); `warm`, from the head on every label (training.train.fit_head today).

    .venv/bin/python bench/feature_sets.py --sets efficientnet_lite2@260   # once (~2 min)
    .venv/bin/python bench/head_fit.py [--tols 1e-3] [--starts cold,warm] [--sizes 40,100,600] [--repeats 3]

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

from training.head import TOL, cross_val_logits, fit_temperature, softmax  # noqa: E402
from training.params import TrainParams  # noqa: E402
from training.semi import Graph, fit_semi  # noqa: E402

FEATS = REPO / "bench" / "out" / "feats"


def timed_fit(X_all: np.ndarray, y: np.ndarray, n_classes: int, params: TrainParams, tol: float, start: str):
    """(seconds, out-of-fold accuracy, temperature) of one correction's fit: the graph, the head on
    every label, the 5 folds (started `cold` or `warm`, see the module's docstring)."""
    began = time.perf_counter()
    graph = Graph(X_all)

    def head(rows, init=None):
        return fit_semi(X_all, rows, y[rows], n_classes, params.head_c, params.seed, graph=graph, tol=tol, init=init)

    whole = head(np.arange(len(y)))
    fold = head if start == "cold" else (lambda rows: head(rows, whole))
    oof = cross_val_logits(X_all[: len(y)], y, n_classes, params.head_c, params.seed, fit=fold)
    seconds = time.perf_counter() - began
    temperature = fit_temperature(oof, y)
    return seconds, float(np.mean(softmax(oof / temperature).argmax(axis=1) == y)), temperature


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tols", default=f"{TOL:g}", help="solver tolerances, in turn on each draw")
    ap.add_argument("--starts", default="cold,warm", help="how the folds start, in turn on each draw")
    ap.add_argument("--sizes", default="40,100,600", help="labels per draw")
    ap.add_argument("--repeats", type=int, default=3, help="draws per size")
    args = ap.parse_args()
    X = np.load(FEATS / "efficientnet_lite2-260.npy").astype(np.float32)
    meta = json.loads((FEATS / "labels.json").read_text())
    y_all = np.array([meta["classes"].index(label) for label in meta["labels"]])
    params = TrainParams()
    variants = [(float(t), s) for t in args.tols.split(",") for s in args.starts.split(",")]
    timed_fit(X[:400], np.arange(300) % 2, 2, params, TOL, "cold")  # imports and first calls off the clock
    cells = " | ".join(f"tol {t:g}, {s}: s, oof acc, T" for t, s in variants)
    print(f"| labels (+ {params.unlabeled:,} unlabeled) | {cells} |")
    print("| ---: |" + " ---: |" * len(variants))
    for n in (int(s) for s in args.sizes.split(",")):
        runs: dict[tuple, list[tuple]] = {v: [] for v in variants}
        for draw in range(args.repeats):
            order = np.random.default_rng(draw).permutation(len(X))
            rows = np.r_[order[:n], order[n : n + params.unlabeled]]
            for tol, start in variants:
                runs[tol, start].append(timed_fit(X[rows], y_all[order[:n]], len(meta["classes"]), params, tol, start))
        medians = [np.median(np.array(runs[v]), axis=0) for v in variants]
        print(f"| {n} | " + " | ".join(f"{s:.2f}, {a:.3f}, {t:.3f}" for s, a, t in medians) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
