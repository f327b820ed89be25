"""The cold start's order, before any training: the medoids of k-means clusters of the pretrained
embeddings first (one per cluster, biggest cluster first, then the next nearest of each), so the
first photos a person labels cover the collection (`Refresher.cold_predictions`)."""

from __future__ import annotations

import numpy as np

from training.acquisition import standardise
from training.params import TrainParams


def medoids_first(features: np.ndarray, groups: np.ndarray) -> list[int]:
    """Row indices in serving order: each cluster's members by distance to its centre (standardised
    features), taken round-robin over the clusters, biggest cluster first."""
    xs = standardise(features)
    queues = []
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        d = ((xs[members] - xs[members].mean(axis=0)) ** 2).sum(axis=1)
        queues.append(list(members[np.argsort(d, kind="stable")]))
    queues.sort(key=len, reverse=True)
    order = []
    for depth in range(max(len(q) for q in queues)):
        order += [int(q[depth]) for q in queues if depth < len(q)]
    return order


def pretrained_features(state) -> bool:
    """Whether the project's backbone has pretrained weights (so its features mean something
    before any training)."""
    try:
        params = TrainParams.from_dict(state.params or None)
    except ValueError:
        return False
    return params.pretrained is not False and params.model != "smallcnn"


def n_clusters(n: int) -> int:
    return max(1, min(20, int(np.sqrt(n / 2))))
