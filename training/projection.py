"""Embeddings to 2-D for the embedding map: the first two principal components.

PCA rather than UMAP or t-SNE: it is linear, so the same vectors give the same map on every machine
and a photo added later lands where its vector says without moving the others much; it needs numpy
only; and at 50,000 x 1,280 it takes well under a second with a randomised range finder (a fixed
seed, so it is deterministic), where a neighbour-graph method takes minutes on a laptop CPU.
`neighbour_overlap` measures how much of each photo's neighbourhood a map keeps (bench/map.py).
"""

from __future__ import annotations

import numpy as np

SEED = 0
OVERSAMPLE = 8  # extra random directions of the range finder: accuracy of the top two components
POWER_STEPS = 4  # power iterations: separate the top components when the spectrum is flat


def principal_axes(vectors: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), axes (2, d)) of `vectors` (n, d): the two directions of largest variance, each
    signed so that its largest-magnitude coordinate is positive (a map that does not flip between
    two runs). Fewer than two independent directions: the missing axes are zero."""
    x = np.asarray(vectors, dtype=np.float32)  # float32 throughout: 50,000 x 1,280 is 256 MB
    n, d = x.shape
    mean = x.mean(axis=0, dtype=np.float64) if n else np.zeros(d)
    axes = np.zeros((2, d))
    if n < 2 or d == 0:
        return mean, axes
    centred = x - mean.astype(np.float32)
    k = min(2 + OVERSAMPLE, n, d)
    basis = np.random.default_rng(seed).standard_normal((d, k)).astype(np.float32)
    for _ in range(POWER_STEPS):  # orthonormal range of (X^T X)^q X^T X Omega
        basis, _ = np.linalg.qr(centred.T @ (centred @ basis))
    small = (centred @ basis).astype(np.float64)  # (n, k): the data in the found subspace
    _, _, vt = np.linalg.svd(small, full_matrices=False)
    found = vt[:2] @ basis.T.astype(np.float64)  # (<=2, d)
    for i, axis in enumerate(found):
        top = int(np.argmax(np.abs(axis)))
        axes[i] = axis if axis[top] >= 0 else -axis
    return mean, axes


def project_2d(vectors: np.ndarray, seed: int = SEED) -> np.ndarray:
    """(n, 2) float32 coordinates of `vectors` (n, d) on their first two principal components."""
    mean, axes = principal_axes(vectors, seed)
    if len(vectors) == 0:
        return np.zeros((0, 2), np.float32)
    centred = np.asarray(vectors, dtype=np.float32) - mean.astype(np.float32)
    return (centred @ axes.T.astype(np.float32)).astype(np.float32)


def scaled(points: np.ndarray, top: int = 10_000) -> np.ndarray:
    """(n, 2) integer coordinates in [0, top], one scale for both axes (distances keep their
    proportions): compact in JSON, and all the precision a screen can show."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 0:
        return np.zeros((0, 2), np.int32)
    low = pts.min(axis=0)
    span = float((pts.max(axis=0) - low).max())
    if span <= 0:
        return np.full(pts.shape, top // 2, np.int32)
    return np.rint((pts - low) / span * top).astype(np.int32)


def neighbour_overlap(vectors: np.ndarray, points: np.ndarray, k: int = 10, sample: int = 500) -> float:
    """Mean fraction of each photo's k nearest neighbours (cosine, in `vectors`) that are also its
    k nearest in the map (`points`), over a seeded sample of photos: how faithful a map is."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    p = np.asarray(points, dtype=np.float64)
    n = len(v)
    if n <= k:
        return 1.0
    rows = np.random.default_rng(SEED).choice(n, size=min(sample, n), replace=False)
    kept = []
    for r in rows:
        near = np.argsort(-(v @ v[r]))[1 : k + 1]
        near_map = np.argsort(((p - p[r]) ** 2).sum(axis=1))[1 : k + 1]
        kept.append(len(set(near.tolist()) & set(near_map.tolist())) / k)
    return float(np.mean(kept))
