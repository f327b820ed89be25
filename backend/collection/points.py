"""The embedding map's data: every photo of the project's snapshot (snapshot.py) as a point in 2-D
with its task id, label, prediction and confidence, in columns (one list per field, labels as
indices into `classes`), so that 50,000 points are a 2 MB answer that the browser reads in one go.

The projection (training/projection.py) is the only costly part at that scale, so its result is
kept on disk per project (projects/<id>/collection/map-<key>.npy), keyed by the serving version and
the task set (ids and image digests): a page view recomputes nothing until a new version is served
or photos are added. Labels change with every correction and are read fresh from the snapshot.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np

from training.atomic import write_atomic
from training.projection import project_2d, scaled

CACHE_DIR = "collection"
PREFIX = "map-"
TOP = 10_000  # coordinates are integers in [0, TOP]


def cache_key(version: str | None, task_ids: np.ndarray, digests: list[str]) -> str:
    """What the projection depends on: the serving version (its backbone gives the vectors) and the
    tasks with their images."""
    h = hashlib.sha256(str(version).encode())
    h.update(np.ascontiguousarray(task_ids, dtype=np.int64).tobytes())
    h.update("\n".join(digests).encode())
    return h.hexdigest()[:24]


def cached_points(folder: Path, key: str, vectors: np.ndarray) -> np.ndarray:
    """(n, 2) int32 map coordinates for `key`: read from `folder`, else projected and written there
    (replacing older keys: one map per project is kept)."""
    path = folder / f"{PREFIX}{key}.npy"
    if path.exists():
        try:
            held = np.load(path, allow_pickle=False)
            if held.shape == (len(vectors), 2):
                return held
        except (OSError, ValueError):  # a damaged file: project again
            pass
    points = scaled(project_2d(vectors), TOP).astype(np.int32)
    out = io.BytesIO()
    np.save(out, points, allow_pickle=False)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, out.getvalue())
    for old in folder.glob(f"{PREFIX}*.npy"):
        if old != path:
            old.unlink(missing_ok=True)
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
    top, task, x, y, label, predicted, confidence (per mille, -1 for none)}."""
    snap = service.snapshots.get(pid)
    key = cache_key(snap.version, snap.task_ids, snap.digests)
    points = cached_points(service.projects.root / str(pid) / CACHE_DIR, key, snap.vectors)
    classes = list(snap.classes)
    confidence = [-1 if math.isnan(c) else round(1000 * float(c)) for c in snap.confidence.tolist()]
    return {
        "project": pid,
        "version": snap.version,
        "n": len(snap),
        "missing": snap.missing,
        "top": TOP,
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
