"""Active learning: which unlabeled images a human should label next.

Strategies (`STRATEGIES`):
- `random`: a seeded random batch (the baseline).
- `least_confidence`: lowest top-1 probability first.
- `margin`: smallest gap between the two most likely labels first.
- `entropy`: highest predictive entropy first.
- `diverse`: the `DIVERSE_POOL` * k smallest-margin candidates, grouped by k-means into k
  clusters on standardised embeddings; the smallest-margin member of each cluster is taken, so
  one batch does not spend labels on near-duplicates of a single confusion.

`priority` turns a strategy into Label Studio's prediction `score`: Label Studio's uncertainty
sampling serves the LOWEST score first, so lower = more useful to label. `clusters` fills the
prediction `cluster` field, which Label Studio uses to avoid serving near-duplicates in a row.
`initial_batch` picks the first batch when nothing is labeled yet: the k-means medoids, which
cover the photo collection better than a random draw.
"""

from __future__ import annotations

import hashlib

import numpy as np

STRATEGIES = ("random", "least_confidence", "margin", "entropy", "diverse")
DEFAULT_STRATEGY = "margin"  # won bench/active_learning.py (bench/RESULTS.md)
DIVERSE_POOL = 4  # diverse: candidates = this many times the batch size, by margin


def check_strategy(strategy: str) -> str:
    """The strategy name, or ValueError naming the valid ones."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    return strategy


def _proba(proba) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be (N, C) with C >= 2 classes; got shape {p.shape}")
    if len(p) and (not np.isfinite(p).all() or p.min() < -1e-6 or p.max() > 1 + 1e-6):
        raise ValueError("proba must hold finite probabilities in [0, 1]")
    return np.clip(p, 0.0, 1.0)


def margin_score(proba) -> np.ndarray:
    """Top-1 minus top-2 probability, in [0, 1]; 0 = the two best labels tie."""
    top2 = np.sort(_proba(proba), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def confidence_score(proba) -> np.ndarray:
    """Top-1 probability rescaled to [0, 1]: 0 = uniform prediction, 1 = certain."""
    p = _proba(proba)
    c = p.shape[1]
    return np.clip((p.max(axis=1) - 1.0 / c) * c / (c - 1), 0.0, 1.0)


def entropy_score(proba) -> np.ndarray:
    """Predictive entropy normalised to [0, 1] by log(C): 1 = uniform."""
    p = np.clip(_proba(proba), 1e-12, 1.0)
    return np.clip(-(p * np.log(p)).sum(axis=1) / np.log(p.shape[1]), 0.0, 1.0)


def _hash_unit(proba) -> np.ndarray:
    """A value in [0, 1) per row from a hash of the row's probabilities (rounded to 1e-6): the same
    prediction always gets the same value, and different predictions look uniformly random."""
    p = np.round(_proba(proba), 6)
    out = np.empty(len(p))
    for i, row in enumerate(p):
        digest = hashlib.blake2b(row.tobytes(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def priority(proba, strategy: str) -> np.ndarray:
    """Per row, a value in [0, 1] where LOWER means MORE useful to label (Label Studio serves the
    lowest prediction score first). margin and diverse: top1 - top2; least_confidence: the top-1
    probability rescaled so a uniform prediction is 0; entropy: 1 - normalised entropy; random: a
    deterministic hash of the row's probabilities (see `_hash_unit`)."""
    check_strategy(strategy)
    if strategy in ("margin", "diverse"):
        return margin_score(proba)
    if strategy == "least_confidence":
        return confidence_score(proba)
    if strategy == "entropy":
        return 1.0 - entropy_score(proba)
    return _hash_unit(proba)


def standardise(features) -> np.ndarray:
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"features must be (N, F); got shape {X.shape}")
    scale = X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    return (X - X.mean(axis=0)) / scale


def _kmeans(Xs: np.ndarray, k: int, seed: int):
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=3, random_state=seed)
    return km.fit_predict(Xs), km.cluster_centers_


