"""The embedding map's data: every photo of the project's snapshot (snapshot.py) as a point in 2-D
with its task id, label, prediction and confidence, in columns (one list per field, labels as
indices into `classes`), so that 50,000 points are a 2 MB answer that the browser reads in one go.

The projection (training/projection.py) is the only costly part at that scale, so its result is
kept on disk per project (projects/<id>/collection/map-<key>.npy for the principal components,
tsne-<key>.npy for t-SNE), keyed by the photos and their vectors: a page view recomputes nothing until
photos are added or a version with another backbone is served. The map is t-SNE's once the
background has computed it (layouts.py), the principal components until then (`layout` and
`layout_pending` in the answer say which). Labels change with every correction and are read fresh
from the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from backend.collection.layouts import read_points, write_points
from training.projection import project_2d, scaled

CACHE_DIR = "collection"
PREFIX = "map-"
TOP = 10_000  # coordinates are integers in [0, TOP]


def cache_key(task_ids: np.ndarray, digests: list[str], vectors: np.ndarray) -> str:
    """What the projection depends on: the tasks with their images, and the backbone that embedded
    them (told apart by the first and last vectors: another backbone gives other numbers)."""
    h = hashlib.sha256(np.ascontiguousarray(task_ids, dtype=np.int64).tobytes())
    h.update("\n".join(digests).encode())
    h.update(str(vectors.shape).encode())
    if len(vectors):
        h.update(np.ascontiguousarray(vectors[[0, -1]], dtype=np.float32).tobytes())
    return h.hexdigest()[:24]


def cached_points(folder: Path, key: str, vectors: np.ndarray) -> np.ndarray:
    """(n, 2) int32 map coordinates for `key`: read from `folder`, else projected and written there
    (replacing older keys: one map per project is kept)."""
    held = read_points(folder / f"{PREFIX}{key}.npy", len(vectors))  # None: absent or damaged
    if held is not None:
        return held
    points = scaled(project_2d(vectors), TOP).astype(np.int32)
    write_points(folder, PREFIX, key, points)
    return points


def _codes(values: list[str | None], classes: list[str]) -> list[int]:
    """Each value as its index in `classes` (-1 for None); a value not there is appended to it."""
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for v in values:
        if v is None:
            out.append(-1)
            continue
        if v not in index:
            index[v] = len(classes)
            classes.append(v)
        out.append(index[v])
    return out


def map_points(service, pid: str) -> dict:
    """The map of project `pid` (see the module docstring): {project, version, classes, n, missing,
    top, layout ("tsne" or "pca"), layout_pending (t-SNE being computed), task, x, y, label,
    predicted, confidence (per mille, -1 for none)}."""
    snap = service.snapshots.get(pid)
    key = cache_key(snap.task_ids, snap.digests, snap.vectors)
    folder = service.projects.root / str(pid) / CACHE_DIR
    points, pending = service.layouts.ready(folder, key, snap.vectors)
    layout = "tsne"
    if points is None:
        points, layout = cached_points(folder, key, snap.vectors), "pca"
    classes = list(snap.classes)
    confidence = [-1 if math.isnan(c) else round(1000 * float(c)) for c in snap.confidence.tolist()]
    return {
        "project": pid,
        "version": snap.version,
        "n": len(snap),
        "missing": snap.missing,
        "top": TOP,
        "layout": layout,
        "layout_pending": pending,
        "task": snap.task_ids.tolist(),
        "x": points[:, 0].tolist(),
        "y": points[:, 1].tolist(),
        "label": _codes(snap.labels, classes),
        "predicted": _codes(snap.predicted, classes),
        "confidence": confidence,
        "classes": classes,
    }


def map_json(service, pid: str) -> bytes:
    """`map_points` as compact JSON bytes (no spaces; FastAPI's encoder walks every element, slow at 50,000)."""
    return json.dumps(map_points(service, pid), separators=(",", ":")).encode()
