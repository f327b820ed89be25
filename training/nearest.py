"""Each photo's most similar other photos, kept as photos arrive: the "far from the rest" part of the
unusual score (training/unusual.py) without comparing every pair again.

`NearestKept.add(ids, vectors)` compares the new photos with every photo held (new x all, in
chunks): the new photos get their M most similar others, and an older photo's list takes a new
photo in where it is closer than its M-th. So adding photos costs new x all, never all x all:
100 photos added to 50,000 cost one (100 x 50,000) product, where the whole ranking again costs
(50,000 x 50,000). Adding a collection in parts gives the same lists as adding it at once.
`distance(k)` is `unusual.neighbour_distance` from the lists: the mean cosine distance to the k
nearest, the photo's own copies (similarity >= SKIP_ABOVE) and photos no longer present left out.
Vectors are not kept here (the caller holds them); `saved()` / `restore()` round-trip the lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .neighbours import normalise

M = 21  # neighbours kept per photo: k (10) + the photo's copies + those deleted, with room
CHUNK = 256  # new photos compared at a time


class NearestKept:
    def __init__(self, m: int = M):
        self.m = m
        self.ids: np.ndarray = np.zeros(0, dtype=np.int64)
        self.sims: np.ndarray = np.zeros((0, m), dtype=np.float32)  # most similar first; -inf where none
        self.nbrs: np.ndarray = np.zeros((0, m), dtype=np.int64)  # the neighbour's position; -1 where none

    def __len__(self) -> int:
        return len(self.ids)

    def add(
        self, ids: Sequence[int], vectors: np.ndarray, every: np.ndarray, between: Callable[[], object] | None = None
    ) -> None:
        """Take new photos `ids` with their `vectors`; `every` holds the vectors of all photos held
        before them, in order, then the new ones (rows 0..len(self)-1, then these). `between` is
        called before each CHUNK of new photos (a caller may wait there for more urgent work)."""
        start, x = len(self.ids), normalise(np.asarray(vectors, dtype=np.float32))
        if len(every) != start + len(x):
            raise ValueError(f"{len(every)} vectors for {start} held and {len(x)} new photos")
        base = normalise(np.asarray(every, dtype=np.float32))
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.sims = np.concatenate([self.sims, np.full((len(x), self.m), -np.inf, np.float32)])
        self.nbrs = np.concatenate([self.nbrs, np.full((len(x), self.m), -1, np.int64)])
        for lo in range(0, len(x), CHUNK):
            if between is not None:
                between()
            rows = np.arange(start + lo, start + min(lo + CHUNK, len(x)))
            sims = x[lo : lo + CHUNK] @ base.T  # (chunk, all)
            sims[np.arange(len(rows)), rows] = -np.inf  # not its own neighbour
            self._merge(rows, sims, np.arange(len(base)))
            if start:  # the photos held before: the new ones may come closer
                self._merge(np.arange(start), sims[:, :start].T, rows)

    def _merge(self, rows: np.ndarray, sims: np.ndarray, positions: np.ndarray) -> None:
        """Merge candidates (`sims`: rows x candidates at `positions`) into the rows' lists."""
        allsims = np.concatenate([self.sims[rows], sims], axis=1)
        allpos = np.concatenate([self.nbrs[rows], np.broadcast_to(positions, sims.shape)], axis=1)
        keep = np.argsort(-allsims, axis=1, kind="stable")[:, : self.m]
        self.sims[rows] = np.take_along_axis(allsims, keep, axis=1)
        self.nbrs[rows] = np.take_along_axis(allpos, keep, axis=1)

    def distance(self, k: int, skip_above: float, present: np.ndarray | None = None) -> np.ndarray:
        """(N,) mean cosine distance to the k nearest kept, copies (>= skip_above) and positions
        not `present` (a boolean mask over the photos held) left out; 0 where none is left."""
        ok = np.isfinite(self.sims) & (self.sims < skip_above) & (self.nbrs >= 0)
        if present is not None:
            ok &= present[np.clip(self.nbrs, 0, None)] & (self.nbrs >= 0)
        ranks = np.cumsum(ok, axis=1)
        ok &= ranks <= k
        count = ok.sum(axis=1)
        total = np.where(ok, 1.0 - self.sims, 0.0).sum(axis=1)
        return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)

    def saved(self) -> dict[str, np.ndarray]:
        return {"ids": self.ids, "sims": self.sims, "nbrs": self.nbrs}

    @classmethod
    def restore(cls, saved: dict[str, np.ndarray]) -> NearestKept:
        kept = cls(int(saved["sims"].shape[1]))
        kept.ids, kept.sims, kept.nbrs = saved["ids"].astype(np.int64), saved["sims"], saved["nbrs"]
        return kept
