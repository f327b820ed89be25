"""Does a head fitted on more than the labelled photos pay? Semi-supervised / transductive heads on
cached features (bench/feature_sets.py): the labelled draw plus the project's unlabelled photos
(the pool minus the draw; the held-out test photos are never used for fitting).

    .venv/bin/python bench/feature_sets.py          # once: embeds the photos (minutes)
    .venv/bin/python bench/semi_supervised.py [--methods sup,std-all,self:0.5:0.3:1] [--samples 3]

Split of bench/accuracy.py (20 % of each class held out, seed 0), balanced training draws by seed
(seeds 0..K-1; --split and --first-draw choose other ones for a check on fresh data).
Methods (C = --c for every logistic regression):
- `sup`: the product's head (training.head.fit_linear, standardised on the labelled photos).
- `semi[:N[:TOL]]`: the product's semi-supervised head (training/semi.py: `selfspread:10:0.9:1:0.1`,
  standardised on all photos, warm-started); N: a random N of the unlabeled photos only; TOL: the
  solver's stopping tolerance (default training.head.TOL). `sup:TOL` likewise.
- `std-all`: standardisation (mean / std) fitted on all the pool's photos.
- `pca:K`: PCA whitening to K components fitted on all the pool's photos.
- `self:Q:W:R[:S]`: self-training: fit, take the fraction Q of the unlabelled photos per predicted
  class (most confident first), add them with sample weight W, refit; R rounds. S = `all`
  standardises on all photos (default: the labelled ones, as `sup`).
- `spread:K:A`: label spreading over a cosine kNN graph (K neighbours, alpha A) of the pool's
  standardised, L2-normalised photos; a test photo takes the mean of its K nearest pool photos'
  spread scores.
- `spread+sup:K:A`: the average of spreading's and the head's probabilities.
- `spreadfit:K:A:Q:W`: the head refitted on the labelled photos plus the fraction Q (per class) of
  unlabelled photos most confidently labelled by spreading, sample weight W.
- `selfspread:K:A:Q:W`: as spreadfit, the pseudo-labels from the average of spreading's and the
  head's probabilities.
- `ncm:K`: nearest class mean in the PCA-whitened space (K components, fitted on all photos).
Writes bench/out/semi_supervised.json; prints a markdown table (seed-0 draw / mean of draws).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from training.data import balanced_sample, stratified_split  # noqa: E402
from training.head import fit_linear, softmax  # noqa: E402

LINEAR = ("sup", "semi", "std-all", "pca", "self", "spreadfit", "selfspread")
FEATS = Path(os.environ.get("TASVEER_FEATS") or REPO / "bench" / "out" / "feats")


def lr(Z, y, n_classes, C, weight=None, seed=0):
    """Logistic regression on already transformed features Z: (coef (K, F), intercept (K,)) over
    all n_classes (absent classes get a very low bias)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Z, y, sample_weight=weight)
    coef = np.zeros((n_classes, Z.shape[1]))
    icpt = np.full(n_classes, -1e4)
    coef[clf.classes_], icpt[clf.classes_] = clf.coef_, clf.intercept_
    return coef, icpt


def fold(coef, icpt, A, m):
    """Logits of coef @ ((x - m) @ A) + icpt as a plain (W, b) on the raw features x."""
    W = coef @ A.T
    return W, icpt - W @ m


def standardiser(X):
    m, s = X.mean(0), X.std(0)
    s[s < 1e-6] = 1.0
    return np.diag(1.0 / s), m


def whitener(X, k):
    m = X.mean(0)
    _, sv, vt = np.linalg.svd(X - m, full_matrices=False)
    k = min(k, len(sv))
    return vt[:k].T / (sv[:k] / np.sqrt(len(X))), m


def linear_fit(XL, yL, XU, n_classes, C, seed, basis="lab"):
    A, m = standardiser(XL if basis == "lab" else np.vstack([XL, XU]))
    coef, icpt = lr((XL - m) @ A, yL, n_classes, C, seed=seed)
    return fold(coef, icpt, A, m)


