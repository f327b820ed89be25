"""Embeddings to 2-D for the embedding map: t-SNE, with the first two principal components while it
is computed.

Measured on the shared photos' Lite2 embeddings (bench/projection.py, 8,741 photos, 2 cores): of each
photo's 10 nearest photos, t-SNE (openTSNE, FFT-accelerated, on 50 principal components) keeps 27.6 %
among its 10 nearest points on the map, UMAP 13.2 %, PaCMAP 8.7 %, the first two principal
components 2.1 %; a photo's 10 nearest points mostly share its class for 88.7 % (t-SNE), 88.5 %
(UMAP), 85.4 % (PaCMAP) and 63.7 % (PCA) of photos. So the map draws t-SNE. It costs ~20 s at
8,741 photos (UMAP 41 s) and minutes at 50,000, so it runs in the background (backend/collection/
layouts.py) and the map shows the principal components (0.1 s at 8,741, 0.75 s at 50,000) until it
is ready. openTSNE needs numpy, scipy and scikit-learn only; UMAP and PaCMAP would add numba
(~210 MB with llvmlite).

Both are deterministic for the same vectors (fixed seeds; t-SNE starts from the principal
components). `neighbour_overlap` is the measure of a map's faithfulness used above.
"""

from __future__ import annotations

import numpy as np

SEED = 0
TSNE_DIMS = 50  # principal components t-SNE starts from: its documented practice, and 25x less work
TSNE_MIN_POINTS = 20  # fewer photos: the principal components are the map (t-SNE needs neighbours)
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


def neighbour_layout(vectors: np.ndarray, seed: int = SEED, n_jobs: int = 1) -> np.ndarray:
    """(n, 2) float32 t-SNE coordinates of `vectors` (n, d), computed on their first TSNE_DIMS
    principal components; below TSNE_MIN_POINTS rows, `project_2d`'s. Seconds to minutes: call it
    in the background."""
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    if n < TSNE_MIN_POINTS:
        return project_2d(x, seed)
    from openTSNE import TSNE
    from sklearn.decomposition import PCA

    dims = min(TSNE_DIMS, n - 1, x.shape[1])
    reduced = PCA(dims, random_state=seed).fit_transform(x).astype(np.float32)
    perplexity = min(30.0, (n - 1) / 3.0)
    layout = TSNE(perplexity=perplexity, n_jobs=n_jobs, random_state=seed, verbose=False).fit(reduced)
    return np.asarray(layout, dtype=np.float32)


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
