"""Which features and regularisation give the head the most from few labels: held-out accuracy of
the product's head (training.head.fit_linear) on cached feature sets (bench/feature_sets.py), for
feature variants x `head_c` x label counts, on the split of bench/accuracy.py (20 % held out,
seed 0; balanced training samples drawn by seed).

    .venv/bin/python bench/feature_sets.py          # once: embeds the photos (minutes)
    .venv/bin/python bench/head_features.py [--variants lite0,lite0+flip,...] [--samples 3]

Variants: `lite0` (Lite0 at 224 px), `lite2` (260 px), `lite1` (240 px); `+flip` averages the
features of the photo and its mirror image (test-time augmentation, applied to training and test
photos alike); `lite0|lite2` concatenates two backbones' features. `--samples K` averages K
balanced training draws (seeds 0..K-1) per label count; the first column of each cell is seed 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.data import balanced_sample, stratified_split  # noqa: E402
from training.head import fit_linear  # noqa: E402

FEATS = REPO / "bench" / "out" / "feats"
SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}


def load_variant(root: Path, variant: str) -> np.ndarray:
    """Features for e.g. `lite0`, `lite2+flip`, `lite0|lite2+flip` (rows in list_folder order)."""
    flip = variant.endswith("+flip")
    parts = []
    for name in variant.removesuffix("+flip").split("|"):
        name, _, size = name.partition("@")
        stem = f"efficientnet_{name}-{size or SIZES[name]}"
        X = np.load(root / f"{stem}.npy")
        if flip:
            X = (X + np.load(root / f"{stem}-flip.npy")) / 2
        parts.append(X)
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="lite0,lite0+flip,lite2,lite2+flip,lite0|lite2,lite0|lite2+flip")
    ap.add_argument("--cs", default="0.001,0.002,0.005,0.01,0.03")
    ap.add_argument("--sizes", default="60,300,600,1200,all")
    ap.add_argument("--samples", type=int, default=1, help="training draws per label count")
    ap.add_argument("--feats", type=Path, default=FEATS)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "head_features.json")
    ap.add_argument("--quick", action="store_true", help="the bench/feature_sets.py --quick set, 60 labels")
    args = ap.parse_args()
    if args.quick:
        args.feats, args.variants, args.sizes, args.cs = (
            REPO / "bench" / "out" / "feats_quick",
            "lite0@128+flip",
            "60",
            "0.002",
        )
        if not (args.feats / "labels.json").exists():
            import subprocess

            subprocess.run([sys.executable, str(REPO / "bench" / "feature_sets.py"), "--quick"], check=True)
    meta = json.loads((args.feats / "labels.json").read_text())
    classes, labels = meta["classes"], meta["labels"]
    y = np.array([classes.index(lab) for lab in labels])
    rest, held = stratified_split(labels, 0.2, 0)
    rest_labels = [labels[i] for i in rest]
    cs = [float(c) for c in args.cs.split(",")]
    sizes = [len(rest) if s == "all" else int(s) for s in args.sizes.split(",")]
    rows = []
    for variant in args.variants.split(","):
        X = load_variant(args.feats, variant)
        for n in sizes:
            draws = 1 if n == len(rest) else args.samples
            accs = np.zeros((draws, len(cs)))
            for s in range(draws):
                pick = np.array([rest[i] for i in balanced_sample(rest_labels, n, s)])
                for j, c in enumerate(cs):
                    W, b = fit_linear(X[pick], y[pick], len(classes), c, 0)
                    accs[s, j] = float(np.mean((X[held] @ W.T + b).argmax(1) == y[held]))
            row = {
                "variant": variant,
                "labels": n,
                "dim": X.shape[1],
                "seed0": accs[0].tolist(),
                "mean": accs.mean(0).tolist(),
                "cs": cs,
            }
            rows.append(row)
            print(
                f"{variant:>20} {n:>5}: "
                + " ".join(f"C={c:g}:{a:.1%}/{m:.1%}" for c, a, m in zip(cs, row["seed0"], row["mean"])),
                flush=True,
            )
    print(f"\nheld-out accuracy (seed-0 draw; mean of {args.samples} draws in brackets when > 1)\n")
    print("| features | labels | " + " | ".join(f"C = {c:g}" for c in cs) + " |")
    print("| --- | ---: |" + " ---: |" * len(cs))
    for r in rows:
        cells = [
            f"{a:.1%}" + (f" ({m:.1%})" if args.samples > 1 and r["labels"] != len(rest) else "")
            for a, m in zip(r["seed0"], r["mean"])
        ]
        print(f"| {r['variant']} | {r['labels']} | " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
