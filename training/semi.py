"""A head that learns from the project's unlabeled photos too (semi-supervised).

Every task of a project is embedded anyway (each one gets a prediction), so the head's fit can use
the unlabeled ones: the labels are spread over a k-nearest-neighbour graph of all the photos
(label spreading), averaged with what the supervised head (training.head.fit_linear) says, and
every unlabeled photo joins a second fit with that pseudo-label at a small sample weight. The
result is the same plain linear layer (W, b) over the raw features as the supervised head.
bench/semi_supervised.py measured it ("Semi-supervised head" in bench/HISTORY.md; current figures: "`fast`: the
default head" in bench/RESULTS.md).
"""

from __future__ import annotations

import numpy as np

from .head import TOL, fit_linear, softmax

NEIGHBOURS = 10  # k of the cosine kNN graph
ALPHA = 0.9  # label spreading: share of a photo's score that comes from its neighbours
ITERATIONS = 30
WEIGHT = 0.1  # sample weight of a pseudo-labeled photo (a labeled one weighs 1)
CHUNK = 1024  # graph rows computed at a time (bounds memory: CHUNK x N similarities)


class Graph:
    """Symmetric, normalised cosine kNN graph over photos (standardised, L2-normalised features)."""

    def __init__(self, X: np.ndarray, k: int = NEIGHBOURS):
        from scipy.sparse import csr_matrix

        X = np.asarray(X, dtype=np.float32)
        n = len(X)
        k = max(1, min(k, n - 1))
        scale = X.std(axis=0)
        scale[scale < 1e-6] = 1.0
        Z = (X - X.mean(axis=0)) / scale
        Z /= np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
        nbr = np.zeros((n, k), dtype=np.int64)
        sim = np.zeros((n, k), dtype=np.float32)
        for start in range(0, n, CHUNK):
            S = Z[start : start + CHUNK] @ Z.T
            S[np.arange(len(S)), np.arange(start, start + len(S))] = -np.inf  # not its own neighbour
            part = np.argpartition(-S, k - 1, axis=1)[:, :k]
            nbr[start : start + len(S)] = part
            sim[start : start + len(S)] = np.take_along_axis(S, part, axis=1)
        w = np.maximum(sim, 0.0) ** 3
        A = csr_matrix((w.ravel(), (np.repeat(np.arange(n), k), nbr.ravel())), shape=(n, n))
        A = A + A.T
        d = np.asarray(A.sum(axis=1)).ravel()
        d = 1.0 / np.sqrt(np.where(d > 0, d, 1.0))
        self.S = A.multiply(d[:, None]).multiply(d[None, :]).tocsr()
        self.n = n

    def spread(self, rows: np.ndarray, y: np.ndarray, n_classes: int, alpha: float = ALPHA) -> np.ndarray:
        """Class scores (n, n_classes), rows summing to 1, from the labels y of the photos `rows`;
        each class's seeds weigh 1 in total, so a class with more labels does not flood the graph."""
        Y = np.zeros((self.n, n_classes))
        Y[rows, y] = 1.0
        Y /= np.maximum(Y.sum(axis=0, keepdims=True), 1.0)
        F: np.ndarray = Y.copy()
        for _ in range(ITERATIONS):
            F = alpha * (self.S @ F) + (1 - alpha) * Y
        F = np.maximum(F, 0.0)
        return F / np.maximum(F.sum(axis=1, keepdims=True), 1e-12)


def fit_semi(
    X_all: np.ndarray,
    rows: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    C: float,
    seed: int = 0,
    graph: Graph | None = None,
    weight: float = WEIGHT,
    tol: float = TOL,
    init: tuple | None = None,
):
    """W (n_classes, F), b from the labeled photos X_all[rows] (labels y) and every other row of
    X_all as an unlabeled photo. `graph` (over X_all) may be shared between fits on the same photos
    (cross-validation folds). Without unlabeled photos this is training.head.fit_linear. `init` =
    (W, b) of a fit on nearly the same rows (the head on every label, for a fold) starts the second
    fit there instead of at the supervised head: fewer solver iterations."""
    X_all = np.asarray(X_all, dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    XL = X_all[rows]
    W, b = fit_linear(XL, y, n_classes, C, seed, tol=tol)
    others = np.setdiff1d(np.arange(len(X_all)), rows)
    if len(others) == 0 or weight <= 0:
        return W, b
    graph = graph or Graph(X_all)
    XU = X_all[others]
    P = (graph.spread(rows, y, n_classes)[others] + softmax(XU @ W.T + b)) / 2
    present = np.unique(y)  # a label nobody gave is never a pseudo-label
    pseudo = present[P[:, present].argmax(axis=1)]
    # standardised on all the photos: a few labeled ones give a noisy scale that makes the
    # unlabeled rows huge and the fit slow (a minute on 16 labels + 5,000 photos)
    mean, scale = X_all.mean(axis=0), X_all.std(axis=0)
    scale[scale < 1e-6] = 1.0
    sample_weight = np.concatenate([np.ones(len(y)), np.full(len(others), float(weight))])
    return fit_linear(
        np.vstack([XL, XU]),
        np.concatenate([y, pseudo]),
        n_classes,
        C,
        seed,
        sample_weight=sample_weight,
        stats=(mean, scale),
        init=(W, b) if init is None else init,
        tol=tol,
    )
