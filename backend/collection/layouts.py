"""The embedding map's t-SNE layout (training/projection.py `neighbour_layout`), computed in the
background: seconds at a few thousand photos, minutes at 50,000, so never inside a request.

A map request asks `Layouts.ready` for the layout of its key (backend/collection/points.py: the
photos and their vectors). Held on disk (projects/<id>/collection/tsne-<key>.npy, the newest only)
it is returned; else the computation is queued and the map shows the principal components meanwhile.
One computation at a time per process, on a daemon thread at the collection's lower CPU priority; per
project only the newest key asked for waits (photos arriving during an import ask for a new key
with every view of the map, and only the last one is worth computing).
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

import numpy as np

from backend.writeback.newtasks import background_priority
from training.atomic import write_atomic
from training.projection import TSNE_MIN_POINTS, neighbour_layout, scaled

log = logging.getLogger(__name__)

PREFIX = "tsne-"
TOP = 10_000  # the same integer scale as the principal components' map


def read_points(path: Path, n: int) -> np.ndarray | None:
    """The (n, 2) int32 points held at `path`, or None (absent, damaged or of another size)."""
    try:
        held = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return held if held.shape == (n, 2) else None


def write_points(folder: Path, prefix: str, key: str, points: np.ndarray) -> None:
    """Write `points` as folder/<prefix><key>.npy and drop that prefix's older keys."""
    out = io.BytesIO()
    np.save(out, points, allow_pickle=False)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}{key}.npy"
    write_atomic(path, out.getvalue())
    for old in folder.glob(f"{prefix}*.npy"):
        if old != path:
            old.unlink(missing_ok=True)


class Layouts:
    """One daemon thread computes the layouts asked for, one at a time (a t-SNE half-done at shutdown
    is dropped, not waited for: the next map view asks again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wanted: dict[Path, tuple[str, np.ndarray]] = {}  # per map folder: the newest key asked for
        self._computing: tuple[Path, str] | None = None
        self._failed: dict[Path, str] = {}  # the key whose computation failed: not tried again
        self._thread: threading.Thread | None = None
        self._closed = False

    def ready(self, folder: Path, key: str, vectors: np.ndarray) -> tuple[np.ndarray | None, bool]:
        """(the t-SNE points of `key`, None while not computed; whether one is being computed).
        Too few photos for t-SNE, or a failed try: (None, False), the map stays on the components."""
        if len(vectors) < TSNE_MIN_POINTS:
            return None, False
        held = read_points(folder / f"{PREFIX}{key}.npy", len(vectors))
        if held is not None:
            return held, False
        with self._lock:
            if self._failed.get(folder) == key or self._closed:
                return None, False
            if self._computing != (folder, key):  # (asked again while computed: once is enough)
                self._wanted[folder] = (key, vectors)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="map-layout", daemon=True)
                self._thread.start()
        return None, True

    def _run(self) -> None:
        """Compute what is asked for until nothing is left."""
        background_priority()
        while True:
            with self._lock:
                if not self._wanted or self._closed:
                    self._thread = None
                    return
                folder = next(iter(self._wanted))
                key, vectors = self._wanted.pop(folder)
                self._computing = (folder, key)
            try:
                points = scaled(neighbour_layout(vectors), TOP).astype(np.int32)
                write_points(folder, PREFIX, key, points)
            except Exception:  # the map keeps its components, the backend serves on
                log.exception("the map's t-SNE layout %s in %s failed", key, folder)
                with self._lock:
                    self._failed[folder] = key
            finally:
                with self._lock:
                    self._computing = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wanted.clear()