def pick_confident(P, q):
    """Indices of the fraction q of rows per predicted class with the highest top probability."""
    pred, conf = P.argmax(1), P.max(1)
    chosen = []
    for c in np.unique(pred):
        rows = np.flatnonzero(pred == c)
        k = max(1, int(round(q * len(rows))))
        chosen.append(rows[np.argsort(-conf[rows])[:k]])
    return np.concatenate(chosen) if chosen else np.zeros(0, int)


def self_train(XL, yL, XU, n_classes, C, seed, q, w, rounds, basis="lab"):
    A, m = standardiser(XL if basis == "lab" else np.vstack([XL, XU]))
    ZL, ZU = (XL - m) @ A, (XU - m) @ A
    coef, icpt = lr(ZL, yL, n_classes, C, seed=seed)
    for _ in range(rounds):
        P = softmax(ZU @ coef.T + icpt)
        take = pick_confident(P, q)
        Z = np.vstack([ZL, ZU[take]])
        y = np.concatenate([yL, P[take].argmax(1)])
        weight = np.concatenate([np.ones(len(yL)), np.full(len(take), w)])
        coef, icpt = lr(Z, y, n_classes, C, weight, seed)
    return fold(coef, icpt, A, m)


class Graph:
    """Cosine kNN over a pool's standardised, L2-normalised features (built once per pool)."""

    def __init__(self, X, k):
        A, m = standardiser(X)
        self.A, self.m, self.k = A, m, k
        Z = self.embed(X)
        self.Z = Z
        S = Z @ Z.T
        np.fill_diagonal(S, -np.inf)
        self.nbr = np.argpartition(-S, k, axis=1)[:, :k]
        self.sim = np.take_along_axis(S, self.nbr, 1)

    def embed(self, X):
        Z = (X - self.m) @ self.A
        return Z / np.linalg.norm(Z, axis=1, keepdims=True)

    def spread(self, lab_rows, y, n_classes, alpha, iters=30):
        from scipy.sparse import csr_matrix

        n = len(self.Z)
        w = np.maximum(self.sim, 0) ** 3
        Wm = csr_matrix((w.ravel(), (np.repeat(np.arange(n), self.k), self.nbr.ravel())), shape=(n, n))
        Wm = Wm + Wm.T
        d = np.asarray(Wm.sum(1)).ravel()
        d[d == 0] = 1
        dinv = 1 / np.sqrt(d)
        S = Wm.multiply(dinv[:, None]).multiply(dinv[None, :]).tocsr()
        Y = np.zeros((n, n_classes))
        Y[lab_rows, y] = 1
        Y /= np.maximum(Y.sum(0, keepdims=True), 1)  # class-balanced seeds
        F = Y.copy()
        for _ in range(iters):
            F = alpha * (S @ F) + (1 - alpha) * Y
        F = np.maximum(F, 0)
        return F / np.maximum(F.sum(1, keepdims=True), 1e-12)

    def extend(self, F, X):
        """Scores for new photos: mean of their k nearest pool photos' scores."""
        S = self.embed(X) @ self.Z.T
        nbr = np.argpartition(-S, self.k, axis=1)[:, : self.k]
        return F[nbr].mean(1)


