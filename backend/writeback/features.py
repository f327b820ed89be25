"""The embeddings of a project's tasks: read from the embedding cache where the task index knows the
image's digest, fetched and embedded (CHUNK images at a time, bytes dropped after) where not, the
index told the digests it learnt. Used by the refresh and the prediction of new tasks; a training
reads only what is cached (`cached_rows`): it never downloads an image of an unlabeled task.

A refresh needs the embedding of every unlabeled task to rank them, before it writes the head: at
50,000 photos reading them from the SQLite cache and stacking them took ~2 s of every correction.
`FeatureMemo` keeps the last project's stacked embeddings in memory (one backbone's, up to
MEMO_BYTES allocated: 50,000 photos of Lite2 are 256 MB of vectors, 335 MB as the memo grows by
doubling), so a refresh reads only the photos added since. A refresh wants their class
probabilities, not the vectors: the memo applies the head to its held rows block by block and picks
the tasks' rows of the result (`apply`), instead of gathering a 256 MB copy of the vectors first
(~0.9 s of each refresh at 50,000 photos on 2 busy cores, bench/scale_cpu.py); where fewer than
half the held rows are asked for (a collection rewrite of a few tasks), only theirs are gathered.
"""

from __future__ import annotations

import threading

import numpy as np

from backend.fetch import FetchError
from backend.writeback.taskindex import IndexedTask, TaskIndex, indexed
from training.cache import known_hash

CHUNK = 256  # images fetched and embedded at a time
MEMO_BYTES = 600 * 2**20  # the stacked embeddings kept between refreshes (FeatureMemo), at most, as allocated
BLOCK_ROWS = 8192  # held rows a function is applied to at a time (FeatureMemo.stacked's `apply`): 40 MB of Lite2


def backbone_key(backbone) -> str:
    """What a backbone's vectors depend on: each part's id and image size."""
    parts = getattr(backbone, "parts", (backbone,))
    return "+".join(f"{p.id}@{p.preprocessing.image_size}" for p in parts)


def cached_rows(embeddings, backbone, digests: list[str]) -> dict[str, np.ndarray]:
    """digest -> the backbone's embedding, for the digests whose embedding is cached (a pair of
    backbones, `second_model`: both embeddings side by side)."""
    if not digests:
        return {}
    parts = getattr(backbone, "parts", (backbone,))
    found = [embeddings.get_many(digests, part.id, part.preprocessing.image_size) for part in parts]
    if len(found) == 1:  # one backbone: its rows as read (a copy of each costs ~1 s at 50,000)
        return found[0]
    return {d: np.concatenate([f[d] for f in found]) for d in dict.fromkeys(digests) if all(d in f for f in found)}


class FeatureMemo:
    """The stacked embeddings of one project's photos for one backbone, in memory between refreshes.
    An embedding never changes for its image digest and backbone, so the memo is never stale: it
    only grows (rows are appended, capacity doubling) and starts over for another project or
    backbone, or beyond `limit` bytes allocated (then nothing is kept)."""

    def __init__(self, limit: int = MEMO_BYTES):
        self.limit = limit
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._row: dict[str, int] = {}  # digest -> row of _matrix
        self._matrix = np.zeros((0, 0), dtype=np.float32)

    def stacked(self, key: tuple, digests: list[str | None], read, apply=None) -> tuple[np.ndarray, np.ndarray]:
        """(the embeddings of the `digests` found, stacked in their order, or with `apply` what it
        gives for them (a function of a block of rows, row by row: a head's probabilities); which
        digests were found), `read(missing digests)` giving those not held (digest -> vector, as
        `cached_rows`). One gather from the memo: at 50,000 photos a dict of every row and a second
        copy of the stack cost ~0.3 s of each refresh."""
        with self._lock:
            if key != self._key:
                self._key, self._row, self._matrix = key, {}, np.zeros((0, 0), dtype=np.float32)
            missing = [d for d in dict.fromkeys(digests) if d is not None and d not in self._row]
            self._append(read(missing) if missing else {})
            at = np.fromiter((self._row.get(d, -1) if d is not None else -1 for d in digests), np.int64, len(digests))
            found = at >= 0
            held = self._matrix[: len(self._row)]
            if apply is not None and 0 < 2 * int(found.sum()) < len(held):  # a few asked: their rows only
                out = apply(held[at[found]])
            elif apply is not None and found.any():
                out = np.concatenate([apply(held[s : s + BLOCK_ROWS]) for s in range(0, len(held), BLOCK_ROWS)])
                out = out[at[found]]
            else:
                out = held[at[found]] if found.any() else np.zeros((0, self._matrix.shape[1]), np.float32)
            if self._matrix.nbytes > self.limit:  # too big to keep (as allocated): this call only
                self._key, self._row, self._matrix = None, {}, np.zeros((0, 0), dtype=np.float32)
            return out, found

    def _append(self, got: dict[str, np.ndarray]) -> None:
        if not got:
            return
        dim = len(next(iter(got.values())))
        used = len(self._row)
        if self._matrix.shape[1] != dim:
            self._row, used = {}, 0
            self._matrix = np.zeros((0, dim), dtype=np.float32)
        if used + len(got) > len(self._matrix):
            grown = np.empty((max(2 * len(self._matrix), used + len(got), 1024), dim), dtype=np.float32)
            grown[:used] = self._matrix[:used]
            self._matrix = grown
        block = np.stack(list(got.values()))
        self._matrix[used : used + len(got)] = block
        self._row.update((d, used + k) for k, d in enumerate(got))


