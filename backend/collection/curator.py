"""The collection's update job: keep a project's duplicate groups and unusual scores current as
photos arrive and versions change, in the background (never in a request).

Where it runs: inside the two background writes that already hold what it needs, in whichever
process runs them. The prediction of new tasks (writeback/newtasks.py, the backend process) calls
`update` after the new photos are embedded; the refresh after a new version (writeback/refresh.py)
calls it with the version's labels. With TASVEER_TRAIN_IN=process the refresh runs in the training
child, which shares the data dir (the lock in curationstore.py keeps the two apart); with REDIS_URL
on the RQ worker that trained, which keeps its own copy under its own data dir.

An update adds the indexed tasks the finder does not hold yet whose embedding is cached (new x all:
training/duplicates.py), their thumbnails from the image bytes the fetcher's disk cache already
holds (fetched again only where the cache lost them), and into each photo's list of most similar
photos (training/nearest.py: new x all as well), then scores every photo (training/unusual.py:
the lists give "far from the rest", the labels "far from every known class", N x labels) and stores
the result (curationstore.py). So an update costs what arrived times the collection, not the
collection squared: at 8,741 photos the whole kNN ranking took 24 s on 2 busy cores. The finder is rebuilt when it
is missing or was built with another backbone (a fine-tuned version embeds with its own network).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from backend.collection.curationstore import Curation, CurationStore
from backend.fetch import FetchError
from backend.writeback.features import backbone_key, cached_rows
from backend.writeback.taskindex import IndexedTask, TaskIndex
from training.duplicates import DuplicateFinder
from training.images import ImageError
from training.layout import thumbnail
from training.nearest import NearestKept
from training.unusual import SKIP_ABOVE, K, unusual_ranking

log = logging.getLogger(__name__)

UNUSUAL_KEPT = 1000  # unusual scores stored, strongest first (the route and the tab read the top)
# new photos added to the duplicate finder per step: an update after a long import covers tens of
# thousands, whose candidate pairs and thumbnails at once would take gigabytes; and between two steps
# the update gives way to corrections (`pause`). A step's thumbnail comparisons hold the process's
# GIL: 250 a step at 50,000 photos took seconds of a correction's fit beside it (py-spy in
# bench/scale.py, 2026-12-06), so a step is 100 photos
ADD_CHUNK = 100
GIVE_WAY_MAX = 30.0  # seconds a step waits at most for corrections: a labeling session does not starve it
GIVE_WAY_POLL = 0.2


def give_way(busy: Callable[[], bool], most: float = GIVE_WAY_MAX, poll: float = GIVE_WAY_POLL) -> float:
    """Wait while `busy()` (a training or a refresh runs), at most `most` seconds; the seconds waited."""
    start = time.monotonic()
    while busy() and time.monotonic() - start < most:
        time.sleep(poll)
    return time.monotonic() - start


class Curator:
    def __init__(self, projects, serving, fetcher, embeddings):
        self.projects = projects
        self.serving = serving
        self.fetcher = fetcher
        self.embeddings = embeddings
        # called between the steps of an update: the backend waits there while a correction trains or
        # its refresh runs (service.py), so the catch-up after a big import leaves them the cores
        self.pause: Callable[[], object] = lambda: None

    def store(self, pid: str) -> CurationStore:
        return CurationStore(self.projects.root / str(pid))

    def latest(self, pid: str) -> Curation | None:
        """The stored result (what the routes answer), None before the first update."""
        return self.store(pid).read()

    def backbone(self, pid: str, state):
        """The serving version's backbone, else the pretrained one of the project's parameters."""
        return self.serving.embedding_backbone(pid, state.params)

    def update(self, pid: str, api, labels: dict[int, str] | None = None) -> Curation | None:
        """Bring the project's groups and scores up to date with its indexed tasks (the caller
        caught the index up); `labels` (task -> a person's label) replace the stored ones. None
        when the project is not set up or holds no embedded photo."""
        state = self.projects.state(pid)
        if state is None or not state.label_config:
            return None
        # every update reads every photo's embedding and ranks them all (seconds at 50,000 photos,
        # holding the process's GIL in parts): a correction's training and head go first
        self.pause()
        backbone = self.backbone(pid, state)
        key = backbone_key(backbone)
        store = self.store(pid)
        with store.locked():
            tasks = TaskIndex(self.projects.root / str(pid)).tasks()
            found = cached_rows(self.embeddings, backbone, [t.digest for t in tasks if t.digest])
            held = [t for t in tasks if t.digest in found]
            if not held:
                return None
            vectors = {t.id: found[str(t.digest)] for t in held}
            finder = self._finder(store, key, vectors)
            fresh = len(finder) == 0
            new = [t for t in held if t.id not in finder]
            for start in range(0, len(new), ADD_CHUNK):  # the same groups as at once, bounded memory
                self.pause()
                part = new[start : start + ADD_CHUNK]
                thumbs = self._thumbs(part, api, state)
                rows = np.stack([vectors[t.id] for t in part])
                finder.add([t.id for t in part], rows, [t.digest for t in part], thumbs)
            if new:
                store.save_finder(key, finder.saved(), fresh=fresh)
            rest = self._rest_distance(store, key, held, vectors)
            previous = store.read()
            if labels is None:
                labels = previous.labels if previous is not None else {}
            present = {t.id for t in held}
            curation = Curation(
                backbone=key,
                held=len(finder),
                groups=groups_among(finder, present),
                unusual=unusual_scores(held, vectors, labels, rest),
                labels={int(t): v for t, v in labels.items()},
                updated_at=time.time(),
            )
            store.write(curation)
        log.info(
            "project %s: collection updated: %d photos (%d new), %d duplicate groups",
            pid,
            len(held),
            len(new),
            len(curation.groups),
        )
        return curation

    def _finder(self, store: CurationStore, key: str, vectors: dict[int, np.ndarray]) -> DuplicateFinder:
        """The saved finder, or an empty one when none was saved for this backbone or one of its
        photos has no cached embedding any more (it is rebuilt from the tasks then)."""
        dim = len(next(iter(vectors.values())))
        saved = store.finder(key)
        if saved is not None and all(int(i) in vectors for i in saved["ids"]):
            rows = np.stack([vectors[int(i)] for i in saved["ids"]]) if len(saved["ids"]) else np.zeros((0, dim))
            return DuplicateFinder.restore(saved, rows.astype(np.float32))
        return DuplicateFinder(dim)

    def _rest_distance(self, store: CurationStore, key: str, held: list[IndexedTask], vectors) -> np.ndarray:
        """(len(held),) "far from the rest" from the kept nearest-photo lists, the new photos added
        first (rebuilt when missing, of another backbone, or a photo of them lost its embedding)."""
        saved = store.nearest(key)
        nearest = NearestKept.restore(saved) if saved is not None else NearestKept()
        if not all(int(i) in vectors for i in nearest.ids):
            nearest = NearestKept()
        known = {int(i) for i in nearest.ids}
        new = [t.id for t in held if t.id not in known]
        if new:
            order = [int(i) for i in nearest.ids] + new
            every = np.stack([vectors[i] for i in order]).astype(np.float32)
            nearest.add(new, every[len(known) :], every, between=self.pause)
            store.save_nearest(key, nearest.saved())
        present_ids = {t.id for t in held}
        present = np.array([int(i) in present_ids for i in nearest.ids], dtype=bool)
        distance = nearest.distance(K, SKIP_ABOVE, present)
        position = {int(i): p for p, i in enumerate(nearest.ids)}
        return np.array([distance[position[t.id]] for t in held], dtype=np.float32)

    def _thumbs(self, tasks: list[IndexedTask], api, state) -> list[np.ndarray | None]:
        """The tasks' thumbnails from the cached bytes; bytes the cache lost are fetched again; a
        photo that cannot be read has none (it links by its embedding alone)."""
        blobs = {t.id: self.fetcher.cache.read(str(t.digest)) for t in tasks}
        lost = [t for t in tasks if blobs[t.id] is None and t.image]
        if lost:
            fetched = self.fetcher.fetch_many(
                [(f"task {t.id}", str(t.image)) for t in lost],
                hostname=api.base_url,
                auth=api.auth,
                project=state.project,
            )
            blobs.update({t.id: (None if isinstance(b, FetchError) else b) for t, b in zip(lost, fetched)})
        out: list[np.ndarray | None] = []
        for t in tasks:
            blob = blobs[t.id]
            try:
                out.append(thumbnail(bytes(blob), f"task {t.id}") if blob is not None else None)
            except (ImageError, OSError, ValueError):
                out.append(None)
        return out


def groups_among(finder: DuplicateFinder, present: set[int]) -> list[dict]:
    """The finder's groups over the tasks still present (deleted tasks left out), smallest id first."""
    out = []
    for group in finder.groups():
        members = sorted(int(t) for t in group.ids if int(t) in present)
        if len(members) > 1:
            out.append({"id": members[0], "tasks": members, "exact": bool(group.exact)})
    return sorted(out, key=lambda g: g["id"])


def unusual_scores(
    held: list[IndexedTask], vectors: dict[int, np.ndarray], labels: dict[int, str], rest: np.ndarray | None = None
) -> list[dict]:
    """The UNUSUAL_KEPT most unusual photos, strongest first, with the score's two parts (robust
    z-scores: far from the rest, far from every known class; None before any label)."""
    if len(held) < 3:
        return []
    x = np.stack([vectors[t.id] for t in held]).astype(np.float32)
    ranking = unusual_ranking(x, [labels.get(t.id) for t in held], rest_distance=rest)
    known = ranking.known
    return [
        {
            "task": held[int(row)].id,
            "score": round(float(ranking.score[row]), 3),
            "rest": round(float(ranking.rest[row]), 3),
            "known": None if known is None else round(float(known[row]), 3),
        }
        for row in ranking.order[:UNUSUAL_KEPT]
    ]
