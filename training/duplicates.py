"""Exact and near duplicates in a growing collection of photos.

Exact: the same bytes (the same SHA-256 content hash, `images.content_hash`). Near: a pair whose
embeddings' cosine similarity is at least `candidate` and whose layout similarity (layout.py: small
thumbnails compared, forgiving a mirror image, crops, re-encoding) is at least `threshold`. A photo
added without a thumbnail links by its embedding alone, at `embedding_only`. A group is a connected
component of all these links (union-find), so a photo, its mirror image and a re-encode of that
mirror image are one group.

`DuplicateFinder.add(ids, vectors, hashes, thumbs)` compares only the new photos with all photos
held (new x all, chunked brute force), never all pairs again, thumbnails only for each new photo's
`MAX_CANDIDATES` most similar earlier ones, and returns the groups the new photos are in; adding a
collection in parts gives the same groups as adding it at once.

Why both: pooled backbone features say what a photo shows, not which photo it is. On
EfficientNet-Lite2 features of the shared scene photos a JPEG re-encode at quality 40 can be as low
as 0.75 from its original while two different forest photos reach 0.93, so no embedding threshold
alone gives a pair precision above ~0.25 (bench/curation.py's sweep). The thumbnails tell the
photos apart; the embeddings keep the thumbnail check to a few dozen candidates a photo.
Defaults measured by bench/curation.py (9,171 photos: the shared scene photos, 300 made near
duplicates: mirror images, 6-12 % crops, JPEG re-encodes at quality 40-75, colour shifts of up to
10 %; 30 byte copies; 100 out-of-domain images): layout >= 0.94 finds 326 of the 330 made pairs
(recall 0.988) at pair precision 0.994 over the pairs that involve a made image; counting every
pair of two shared photos as false, 0.869 (47 such pairs: the data set's own near duplicates,
mostly true on sight). 0.92-0.95 all give precision >= 0.988 at recall >= 0.985; 0.90 falls to 0.93.
All 9,171 at once: 43 s on 2 idle cores (216 s before MAX_CANDIDATES); 100 more: 0.6 s.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from .layout import THUMB, pair_similarity
from .neighbours import NeighbourIndex, pairs_above, strongest_per_row, with_room

NEAR_THRESHOLD = 0.94  # layout similarity
CANDIDATE = 0.80  # embedding similarity for a pair to be checked at all
EMBEDDING_ONLY = 0.97  # embedding similarity that links a photo with no thumbnail
# At most this many candidates per new photo (its most similar earlier photos above CANDIDATE) go
# to the thumbnail check. On the shared scenes a photo has 33 candidates on average but 113 at the
# 90th percentile (skies, forests): without a cap the check cost ~24 ms a photo, twice embedding
# it. A made near duplicate's original was its nearest candidate 319 times in 326, and never
# further than 15th (bench/curation.py's collection; figures in bench/RESULTS.md).
MAX_CANDIDATES = 16


@dataclass(frozen=True)
class DuplicateGroup:
    ids: tuple  # in the order they were added
    exact: bool  # every member has the same bytes


class UnionFind:
    """Disjoint sets over positions 0..n-1 with their members (union by size)."""

    def __init__(self):
        self.parent: list[int] = []
        self.members: dict[int, list[int]] = {}

    def grow(self, n: int) -> None:
        for pos in range(len(self.parent), n):
            self.parent.append(pos)
            self.members[pos] = [pos]

    def find(self, pos: int) -> int:
        while self.parent[pos] != pos:
            self.parent[pos] = self.parent[self.parent[pos]]  # path halving
            pos = self.parent[pos]
        return pos

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra].extend(self.members.pop(rb))
        return ra


class DuplicateFinder:
    """Photos added so far (ids, normalised vectors, content hashes, thumbnails) and their groups."""

    def __init__(
        self,
        dim: int,
        threshold: float = NEAR_THRESHOLD,
        candidate: float = CANDIDATE,
        embedding_only: float = EMBEDDING_ONLY,
        max_candidates: int = MAX_CANDIDATES,
    ):
        self.threshold, self.candidate, self.embedding_only = threshold, candidate, embedding_only
        self.max_candidates = max_candidates
        self._rows = NeighbourIndex(dim, exact_limit=math.inf)  # storage only: pairs are brute force
        self._thumbs = np.zeros((0, 3, THUMB, THUMB), dtype=np.uint8)
        self._has_thumb = np.zeros(0, dtype=bool)
        self._hashes: list[str | None] = []
        self._first_with_hash: dict[str, int] = {}
        self._sets = UnionFind()
        self._position: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, photo: Hashable) -> bool:
        return photo in self._position

    def add(
        self,
        ids: Sequence[Hashable],
        vectors: np.ndarray,
        hashes: Sequence[str | None] | None = None,
        thumbs: Sequence[np.ndarray | None] | None = None,
    ) -> list[DuplicateGroup]:
        """Take new photos; the groups (two photos or more) that any of them is in now.

        `thumbs`: `layout.thumbnail(bytes)` of each photo (None where unknown). A vector row of NaN
        (a photo that could not be embedded) links by hash only; a hash of None by vector only."""
        hashes = list(hashes) if hashes is not None else [None] * len(ids)
        thumbs = list(thumbs) if thumbs is not None else [None] * len(ids)
        if not len(ids) == len(vectors) == len(hashes) == len(thumbs):
            raise ValueError(f"{len(ids)} ids, {len(vectors)} vectors, {len(hashes)} hashes, {len(thumbs)} thumbs")
        repeated = [i for i in ids if i in self._position]
        if repeated or len(set(ids)) < len(ids):
            raise ValueError(f"ids added twice: {repeated or 'within one call'}")
        start = len(self._rows)
        self._rows.add(ids, vectors)
        self._keep_thumbs(start, thumbs)
        self._sets.grow(len(self._rows))
        for offset, (photo, digest) in enumerate(zip(ids, hashes)):
            self._position[photo] = start + offset
            self._hashes.append(digest)
            if digest:
                self._sets.union(self._first_with_hash.setdefault(digest, start + offset), start + offset)
        for a, b in self._near_links(start):
            self._sets.union(int(a), int(b))
        return self._groups_of({self._sets.find(pos) for pos in range(start, len(self._rows))})

    def _keep_thumbs(self, start: int, thumbs: list) -> None:
        end = start + len(thumbs)
        self._thumbs = with_room(self._thumbs, start, end)
        self._has_thumb = with_room(self._has_thumb, start, end)
        for pos, thumb in enumerate(thumbs, start):
            self._has_thumb[pos] = thumb is not None
            if thumb is not None:
                self._thumbs[pos] = thumb

    def _near_links(self, start: int) -> list[tuple[int, int]]:
        """(new position, earlier position) pairs that are near duplicates: each pair once."""
        found = pairs_above(self._rows.vectors[start:], self._rows.vectors, self.candidate)
        pairs = np.array([(start + r, c, s) for r, c, s in found if c < start + r]).reshape(-1, 3)
        pairs = strongest_per_row(pairs, self.max_candidates)
        a, b, emb = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64), pairs[:, 2]
        checked = self._has_thumb[a] & self._has_thumb[b]
        near = emb >= self.embedding_only
        layout = pair_similarity(self._thumbs, a[checked], b[checked])
        near[checked] = layout >= self.threshold
        return list(zip(a[near], b[near]))

    def saved(self) -> dict[str, np.ndarray]:
        """What `restore` needs besides the vectors (which a caller keeps elsewhere: they are the
        embedding cache's): ids, content hashes ("" for none), thumbnails and the union-find's
        parents, so a restart neither fetches a photo nor compares a pair again."""
        n = len(self._rows)
        return {
            "ids": np.asarray(self._rows.ids, dtype=np.int64),
            "hashes": np.asarray([h or "" for h in self._hashes], dtype=str),
            "thumbs": self._thumbs[:n],
            "has_thumb": self._has_thumb[:n],
            "parent": np.asarray([self._sets.find(p) for p in range(n)], dtype=np.int64),
        }

    @classmethod
    def restore(cls, saved: dict[str, np.ndarray], vectors: np.ndarray, **thresholds) -> DuplicateFinder:
        """A finder as `saved()` left it, with the same rows' `vectors`; no pair is compared."""
        ids = [int(i) for i in saved["ids"]]
        finder = cls(vectors.shape[1] if vectors.ndim == 2 else 0, **thresholds)
        if not ids:
            return finder
        finder._rows.add(ids, vectors)
        finder._thumbs = np.array(saved["thumbs"], dtype=np.uint8).reshape(-1, 3, THUMB, THUMB)
        finder._has_thumb = np.array(saved["has_thumb"], dtype=bool).reshape(-1)
        finder._hashes = [str(h) or None for h in saved["hashes"]]
        finder._sets.grow(len(ids))
        for pos, photo in enumerate(ids):
            finder._position[photo] = pos
            if finder._hashes[pos]:
                finder._first_with_hash.setdefault(str(finder._hashes[pos]), pos)
        for pos, root in enumerate(saved["parent"]):
            finder._sets.union(int(root), pos)
        return finder

    def groups(self) -> list[DuplicateGroup]:
        """Every group of two photos or more, oldest first."""
        return self._groups_of(self._sets.members)

    def group_of(self, photo: Hashable) -> DuplicateGroup | None:
        found = self._groups_of([self._sets.find(self._position[photo])])
        return found[0] if found else None

    def _groups_of(self, roots) -> list[DuplicateGroup]:
        found = []
        for root in roots:
            members = sorted(self._sets.members[self._sets.find(root)])
            if len(members) > 1:
                digests = {self._hashes[p] for p in members}
                exact = len(digests) == 1 and None not in digests
                found.append(DuplicateGroup(tuple(self._rows.ids[p] for p in members), exact))
        return sorted(found, key=lambda g: self._position[g.ids[0]])
