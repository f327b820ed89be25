"""How unusual each photo of a collection is: far from the other photos, or far from every class.

- `neighbour_distance`: mean cosine distance to a photo's k nearest photos (k = 10), itself and
  its own copies (similarity >= `SKIP_ABOVE`) left out: *far from the rest*.
- `known_class_distance`: *far from every class the model knows*: the mean of two robust z-scores,
  the cosine distance to the nearest class centroid of the labelled photos' embeddings and the
  mean cosine distance to the k nearest labelled photos.
- `unusual_ranking`: per photo the larger of the two z-scores (only the first before any label),
  most unusual first.

Measured by bench/curation.py (EfficientNet-Lite2 features, 9,171 photos: the shared scene photos,
330 made duplicates and 100 out-of-domain images in five kinds of 20; 600 labelled photos),
precision@100 for the made out-of-domain images: nearest class centroid 0.80, nearest labelled
photos 0.82, both 0.81, the ranking 0.80, far from the rest alone 0.04 (1 - the highest class
probability of the product's head on the same labels: 0.27, measured once by hand). Odd photos
that come in groups (20 noise images) are each other's neighbours, so "far from the rest" only
finds the lone ones; the labelled photos are what tells them apart. The 20 shared photos among
the first 100 are themselves no scenes (jellyfish, sea lions, turtles, a T-shirt print, domes
seen from below): counted as right, precision@100 is 1.00.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .neighbours import NeighbourIndex, normalise

K = 10
SKIP_ABOVE = 0.97  # neighbours at least this similar are the photo's own copies, not its neighbours
EXTRA = 10  # neighbours fetched beyond k, in case some are skipped


def neighbour_distance(
    vectors: np.ndarray,
    k: int = K,
    index: NeighbourIndex | None = None,
    ids: Sequence | None = None,
    skip_above: float = SKIP_ABOVE,
) -> np.ndarray:
    """(N,) mean cosine distance of each row to its k nearest photos in `index` (built from
    `vectors`, ids 0..N-1, if None), leaving out the photo itself (`ids[row]`, default row) and
    photos at similarity >= skip_above. A photo with only copies near it scores 0."""
    if index is None:
        index = NeighbourIndex(np.asarray(vectors).shape[1])
        index.add(list(range(len(vectors))), vectors)
    ids = range(len(vectors)) if ids is None else ids
    pos, sims = index.search_positions(vectors, k + 1 + EXTRA)
    held = np.asarray(index.ids, dtype=object)
    own = np.asarray(list(ids), dtype=object)[:, None]
    ok = (pos >= 0) & (sims < skip_above) & (held[np.clip(pos, 0, None)] != own)
    ok &= np.cumsum(ok, axis=1) <= k  # the k nearest left
    count = ok.sum(axis=1)
    total = np.where(ok, 1.0 - sims, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)


def class_centroids(vectors: np.ndarray, labels: Sequence) -> tuple[list, np.ndarray]:
    """(class names sorted, (C, F) normalised mean of each class's normalised vectors)."""
    x = normalise(vectors)
    names = sorted(set(labels))
    labels_arr = np.asarray(labels, dtype=object)
    means = np.stack([x[labels_arr == name].mean(axis=0) for name in names])
    return names, normalise(means)


def class_distance(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(N,) cosine distance of each row to its nearest class centroid."""
    return 1.0 - (normalise(vectors) @ centroids.T).max(axis=1)


def robust_z(score: np.ndarray) -> np.ndarray:
    """(score - median) / (1.4826 MAD): how many typical spreads above the usual value."""
    score = np.asarray(score, dtype=np.float64)
    median = np.median(score)
    spread = 1.4826 * np.median(np.abs(score - median))
    return (score - median) / (spread if spread > 0 else (score.std() or 1.0))


def known_class_distance(vectors: np.ndarray, labels: Sequence, k: int = K) -> np.ndarray:
    """(N,) robust z of "far from every known class"; `labels[row]` is the row's class or None."""
    labelled = [row for row, label in enumerate(labels) if label is not None]
    _, centroids = class_centroids(vectors[labelled], [labels[row] for row in labelled])
    index = NeighbourIndex(np.asarray(vectors).shape[1])
    index.add(labelled, vectors[labelled])
    nearest = neighbour_distance(vectors, k, index, skip_above=np.inf)
    return (robust_z(class_distance(vectors, centroids)) + robust_z(nearest)) / 2


@dataclass
class Unusual:
    rest: np.ndarray  # robust z of the mean cosine distance to the k nearest other photos
    known: np.ndarray | None  # robust z of the distance from every known class; None without labels
    score: np.ndarray  # the larger of the two
    order: np.ndarray  # row indices, most unusual first


def unusual_ranking(
    vectors: np.ndarray,
    labels: Sequence | None = None,
    k: int = K,
    index: NeighbourIndex | None = None,
    rest_distance: np.ndarray | None = None,
) -> Unusual:
    """Score every row of `vectors` (the whole collection; `index` over it, ids 0..N-1, if one is
    held). `labels`: each row's class or None; no labelled row leaves the known-class score out.
    `rest_distance`: `neighbour_distance` of the rows where the caller keeps it (training/nearest.py)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if rest_distance is None:
        rest_distance = neighbour_distance(vectors, k, index)
    rest = robust_z(rest_distance)
    known = None
    if labels is not None and any(label is not None for label in labels):
        known = known_class_distance(vectors, labels, k)
    score = rest if known is None else np.maximum(rest, known)
    return Unusual(rest, known, score, np.argsort(-score, kind="stable"))