class TaskFeatures:
    def __init__(self, fetcher, embeddings):
        self.fetcher = fetcher
        self.embeddings = embeddings
        self.memo = FeatureMemo()

    def of_indexed(
        self, backbone, data_key: str, tasks: list[IndexedTask], api, project, index: TaskIndex, apply=None
    ) -> tuple[np.ndarray, list[int], list[str]]:
        """(features, or what `apply` gives for them (FeatureMemo.stacked); their task ids; errors)
        for indexed tasks: cached embeddings first, the rest fetched and embedded (and their digests
        recorded in `index`)."""
        key = (str(project), backbone_key(backbone))
        read = lambda missing: cached_rows(self.embeddings, backbone, missing)  # noqa: E731
        digests = [str(t.digest) if t.digest else None for t in tasks]
        cached, found = self.memo.stacked(key, digests, read, apply)
        hit = [t.id for t, f in zip(tasks, found.tolist()) if f]
        miss = [t.as_task(data_key) for t, f in zip(tasks, found.tolist()) if not f]
        x_new, kept, errors = self.embed(backbone, data_key, miss, api, project, index)
        ids = hit + [int(t["id"]) for t in kept]
        if not len(kept):
            return (cached if hit else np.zeros((0, 0))), ids, errors
        x_new = x_new if apply is None else apply(x_new)
        return (np.concatenate([cached, x_new]) if hit else x_new), ids, errors

    def embed(
        self, backbone, data_key: str, tasks: list[dict], api, project, index: TaskIndex | None = None
    ) -> tuple[np.ndarray, list[dict], list[str]]:
        """(features, the tasks they belong to, errors) for task dicts, CHUNK images at a time; the
        tasks embedded go into `index` with their digests."""
        feats, kept, errors = [], [], []
        for start in range(0, len(tasks), CHUNK):
            chunk = tasks[start : start + CHUNK]
            names = [f"task {t.get('id')}" for t in chunk]
            items = [(n, (t.get("data") or {}).get(data_key)) for n, t in zip(names, chunk)]
            fetched = self.fetcher.fetch_many(items, hostname=api.base_url, auth=api.auth, project=project)
            good = [(t, n, b) for t, n, b in zip(chunk, names, fetched) if not isinstance(b, FetchError)]
            errors += [str(b) for b in fetched if isinstance(b, FetchError)]
            if not good:
                continue
            bad: dict[int, str] = {}
            x = backbone.embed(
                [b for _, _, b in good], cache=self.embeddings, names=[n for _, n, _ in good], errors=bad
            )
            errors += list(bad.values())
            done = [(k, task, blob) for k, (task, _, blob) in enumerate(good) if k not in bad]
            feats += [x[k] for k, _, _ in done]
            kept += [task for _, task, _ in done]
            if index is not None:
                index.add(indexed(task, data_key, known_hash(blob)) for _, task, blob in done)
        return (np.stack(feats) if feats else np.zeros((0, 0))), kept, errors
