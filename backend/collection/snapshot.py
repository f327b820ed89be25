"""One project's photos as vectors, with what is known of each: the snapshot every collection view
(duplicates, unusual photos, similar photos, the map) starts from.

Which photos: the tasks of the task index (backend/writeback/taskindex.py, caught up with Label
Studio first) whose embedding under the serving version's backbone is cached, i.e. every task the
backend has predicted. A task never predicted yet is left out and counted (`missing`); nothing is
downloaded or embedded here. Labels are the newest annotation by a person (auto-accepted labels
are predictions, not labels), read from Label Studio's annotated tasks (as many as the labels) on every call.
Predictions are the serving version's calibrated probabilities (a matrix product on the vectors).
Before the first training there is no version: the pretrained backbone of the project's parameters
gives the vectors and no task has a prediction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np

from backend.errors import NotFound
from backend.writeback.features import cached_rows
from backend.writeback.taskindex import TaskIndex, catch_up
from training.neighbours import NeighbourIndex, normalise
from training.params import TrainParams


@dataclass(frozen=True)
class Snapshot:
    project: str
    version: str | None  # the serving version; None before the first training
    task_ids: np.ndarray  # (n,) int64, ascending
    digests: list[str]  # the image digest of each task (the cache key)
    vectors: np.ndarray  # (n, d) float32 unit rows
    labels: list[str | None]  # a person's label, None where there is none
    predicted: list[str | None]  # the serving version's label, None before the first training
    confidence: np.ndarray  # (n,) its calibrated confidence, NaN before the first training
    classes: list[str]  # the labeling config's labels
    missing: int  # indexed tasks without a cached embedding (not predicted yet)

    def __len__(self) -> int:
        return len(self.task_ids)

    def row_of(self, task_id: int) -> int:
        """The row of a task; NotFound when the snapshot does not hold it."""
        pos = int(np.searchsorted(self.task_ids, task_id))
        if pos >= len(self.task_ids) or int(self.task_ids[pos]) != int(task_id):
            raise NotFound(f"task {task_id} is not in project {self.project}'s collection (not predicted yet?)")
        return pos


class Snapshots:
    """The latest snapshot of each project, held by the Backend: the vectors and predictions are
    read again only when the serving version or the indexed tasks with an embedding changed; the
    labels are read on every call (they change with every correction)."""

    def __init__(self, service):
        self.service = service
        self._lock = threading.Lock()
        self._held: dict[str, tuple[tuple, Snapshot]] = {}
        self._indexes: dict[str, NeighbourIndex] = {}

    def get(self, pid: str, labels: bool = True) -> Snapshot:
        """Project `pid`'s snapshot now (see the module docstring); NotFound before its /setup.
        `labels=False`: every label None, and no request for them."""
        service = self.service
        state = service.projects.state(pid)
        if state is None or not state.label_config:
            raise NotFound(f"project {pid} is not set up (no /setup yet)")
        cfg = service.projects.config(state.label_config)
        api = service.projects.api(state)
        index = TaskIndex(service.projects.root / str(pid))
        catch_up(index, api, int(pid), cfg.data_key)
        tasks = index.tasks()
        vid = service.serving.serving_version(pid)
        key = (vid, len(tasks), tasks[-1].id if tasks else 0, sum(1 for t in tasks if t.digest))
        with self._lock:
            held = self._held.get(pid)
        if held is None or held[0] != key:
            held = (key, self._vectors(pid, state, cfg, tasks))
            with self._lock:
                self._held[pid] = held
        if not labels:
            return held[1]
        examples, _ = api.annotated_examples(int(pid), cfg)
        given = {e.task_id: e.label for e in examples}
        return replace(held[1], labels=[given.get(int(t)) for t in held[1].task_ids])

    def index(self, snap: Snapshot) -> NeighbourIndex:
        """A nearest-neighbour index over `snap`'s rows (ids = its task ids, in order): brute force
        below training.neighbours.EXACT_LIMIT photos, an HNSW graph above it when faiss is
        installed. Kept per project and grown with the tasks added since (task ids only grow);
        rebuilt when the rows changed otherwise (a deletion, another backbone)."""
        with self._lock:
            held = self._indexes.get(snap.project)
            known = len(held) if held is not None else 0
            if (
                held is None
                or held.dim != snap.vectors.shape[1]
                or not np.array_equal(np.asarray(held.ids[:known], dtype=np.int64), snap.task_ids[:known])
            ):
                held, known = NeighbourIndex(snap.vectors.shape[1]), 0
            if len(snap) > known:
                held.add([int(t) for t in snap.task_ids[known:]], snap.vectors[known:])
            self._indexes[snap.project] = held
            return held

    def _vectors(self, pid: str, state, cfg, tasks) -> Snapshot:
        """The snapshot without labels: cached embeddings of the indexed tasks, their predictions."""
        vid, classifier = self.service.serving.classifier(pid)
        if classifier is not None:
            backbone = classifier.backbone
        else:
            backbone = self.service.serving.backbone(TrainParams.from_dict(state.params or None))
        found = cached_rows(self.service.embeddings, backbone, [str(t.digest) for t in tasks if t.digest])
        held = [t for t in tasks if t.digest in found]
        n = len(held)
        raw = (
            np.stack([found[str(t.digest)] for t in held]).astype(np.float32) if held else np.zeros((0, 0), np.float32)
        )
        predicted: list[str | None] = [None] * n
        confidence = np.full(n, np.nan)
        if classifier is not None and n:
            proba = np.asarray(classifier.proba_from_features(raw), dtype=np.float64)
            best = np.argmax(proba, axis=1)
            names = list(classifier.labels)
            predicted = [names[int(b)] for b in best]
            confidence = proba[np.arange(n), best]
        return Snapshot(
            project=pid,
            version=vid,
            task_ids=np.array([t.id for t in held], dtype=np.int64),
            digests=[str(t.digest) for t in held],
            vectors=normalise(raw) if n else raw,
            labels=[None] * n,
            predicted=predicted,
            confidence=confidence,
            classes=list(cfg.labels),
            missing=len(tasks) - n,
        )
