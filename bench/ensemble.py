"""Offline ensembles of a fine-tuned network and a linear head, on the bench/accuracy.py split.

    .venv/bin/python bench/accuracy.py --modes finetune --sizes all --ft-params '{"preset": "accurate"}' \
        --save-proba bench/out/proba/lite0
    .venv/bin/python bench/ensemble.py --ft bench/out/proba/lite0/finetune-6992 --feats efficientnet_lite2-260

The fine-tune's saved held-out and validation probabilities (calibrated, as served) are combined
with a head fitted here on cached features (bench/feature_sets.py; the product's `fit_linear` and
its cross-validated temperature) on the fine-tune's own training rows. Two heads:

- `all`: fitted on every training row (what head mode would train); its probabilities on the
  fine-tune's validation rows are in-sample, so nothing is chosen on them;
- `split`: fitted on the fine-tune's training split only (its validation rows stay unseen), so a
  mixing weight and a temperature can be chosen on the validation rows without the test set.

Combinations: arithmetic and geometric mean (weight 0.5), then with a temperature on the mixture's
log-probabilities fitted on the validation rows, then with the weight chosen there too (lowest
validation NLL over 0, 0.05, ..., 1). Prints a markdown table; writes bench/out/ensemble.json.
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

from training.head import cross_val_logits, fit_linear, fit_temperature, softmax  # noqa: E402
from training.metrics import evaluate  # noqa: E402

FEATS = REPO / "bench" / "out" / "feats"


def log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-12, 1.0))


def mix(p1: np.ndarray, p2: np.ndarray, w: float, kind: str) -> np.ndarray:
    """Weight `w` on p1: arithmetic mean of probabilities or geometric (mean of log-probabilities)."""
    if kind == "arith":
        return w * p1 + (1 - w) * p2
    return softmax(w * log(p1) + (1 - w) * log(p2))


def nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-log(p[np.arange(len(y)), y]).mean())


def head_proba(X, y, rows, targets, C, seed):
    """A calibrated head (temperature from 5-fold out-of-fold logits, as head mode) fitted on
    X[rows]; its probabilities on each of `targets` (row index arrays)."""
    W, b = fit_linear(X[rows], y[rows], int(y.max()) + 1, C, seed)
    oof = cross_val_logits(X[rows], y[rows], int(y.max()) + 1, C, seed)
    t = fit_temperature(oof, y[rows])
    return [softmax((X[r] @ W.T + b) / t) for r in targets], t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ft", type=Path, required=True, help="a --save-proba stem, e.g. DIR/finetune-6992")
    ap.add_argument(
        "--feats",
        default="efficientnet_lite2-260",
        help="feature set(s) averaged, comma-separated "
        "(e.g. efficientnet_lite2-260,efficientnet_lite2-260-flip for flip TTA); groups joined by | "
        "are concatenated (two backbones, params `second_model`)",
    )
    ap.add_argument("--feats-dir", type=Path, default=FEATS)
    ap.add_argument("--c", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "ensemble.json")
    args = ap.parse_args()

    stem = args.ft
    classes = json.loads((stem.parent / "classes.json").read_text())
    meta = json.loads((args.feats_dir / "labels.json").read_text())
    if meta["classes"] != classes:
        raise SystemExit("feature rows and the saved run disagree on the classes")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[lab] for lab in meta["labels"]])
    X = np.concatenate(
        [
            np.mean([np.load(args.feats_dir / f"{name}.npy") for name in group.split(",")], axis=0)
            for group in args.feats.split("|")
        ],
        axis=1,
    )
    held = np.load(stem.parent / "held.npy")
    train = np.load(f"{stem}-train.npy")
    val = np.load(f"{stem}-val.npy")
    ft_held, ft_val = np.load(f"{stem}.npy"), np.load(f"{stem}-val_proba.npy")
    split = np.setdiff1d(train, val)
    y_held, y_val = y[held], y[val]

    t0 = time.process_time()
    (h_all,), t_all = head_proba(X, y, train, [held], args.c, args.seed)
    (h_split, h_split_val), t_split = head_proba(X, y, split, [held, val], args.c, args.seed)
    print(f"heads fitted in {time.process_time() - t0:.0f} s CPU (T {t_all:.3f} / {t_split:.3f})", flush=True)

    rows = []

    def add(name, proba, **extra):
        m = evaluate(y_held, proba, classes)
        rows.append(
            {
                "name": name,
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "ece": m["ece"],
                "nll": nll(proba, y_held),
                **extra,
            }
        )

    add("finetune alone", ft_held)
    add("head (all training rows)", h_all)
    add("head (training split)", h_split)
    for kind in ("arith", "geo"):
        add(f"{kind} 0.5, head all", mix(ft_held, h_all, 0.5, kind))
        add(f"{kind} 0.5, head split", mix(ft_held, h_split, 0.5, kind))
        # temperature on the mixture, fitted on the validation rows (head split: unseen there)
        t = fit_temperature(log(mix(ft_val, h_split_val, 0.5, kind)), y_val, bounds=(0.1, 10.0))
        add(f"{kind} 0.5 + T, head split", softmax(log(mix(ft_held, h_split, 0.5, kind)) / t), t=t)
        add(f"{kind} 0.5 + T (from split), head all", softmax(log(mix(ft_held, h_all, 0.5, kind)) / t), t=t)
        grid = np.round(np.arange(0, 1.0001, 0.05), 2)
        w = float(grid[np.argmin([nll(mix(ft_val, h_split_val, g, kind), y_val) for g in grid])])
        t = fit_temperature(log(mix(ft_val, h_split_val, w, kind)), y_val, bounds=(0.1, 10.0))
        add(f"{kind} w + T, head split", softmax(log(mix(ft_held, h_split, w, kind)) / t), w=w, t=t)
        add(f"{kind} w + T (from split), head all", softmax(log(mix(ft_held, h_all, w, kind)) / t), w=w, t=t)
        # the product's recipe: head on the training split, its temperature and the mixture's
        # on the validation rows (no cross-validation), then the head refitted on every row
        z_val, z_held = log(h_split_val) * t_split, log(h_split) * t_split  # raw logits (up to a row constant)
        z_all = log(h_all) * t_all
        th = fit_temperature(z_val, y_val)
        t = fit_temperature(log(mix(ft_val, softmax(z_val / th), 0.5, kind)), y_val, bounds=(0.1, 10.0))
        add(
            f"{kind} 0.5, head T on val + T, head split",
            softmax(log(mix(ft_held, softmax(z_held / th), 0.5, kind)) / t),
            t=t,
        )
        add(
            f"{kind} 0.5, head T on val + T, head all",
            softmax(log(mix(ft_held, softmax(z_all / th), 0.5, kind)) / t),
            t=t,
        )
        rows.append(
            {
                "name": f"{kind} validation accuracy (0.5, head split)",
                "accuracy": float((mix(ft_val, h_split_val, 0.5, kind).argmax(1) == y_val).mean()),
                "val_ft": float((ft_val.argmax(1) == y_val).mean()),
                "val_head": float((h_split_val.argmax(1) == y_val).mean()),
            }
        )

    print(f"\n{stem} + head on {args.feats} (C {args.c}); held out {len(held)}, validation {len(val)}\n")
    print("| model | held-out accuracy | macro F1 | ECE | NLL | weight / T |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        if "macro_f1" not in r:
            continue
        wt = " / ".join(f"{k} {r[k]:.2f}" for k in ("w", "t") if k in r)
        print(f"| {r['name']} | {r['accuracy']:.2%} | {r['macro_f1']:.3f} | {r['ece']:.3f} | {r['nll']:.3f} | {wt} |")
    for r in rows:
        if "val_ft" in r:
            print(f"{r['name']}: {r['accuracy']:.2%} (finetune {r['val_ft']:.2%}, head {r['val_head']:.2%})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"ft": str(stem), "feats": args.feats, "c": args.c, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
