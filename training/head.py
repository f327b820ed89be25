"""The linear head: multinomial logistic regression on backbone embeddings.

Fitted with scikit-learn (standardise, then L2-regularised logistic regression), then folded into
one (W, b) pair over *all* labels of the project, so the stored head is a plain linear layer.
Labels with no example get a bias that makes their probability zero instead of breaking the fit.
"""

from __future__ import annotations

import warnings

import numpy as np

ABSENT_BIAS = -1e4
# The L-BFGS solver's stopping tolerance. 1e-3 (scikit-learn's default is 1e-4) stops about twice as
# early with the same held-out accuracy and calibration (bench/semi_supervised.py, two splits, 60 to
# 1,200 labels: within 0.1 point, ECE within 0.003); a correction's fit, the semi-supervised head
# and its 5-fold cross-validation over 2,000 unlabeled photos, takes half the time. 3e-3 lost up to
# 0.4 point. Figures in bench/RESULTS.md ("`fast`: the default head").
TOL = 1e-3


class TooFewLabels(ValueError):
    """Training needs examples of at least two labels."""


def fit_linear(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    C: float = 0.5,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
    stats: tuple | None = None,
    init: tuple | None = None,
    tol: float = TOL,
):
    """Fit on features X (N, F) and label indices y; returns W (n_classes, F), b (n_classes,).
    `sample_weight` weighs the rows (default 1 each); `stats` = (mean, scale) standardises with
    those instead of X's own; `init` = (W, b) of an earlier fit on the same labels starts the
    solver there (training/semi.py: fewer iterations). `tol`: the solver's stopping tolerance
    (TOL)."""
    from sklearn.exceptions import ConvergenceWarning  # here: serving needs only softmax
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    if len(present) < 2:
        raise TooFewLabels(f"need annotated examples of at least 2 labels to train; have {len(y)} of {len(present)}")
    if stats is None:
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-6] = 1.0
    else:
        mean, scale = stats
    Xs = (X - mean) / scale
    clf = LogisticRegression(C=C, max_iter=2000, tol=tol, random_state=seed, warm_start=init is not None)
    if init is not None and len(present) > 2:  # lbfgs starts from coef_ / intercept_ when warm
        W0, b0 = init
        clf.coef_ = (W0[present] * scale).astype(np.float64)
        clf.intercept_ = (b0[present] + W0[present] @ mean).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xs, y, sample_weight=sample_weight)
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # binary: sklearn keeps one row for classes_[1]
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    W = np.zeros((n_classes, X.shape[1]), dtype=np.float32)
    b = np.full(n_classes, ABSENT_BIAS, dtype=np.float32)
    for row, cls in enumerate(clf.classes_):
        W[cls] = coef[row] / scale
        b[cls] = intercept[row] - float(np.dot(coef[row] / scale, mean))
    return W, b


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; a NaN row (an image that failed to decode) stays NaN."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = logits - np.nanmax(logits, axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def cross_val_logits(
    X: np.ndarray, y: np.ndarray, n_classes: int, C: float, seed: int = 0, folds: int = 5, fit=None
) -> np.ndarray | None:
    """Out-of-fold logits for every example (honest metrics without giving up training data);
    None when there are too few examples for at least two folds. `fit(train_rows) -> (W, b)`, if
    given, fits a fold instead of fit_linear (the semi-supervised head)."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    k = min(folds, int(counts[counts > 0].min()) if counts.any() else 0)
    if k < 2:
        return None
    logits = np.zeros((len(y), n_classes), dtype=np.float32)
    for train_idx, test_idx in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y):
        if fit is None:
            W, b = fit_linear(X[train_idx], y[train_idx], n_classes, C, seed)
        else:
            W, b = fit(train_idx)
        logits[test_idx] = X[test_idx] @ W.T + b
    return logits


def leave_one_out_logits(
    X: np.ndarray, y: np.ndarray, n_classes: int, C: float, seed: int = 0, fit=None
) -> np.ndarray | None:
    """Out-of-sample logits by leaving each example out in turn: the honest estimate for the first
    few labels, too few for k-fold cross-validation. An example whose label has no other example is
    predicted by a model that never saw that label (so it counts as wrong, as it would be). None
    when some left-out example leaves fewer than 2 labels to train on. `fit` as in
    cross_val_logits."""
    if len(y) < 3:
        return None
    logits = np.zeros((len(y), n_classes), dtype=np.float32)
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        if len(np.unique(y[rest])) < 2:
            return None
        W, b = fit_linear(X[rest], y[rest], n_classes, C, seed) if fit is None else fit(np.flatnonzero(rest))
        logits[i] = X[i] @ W.T + b
    return logits


def labels_short_of_cv(y: np.ndarray, label_names: list[str], need: int = 2) -> dict[str, int]:
    """How many more labels each labeled class needs before k-fold cross-validation can run (every
    labeled class needs `need` examples, one per fold)."""
    counts = np.bincount(y, minlength=len(label_names))
    return {label_names[i]: int(need - c) for i, c in enumerate(counts) if 0 < c < need}


def fit_temperature(logits: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (0.02, 1.0)) -> float:
    """The temperature T that makes softmax(logits / T) best calibrated (lowest NLL) on held-out
    logits. Strong L2 keeps the head accurate on few labels but makes it timid (all scores near
    1/C); dividing by T restores scores that mean what they say, and never changes the argmax."""
    from scipy.optimize import minimize_scalar

    rows = logits[np.arange(len(y)), y] > ABSENT_BIAS / 2  # true label was trainable in its fold
    z, t = logits[rows].astype(np.float64), y[rows]
    if len(t) < 2:
        return 1.0

    def nll(log_t):
        s = z / np.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(t)), t]))

    # Heads only ever sharpen (the default bounds): out-of-fold models see fewer examples than the
    # final one, and on a few dozen labels their NLL can ask for T > 1, which made held-out scores
    # even more timid. A fine-tuned network, calibrated on its validation split, may go either way.
    best = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(best.x))
