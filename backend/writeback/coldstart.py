"""The cold start's order, before any training: the medoids of k-means clusters of the pretrained
embeddings first (one per cluster, biggest cluster first, then the next nearest of each), so the
first photos a person labels cover the collection (`cold_rows`, through `Refresher.cold_predictions`).
Each TASKS_CREATED (one upload request, sync/upload.py CHUNK_SIZE photos) is ordered among its own
photos: the requests' places interleave, and their first medoids tie on the lowest score (Label
Studio serves any of them). A whole-project order would mean rewriting every task's prediction after
each request; the first training re-ranks every task anyway."""

from __future__ import annotations

import numpy as np

from backend.inference.models import INITIAL_VERSION
from lsproto.notes import WHY_FIRST_BATCH, confidence_score
from lsproto.results import prediction
from training.acquisition import clusters as kmeans_clusters
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


def cold_rows(cfg, features: np.ndarray, kept: list[dict]) -> list[dict]:
    """The INITIAL answer (the first label, confidence 1/C: no idea) for each of the `kept` tasks
    (`features` their rows), queued so that the medoids of k-means clusters of the pretrained
    embeddings come first: a first batch that covers the photos, better than a random one. The
    equal scores' tie-break follows the same order, so "Label All Tasks" serves it too."""
    if not kept:
        return []
    order = medoids_first(features, kmeans_clusters(features, n_clusters(len(kept)), seed=0))
    rows = []
    confidence = 1.0 / len(cfg.labels)  # exactly what /predict answers at the cold start
    for position, i in enumerate(order):
        rank = position / len(order)
        row = {
            "task": kept[i]["id"],
            **prediction(cfg, cfg.labels[0], confidence_score(confidence, rank), INITIAL_VERSION),
            "why": WHY_FIRST_BATCH,
            "priority": rank,
        }
        row["result"][0]["score"] = round(confidence, 4)
        rows.append(row)
    return rows
