"""Auto-accept: does the threshold keep its promise, and how much human work does it save?

For each target accuracy (0.95 / 0.98 / 0.99), number of human labels (120 / 300 / 600 / 1,200,
balanced, drawn by seed) and seed (5): the product's head is trained on the labels, the threshold is
fitted on its out-of-fold probabilities (training/autoaccept.py: Clopper-Pearson bound at 95 %
confidence, fixed-sequence testing), and applied to the held-out 20 % of the shared scene photos:
coverage = the share auto-accepted, precision = their realised accuracy. Printed: a markdown table
(mean coverage, mean and minimum precision, runs that kept the promise) and the naive rule beside it.

    .venv/bin/python bench/auto_accept.py [--quick] [--cache DIR]

Embeddings come from the embedding cache (bench/out/cache or $TASVEER_CACHE; the first run embeds
the 8,741 photos, several minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.autoaccept import measure  # noqa: E402
from training.data import balanced_sample, stratified_split  # noqa: E402
from training.simulate import embed_folder  # noqa: E402

DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"


def naive(X, y, test_X, test_y, n_classes, target, head_c=0.002, seed=0):
    """The lowest out-of-fold confidence whose observed precision meets the target (no bound)."""
    from training.head import cross_val_logits, fit_linear, fit_temperature, softmax

    W, b = fit_linear(X, y, n_classes, head_c, seed)
    oof = cross_val_logits(X, y, n_classes, head_c, seed)
    t = fit_temperature(oof, y)
    p, q = softmax(oof / t), softmax((test_X @ W.T + b) / t)
    conf, right = p.max(axis=1), p.argmax(axis=1) == y
    order = np.argsort(-conf)
    ok = np.flatnonzero(np.cumsum(right[order]) / np.arange(1, len(y) + 1) >= target)
    threshold = conf[order][ok.max()] if len(ok) else 2.0
    accepted = q.max(axis=1) >= threshold
    return float(accepted.mean()), (float(np.mean(q.argmax(axis=1)[accepted] == test_y[accepted]))
                                    if accepted.any() else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="0.95,0.98,0.99")
    ap.add_argument("--sizes", default="120,300,600,1200")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TASVEER_CACHE") or REPO / "bench" / "out" / "cache"))
    ap.add_argument("--quick", action="store_true", help="600 photos, 2 sizes, 2 seeds (make bench)")
    args = ap.parse_args()
    limit = 600 if args.quick else None
    if args.quick:
        args.sizes, args.seeds = "120,300", 2
    X, y, names, _ = embed_folder(DATA, args.cache, limit=limit)
    targets = [float(t) for t in args.targets.split(",")]
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        runs = {t: [] for t in targets}
        naive_runs = {t: [] for t in targets}
        for seed in range(args.seeds):
            rest, held = stratified_split(y.tolist(), 0.2, seed)
            pick = [rest[i] for i in balanced_sample(y[rest].tolist(), size, seed)]
            for r in measure(X[pick], y[pick], X[held], y[held], len(names), targets, seed=seed):
                runs[r["target"]].append(r)
            for t in targets:
                naive_runs[t].append(naive(X[pick], y[pick], X[held], y[held], len(names), t, seed=seed))
        for t in targets:
            cov = [r["auto_coverage"] for r in runs[t]]
            prec = [r["auto_precision"] for r in runs[t] if r["auto_precision"] is not None]
            kept = sum(1 for r in runs[t] if r["auto_precision"] is None or r["auto_precision"] >= t)
            n_cov = [c for c, _ in naive_runs[t]]
            n_prec = [p for _, p in naive_runs[t] if p is not None]
            n_kept = sum(1 for _, p in naive_runs[t] if p is None or p >= t)
            rows.append((t, size, np.mean(cov), np.mean(prec) if prec else None, min(prec) if prec else None,
                         kept, len(runs[t]), np.mean(n_cov), np.mean(n_prec) if n_prec else None, n_kept))
            print(rows[-1], flush=True)
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    print("\n| target | labels | coverage | precision (mean) | precision (min) | promise kept | naive coverage | naive precision | naive kept |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t, size, cov, prec, low, kept, n, ncov, nprec, nkept in rows:
        print(f"| {t:.2f} | {size} | {pct(cov)} | {pct(prec)} | {pct(low)} | {kept}/{n} | {pct(ncov)} | {pct(nprec)} | {nkept}/{n} |")
    total = sum(r[5] for r in rows), sum(r[6] for r in rows)
    print(f"\npromise kept in {total[0]} of {total[1]} runs ({total[0] / total[1]:.0%}); target >= 95 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
