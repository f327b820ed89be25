"""A correction's fit with the fold heads kept across trainings (training/foldheads.py) against
refitting all 5 folds every time: seconds, temperature, and what the served head does on held-out
photos with each temperature.

A simulated project on cached Lite2 features (bench/feature_sets.py): START labels (balanced), the
default 2,000 unlabeled photos, then CORRECTIONS trainings that each add one label (a random
photo of the pool with its true label), as a labeler's corrections do. Each training fits the graph
and the semi-supervised head on every label (training.train.fit_head), then the out-of-fold logits
both ways, in turn on the same labels, so their times compare within one run. Held out: 1,749
photos never labeled or used as unlabeled.

    .venv/bin/python bench/feature_sets.py --sets efficientnet_lite2@260   # once (~2 min)
    .venv/bin/python bench/fold_heads.py [--start 30] [--corrections 40] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.foldheads import FoldHeads  # noqa: E402
from training.head import cross_val_logits, fit_temperature, softmax  # noqa: E402
from training.metrics import expected_calibration_error  # noqa: E402
from training.params import TrainParams  # noqa: E402
from training.semi import Graph, fit_semi  # noqa: E402

FEATS = REPO / "bench" / "out" / "feats"
HELD_OUT = 1749


def project(y_all: np.ndarray, start: int, corrections: int, unlabeled: int, seed: int):
    """(label order: the first `start` balanced, then one per correction; unlabeled rows; held-out rows)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_all))
    held, rest = order[:HELD_OUT], order[HELD_OUT:]
    classes = np.unique(y_all)
    first = np.concatenate([rest[y_all[rest] == c][: start // len(classes)] for c in classes])
    pool = np.setdiff1d(rest, first)
    pool = rng.permutation(pool)
    labels = np.concatenate([first, pool[:corrections]])
    return labels, pool[corrections : corrections + unlabeled], held


def one_training(X, y_all, labeled, unlabeled, params, n_classes, heads):
    """Seconds and temperature of both ways for the labels `labeled`, and the served head's W, b."""
    X_all = np.vstack([X[labeled], X[unlabeled]])
    y = y_all[labeled]
    graph = Graph(X_all)

    def head(rows, init=None):
        return fit_semi(X_all, rows, y[rows], n_classes, params.head_c, params.seed, graph=graph, init=init)

    W, b = head(np.arange(len(y)))
    fold = lambda rows: head(rows, (W, b))  # noqa: E731
    began = time.perf_counter()
    every = cross_val_logits(X_all[: len(y)], y, n_classes, params.head_c, params.seed, fit=fold)
    every_s = time.perf_counter() - began
    began = time.perf_counter()
    got = heads.logits(X_all[: len(y)], y, [f"task {i}" for i in labeled], n_classes, "bench", fold)
    kept_s = time.perf_counter() - began
    kept, refitted = got if got is not None else (every, 5)
    return {
        "every": (every_s, fit_temperature(every, y), np.mean(every.argmax(1) == y)),
        "kept": (kept_s, fit_temperature(kept, y), np.mean(kept.argmax(1) == y)),
        "refitted": refitted,
        "head": (W, b),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", type=int, default=30, help="labels before the corrections (balanced)")
    ap.add_argument("--corrections", type=int, default=40)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    X = np.load(FEATS / "efficientnet_lite2-260.npy").astype(np.float32)
    meta = json.loads((FEATS / "labels.json").read_text())
    y_all = np.array([meta["classes"].index(label) for label in meta["labels"]])
    params, n_classes = TrainParams(), len(meta["classes"])
    rows = {"every": [], "kept": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        labels, unlabeled, held = project(y_all, args.start, args.corrections, params.unlabeled, seed)
        with tempfile.TemporaryDirectory() as tmp:
            heads = FoldHeads(Path(tmp) / "folds.npz")
            for n in range(args.start, len(labels) + 1):
                got = one_training(X, y_all, labels[:n], unlabeled, params, n_classes, heads)
                W, b = got["head"]
                logits = X[held] @ W.T + b
                for way in rows:
                    seconds, t, oof_acc = got[way]
                    proba = softmax(logits / t)
                    acc = float(np.mean(proba.argmax(1) == y_all[held]))
                    ece = expected_calibration_error(y_all[held], proba)
                    rows[way].append((n > args.start, seconds, t, oof_acc, acc, ece))
    print(f"{len(args.seeds.split(','))} projects, {args.start} labels then {args.corrections} corrections each")
    print(
        "| out-of-fold logits | s per correction, p50 (first training) | temperature, mean "
        "| cross-validated accuracy, mean | held-out accuracy | held-out ECE |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for way, name in (("every", "all 5 folds refitted"), ("kept", "fold heads kept, refitted in turn")):
        r = np.array(rows[way], dtype=float)
        later, first = r[r[:, 0] == 1], r[r[:, 0] == 0]
        print(
            f"| {name} | {np.median(later[:, 1]):.2f} ({np.median(first[:, 1]):.2f}) | {r[:, 2].mean():.3f} | "
            f"{r[:, 3].mean():.3f} | {r[:, 4].mean():.3f} | {r[:, 5].mean():.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
