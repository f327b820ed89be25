"""Labels saved by never serving near duplicates: `tasveer simulate`'s queue with and without
duplicate groups, on the shared scene photos with near duplicates made at run time.

    .venv/bin/python bench/duplicate_queue.py [--json] [--n-dup 300,3000] [--rounds 8] [--repeats 3]

For each --n-dup (one near duplicate made for that many shared photos, in turn: mirror image, crop,
JPEG re-encode, colour shift; bench/curation.py's `build`, seeded), the photos are split 80/20 by
class (the 20 % of shared photos held out for testing, and the duplicates made of them dropped, so
nothing tested was trained on). The pool is labeled by `training.simulate.simulate` under the
project's strategy (margin) and head (labels only, C = a project's default): 60 k-means medoids, then
`--rounds` batches of 60, `--repeats` seeds. Twice: serving duplicates like any photo
(`duplicates_served` counts the photos served although their twin was labeled before: labels spent
on nothing new), and never serving them (one label per group; the twin labeled like it for free, as
tasveer's queue and "label these like this one" do). The groups are the made pairs: the duplicate
finder recovers 98.8 % of them (bench/curation.py), so this measures the queue, not the finder.
Embeddings: Lite2 via ONNX Runtime, cached under ~/.cache/tasveer-bench (bench/curation.py's `embed`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from curation import build, embed  # noqa: E402

from training.data import stratified_split  # noqa: E402
from training.params import TrainParams  # noqa: E402
from training.simulate import simulate_repeats  # noqa: E402


def split(labels: list, source: list, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pool rows, test rows): 20 % of the shared photos by class for testing, their copies dropped."""
    real = [i for i, s in enumerate(source) if s < 0 and labels[i] is not None]
    rest, held = stratified_split([labels[i] for i in real], 0.2, seed)
    test = {real[i] for i in held}
    pool = [
        i for i, s in enumerate(source) if labels[i if s < 0 else s] is not None and (s if s >= 0 else i) not in test
    ]
    return np.array(pool), np.array(sorted(test))


def scenario(n_dup: int, rounds: int, repeats: int) -> dict:
    col = build(n_dup, 0, 0)
    X, embedding = embed(col.blobs)
    classes = sorted({lab for lab in col.labels if lab is not None})
    y_all = np.array([classes.index(col.labels[i] if s < 0 else col.labels[s]) for i, s in enumerate(col.source)])
    pool, test = split(col.labels, col.source)
    where = {int(row): k for k, row in enumerate(pool)}
    groups = [[where[s], where[i]] for i, s in enumerate(col.source) if s >= 0 and s in where and i in where]
    common = dict(
        strategy="margin", repeats=repeats, initial=60, batch=60, rounds=rounds, head_c=TrainParams().head_c,
        groups=groups,
    )  # fmt: skip
    args = (X[pool], y_all[pool], X[test], y_all[test], classes)
    served = simulate_repeats(*args, **common)
    skipped = simulate_repeats(*args, skip_duplicates=True, **common)
    return {"n_dup": n_dup, "pool": len(pool), "test": len(test), "groups": len(groups), "embedding": embedding,
            "served": served["rounds"], "skipped": skipped["rounds"]}  # fmt: skip


def report(figures: list[dict]) -> None:
    for f in figures:
        print(f"\n{f['n_dup']} near duplicates made: pool {f['pool']} photos ({f['groups']} pairs), test {f['test']}")
        print("| labels | accuracy, twins served | twins served (labels spent on nothing new) | accuracy, never |")
        print("| ---: | ---: | ---: | ---: |")
        for a, b in zip(f["served"], f["skipped"]):
            print(f"| {a['labels']} | {a['accuracy']:.1%} | {a['duplicates_served']:.1f} | {b['accuracy']:.1%} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--n-dup", default="300,3000", help="near duplicates made, comma-separated scenarios")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    figures = [scenario(int(n), args.rounds, args.repeats) for n in args.n_dup.split(",")]
    print(json.dumps(figures, indent=1)) if args.json else report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