def linear_method(spec, X, y, lab, unl, n_classes, C, seed, graphs):
    """(W, b) on the raw features for a linear method (sup, std-all, pca, self, spreadfit); None
    for the others."""
    name, *arg = spec.split(":")
    XL, yL, XU = X[lab], y[lab], X[unl]
    if name == "sup":  # sup[:TOL]
        return fit_linear(XL, yL, n_classes, C, seed, **({"tol": float(arg[0])} if arg else {}))
    if name == "semi":  # the product's semi-supervised head (training/semi.py)
        from training.semi import fit_semi

        if arg and arg[0]:  # semi:N: a random N of the unlabeled photos (TrainParams.unlabeled)
            XU = XU[np.sort(np.random.default_rng(seed).permutation(len(XU))[: int(arg[0])])]
        Xp = np.vstack([XL, XU])
        tol = {"tol": float(arg[1])} if len(arg) > 1 else {}  # semi:N:TOL: the solver's tolerance
        return fit_semi(Xp, np.arange(len(XL)), yL, n_classes, C, seed, **tol)
    if name == "std-all":
        return linear_fit(XL, yL, XU, n_classes, C, seed, basis="all")
    if name == "pca":
        A, m = whitener(np.vstack([XL, XU]), int(arg[0]))
        coef, icpt = lr((XL - m) @ A, yL, n_classes, C, seed=seed)
        return fold(coef, icpt, A, m)
    if name == "self":
        q, w, r = float(arg[0]), float(arg[1]), int(arg[2])
        return self_train(XL, yL, XU, n_classes, C, seed, q, w, r, arg[3] if len(arg) > 3 else "lab")
    if name in ("spreadfit", "selfspread"):
        g, where = graph(X, lab, unl, int(arg[0]), graphs)
        F = g.spread([where[int(i)] for i in lab], yL, n_classes, float(arg[1]))
        FU = F[[where[int(i)] for i in unl]]
        if name == "selfspread":  # pseudo-labels from the head and spreading together
            W, b = fit_linear(XL, yL, n_classes, C, seed)
            FU = (FU + softmax(XU @ W.T + b)) / 2
        take = pick_confident(FU, float(arg[2]))
        A, m = standardiser(XL)
        Z = (np.vstack([XL, XU[take]]) - m) @ A
        weight = np.concatenate([np.ones(len(yL)), np.full(len(take), float(arg[3]))])
        coef, icpt = lr(Z, np.concatenate([yL, FU[take].argmax(1)]), n_classes, C, weight, seed)
        return fold(coef, icpt, A, m)
    return None


def graph(X, lab, unl, k, graphs):
    """The kNN graph of the pool lab + unl (cached: it is the same pool for every draw)."""
    pool = np.sort(np.concatenate([lab, unl]))
    key = (k, len(pool), int(pool.sum()))
    if key not in graphs:
        graphs.clear()
        graphs[key] = (Graph(X[pool], k), {int(p): i for i, p in enumerate(pool)})
    return graphs[key]


def run_method(spec, X, y, lab, unl, test, n_classes, C, seed, graphs):
    """Test-set probabilities (unsharpened) of one method."""
    got = linear_method(spec, X, y, lab, unl, n_classes, C, seed, graphs)
    XT = X[test]
    if got is not None:
        W, b = got
        return softmax(XT @ W.T + b)
    name, *arg = spec.split(":")
    XL, yL, XU = X[lab], y[lab], X[unl]
    if name == "ncm":
        A, m = whitener(np.vstack([XL, XU]), int(arg[0]))
        ZL, ZT = (XL - m) @ A, (XT - m) @ A
        mu = np.stack([ZL[yL == c].mean(0) for c in range(n_classes)])
        return softmax(-0.5 * ((ZT[:, None, :] - mu[None]) ** 2).sum(-1) / 10)
    if name in ("spread", "spread+sup"):
        g, where = graph(X, lab, unl, int(arg[0]), graphs)
        P = g.extend(g.spread([where[int(i)] for i in lab], yL, n_classes, float(arg[1])), XT)
        if name == "spread":
            return P
        W, b = fit_linear(XL, yL, n_classes, C, seed)
        return (P + softmax(XT @ W.T + b)) / 2
    raise SystemExit(f"unknown method {spec!r}")


