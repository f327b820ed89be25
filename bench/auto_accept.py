"""Auto-accept: does the threshold keep its promise, and how much human work does it save?

For each target accuracy (0.95 / 0.98 / 0.99), number of human labels (120 / 300 / 600 / 1,200,
balanced, drawn by seed) and seed (5): the product's head is trained on the labels and three rules
choose a threshold, applied to the held-out 20 % of the shared scene photos (the pool of new
photos): coverage = the share auto-accepted, precision = their realised accuracy.

* pool (the product's, training/autoaccept.fit_pool_threshold): out-of-fold calibration ratio
  bound x the served model's confidences of the pool;
* labels (training/autoaccept.fit_threshold): Clopper-Pearson bound on out-of-fold predictions alone;
* naive: the lowest out-of-fold confidence whose observed precision meets the target.

Printed: a markdown table (mean coverage, mean and minimum precision, runs that kept the promise).

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

from training.autoaccept import apply_rule, head_probabilities  # noqa: E402
from training.data import balanced_sample, stratified_split  # noqa: E402
from training.simulate import embed_folder  # noqa: E402

DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"


def naive(p, y, q, test_y, target):
    """The lowest out-of-fold confidence whose observed precision meets the target (no bound)."""
    if p is None:
        return 0.0, None
    conf, right = p.max(axis=1), p.argmax(axis=1) == y
    order = np.argsort(-conf)
    ok = np.flatnonzero(np.cumsum(right[order]) / np.arange(1, len(y) + 1) >= target)
    threshold = conf[order][ok.max()] if len(ok) else 2.0
    accepted = q.max(axis=1) >= threshold
    return float(accepted.mean()), (
        float(np.mean(q.argmax(axis=1)[accepted] == test_y[accepted])) if accepted.any() else None
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="0.95,0.98,0.99")
    ap.add_argument("--sizes", default="120,300,600,1200")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument(
        "--cache", type=Path, default=Path(os.environ.get("TASVEER_CACHE") or REPO / "bench" / "out" / "cache")
    )
    ap.add_argument("--quick", action="store_true", help="600 photos, 2 sizes, 2 seeds (make bench)")
    args = ap.parse_args()
    limit = 600 if args.quick else None
    if args.quick:
        args.sizes, args.seeds = "120,300", 2
    X, y, names, _ = embed_folder(DATA, args.cache, limit=limit)
    targets = [float(t) for t in args.targets.split(",")]
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        runs = {(t, r): [] for t in targets for r in ("pool", "labels", "naive")}
        for seed in range(args.seeds):
            rest, held = stratified_split(y.tolist(), 0.2, seed)
            pick = [rest[i] for i in balanced_sample(y[rest].tolist(), size, seed)]
            oof_p, test_p = head_probabilities(X[pick], y[pick], X[held], len(names), seed=seed)
            for t in targets:
                for r in ("pool", "labels"):
                    got = apply_rule(oof_p, y[pick], test_p, y[held], t, r)
                    runs[t, r].append((got["auto_coverage"], got["auto_precision"]))
                runs[t, "naive"].append(naive(oof_p, y[pick], test_p, y[held], t))
        for t in targets:
            row = [t, size]
            for r in ("pool", "labels", "naive"):
                cov = [c for c, _ in runs[t, r]]
                prec = [p for _, p in runs[t, r] if p is not None]
                kept = sum(1 for _, p in runs[t, r] if p is None or p >= t)
                row += [np.mean(cov), np.mean(prec) if prec else None, min(prec) if prec else None, kept, len(cov)]
            rows.append(row)
            print(row, flush=True)
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    print(
        "\n| target | labels | coverage | precision (mean) | precision (min) | promise kept "
        "| labels-only coverage | labels-only kept | naive coverage | naive precision | naive kept |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t, size, *r in rows:
        pool, labels, nv = r[0:5], r[5:10], r[10:15]
        print(
            f"| {t:.2f} | {size} | {pct(pool[0])} | {pct(pool[1])} | {pct(pool[2])} | {pool[3]}/{pool[4]} "
            f"| {pct(labels[0])} | {labels[3]}/{labels[4]} | {pct(nv[0])} | {pct(nv[1])} | {nv[3]}/{nv[4]} |"
        )
    for name, k in (("pool (product)", 2), ("labels-only", 7), ("naive", 12)):
        kept, total = sum(r[k + 3] for r in rows), sum(r[k + 4] for r in rows)
        print(f"{name}: promise kept in {kept} of {total} runs ({kept / total:.0%}); target >= 95 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