def clusters(features, k: int, seed: int = 0) -> np.ndarray:
    """Cluster id per row (k-means on standardised features); ids run 0..min(k, N)-1."""
    if int(k) < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    n = len(features)
    if n <= k:
        return np.arange(n, dtype=np.int64)
    labels, _ = _kmeans(standardise(features), int(k), seed)
    return labels.astype(np.int64)


def _medoids(Xs: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> list[int]:
    """Per cluster, the member nearest its centre; biggest clusters first."""
    picks = []
    for c in range(len(centers)):
        members = np.flatnonzero(labels == c)
        if len(members):
            d = ((Xs[members] - centers[c]) ** 2).sum(axis=1)
            picks.append((-len(members), int(members[np.argmin(d)])))
    return [i for _, i in sorted(picks)]


def initial_batch(features, k: int, seed: int = 0) -> np.ndarray:
    """k indices that cover the collection: the medoids of k-means clusters (biggest first)."""
    if int(k) < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    if len(features) <= k:
        return np.arange(len(features), dtype=np.int64)
    Xs = standardise(features)
    labels, centers = _kmeans(Xs, int(k), seed)
    return np.array(_medoids(Xs, labels, centers), dtype=np.int64)


def _diverse(proba, k: int, features, seed: int) -> np.ndarray:
    if features is None:
        raise ValueError("strategy 'diverse' needs the features (embeddings) of the candidates")
    X = np.asarray(features)
    if len(X) != len(proba):
        raise ValueError(f"{len(X)} feature rows but {len(proba)} probability rows")
    m = margin_score(proba)
    order = np.argsort(m, kind="stable")
    cand = order[: min(len(order), DIVERSE_POOL * k)]
    if len(cand) <= k:
        return cand
    labels, _ = _kmeans(standardise(X[cand]), k, seed)
    per_cluster = []  # each cluster's most uncertain candidate
    for c in range(k):
        members = cand[labels == c]
        if len(members):
            per_cluster.append(members[np.argmin(m[members])])
    picks = np.array(per_cluster, dtype=np.int64)
    picks = picks[np.argsort(m[picks], kind="stable")]
    if len(picks) < k:  # empty clusters: top up with the next most uncertain
        rest = [i for i in cand if i not in set(picks.tolist())]
        picks = np.concatenate([picks, np.array(rest[: k - len(picks)], dtype=np.int64)])
    return picks


def select(proba, k: int, strategy: str, *, features=None, seed: int = 0) -> np.ndarray:
    """Indices of the k rows to label next, most useful first (all rows when k >= N)."""
    check_strategy(strategy)
    p = _proba(proba)
    if int(k) < 0:
        raise ValueError(f"k must not be negative; got {k}")
    k = min(int(k), len(p))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if strategy == "random":
        return np.random.default_rng(seed).permutation(len(p))[:k].astype(np.int64)
    if strategy == "diverse":
        return _diverse(p, k, features, seed)
    return np.argsort(priority(p, strategy), kind="stable")[:k].astype(np.int64)


# -- older names (uncertainty up = more useful), kept for callers of the first version -----------
def entropy(proba) -> np.ndarray:
    """Normalised entropy: 1 = uniform."""
    return entropy_score(proba)


def margin(proba) -> np.ndarray:
    """1 - (top-1 minus top-2): 1 when the two best labels tie."""
    return 1.0 - margin_score(proba)


def least_confidence(proba) -> np.ndarray:
    """1 - top-1 probability, rescaled so a uniform prediction scores 1."""
    return 1.0 - confidence_score(proba)


def rank(proba, method: str = "margin") -> np.ndarray:
    """Indices from most to least uncertain (entropy, margin or least_confidence)."""
    if method not in ("entropy", "margin", "least_confidence"):
        raise ValueError(f"unknown acquisition method {method!r}; use one of entropy, margin, least_confidence")
    return np.argsort(priority(proba, method), kind="stable")