def calibrated_ece(spec, X, y, lab, unl, test, n_classes, C, seed, graphs, folds=5):
    """Held-out (accuracy, ECE) of a linear method sharpened the product's way: a temperature
    fitted on out-of-fold logits of the labelled photos (each fold fitted by the same method, the
    left-out photos joining the unlabelled ones), then applied to the final head."""
    from sklearn.model_selection import StratifiedKFold

    from training.head import fit_temperature
    from training.metrics import evaluate

    oof = np.zeros((len(lab), n_classes))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(lab, y[lab]):
        W, b = linear_method(spec, X, y, lab[tr], np.concatenate([unl, lab[te]]), n_classes, C, seed, graphs)
        oof[te] = X[lab[te]] @ W.T + b
    t = fit_temperature(oof, y[lab])
    W, b = linear_method(spec, X, y, lab, unl, n_classes, C, seed, graphs)
    m = evaluate(y[test], softmax((X[test] @ W.T + b) / t), [str(i) for i in range(n_classes)])
    return m["accuracy"], m["ece"], t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="sup,std-all,pca:256,self:0.5:0.3:1,spread:10:0.9,spread+sup:10:0.9")
    ap.add_argument("--variant", default="lite2", help="feature variant of bench/head_features.py")
    ap.add_argument("--c", type=float, default=0.005, help="inverse L2 strength of every regression")
    ap.add_argument("--sizes", default="60,300,600,1200")
    ap.add_argument("--samples", type=int, default=3, help="training draws per label count")
    ap.add_argument("--first-draw", type=int, default=0, help="seed of the first training draw")
    ap.add_argument("--split", type=int, default=0, help="seed of the held-out split (bench/accuracy.py: 0)")
    ap.add_argument("--feats", type=Path, default=FEATS)
    ap.add_argument(
        "--calibrate",
        action="store_true",
        help="also the held-out ECE of linear methods "
        "after the product's temperature (5-fold out-of-fold logits; 6x the fits)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "semi_supervised.json")
    args = ap.parse_args()
    from head_features import load_variant

    meta = json.loads((args.feats / "labels.json").read_text())
    classes, labels = meta["classes"], meta["labels"]
    y = np.array([classes.index(lab) for lab in labels])
    X = load_variant(args.feats, args.variant).astype(np.float64)
    rest, held = stratified_split(labels, 0.2, args.split)
    rest, test = np.array(rest), np.array(held)
    rest_labels = [labels[i] for i in rest]
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")
    rows, graphs = [], {}
    for spec in methods:
        for n in sizes:
            accs, secs, eces = [], [], []
            for s in range(args.samples):
                lab = rest[balanced_sample(rest_labels, n, args.first_draw + s)]
                unl = np.setdiff1d(rest, lab)
                t = time.perf_counter()
                P = run_method(spec, X, y, lab, unl, test, len(classes), args.c, 0, graphs)
                secs.append(time.perf_counter() - t)
                accs.append(float(np.mean(P.argmax(1) == y[test])))
                if args.calibrate and spec.split(":")[0] in LINEAR:
                    eces.append(calibrated_ece(spec, X, y, lab, unl, test, len(classes), args.c, 0, graphs)[1])
            rows.append(
                {
                    "method": spec,
                    "labels": n,
                    "accuracy": accs,
                    "mean": float(np.mean(accs)),
                    "seconds": float(np.mean(secs)),
                    "ece": eces,
                }
            )
            print(
                f"{spec:>24} {n:>5}: "
                + " ".join(f"{a:.1%}" for a in accs)
                + f"  mean {np.mean(accs):.1%}  {np.mean(secs):.1f}s"
                + (f"  ECE {np.mean(eces):.3f} (max {max(eces):.3f})" if eces else ""),
                flush=True,
            )
    print(
        f"\nheld-out accuracy, {args.variant}, C {args.c:g}: seed-0 draw / mean of {args.samples} draws "
        f"(fit seconds at the largest size)\n"
    )
    print("| method | " + " | ".join(str(n) for n in sizes) + " | s |")
    print("| --- |" + " ---: |" * (len(sizes) + 1))
    for spec in methods:
        mine = [r for r in rows if r["method"] == spec]
        print(
            f"| {spec} | "
            + " | ".join(
                f"{r['accuracy'][0]:.1%} / {r['mean']:.1%}" + (f", ECE {np.mean(r['ece']):.3f}" if r["ece"] else "")
                for r in mine
            )
            + f" | {mine[-1]['seconds']:.1f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
