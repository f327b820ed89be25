"""Near duplicates in a simulated labeling queue (`tasveer simulate --duplicates`): which photos of a
pool are duplicates of each other (`pool_groups`, by the project's rule), and what serving them
costs (`Duplicates`): a person labeling two photos of one group spends a label on nothing new.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pool_groups(X, paths) -> list[list[int]]:
    """The near-duplicate groups among a pool's photos (rows of X, files `paths`), by the project's
    rule (training/duplicates.py: the same bytes, or near embeddings whose thumbnails match)."""
    from .duplicates import DuplicateFinder
    from .images import content_hash
    from .layout import thumbnail
    from .neighbours import normalise

    blobs = [Path(p).read_bytes() for p in paths]
    finder = DuplicateFinder(X.shape[1])
    thumbs = [thumbnail(b, str(p)) for b, p in zip(blobs, paths)]
    finder.add(
        list(range(len(paths))), normalise(np.asarray(X, dtype=np.float32)), [content_hash(b) for b in blobs], thumbs
    )
    return [list(g.ids) for g in finder.groups()]


class Duplicates:
    """The pool rows served so far and what duplicate groups make of them. Without groups every
    served row is a label spent. With them (`skip` = True) a row whose group already has a label is
    not served: it is labeled for free with its group; `wasted` counts, without skipping, the rows
    served although their group had a label already."""

    def __init__(self, groups, n: int, skip: bool = False):
        self.n = n
        self.group = np.full(n, -1, dtype=np.int64)
        for gid, members in enumerate(groups or []):
            self.group[np.asarray(list(members), dtype=np.int64)] = gid
        self.grouped = bool(groups) and skip
        self.spent: list[int] = []  # rows a person labeled
        self.free: list[int] = []  # rows labeled with their group (skipping duplicates only)
        self.done_groups: set[int] = set()
        self.wasted = 0

    def take(self, rows: list[int], limit: int | None = None) -> None:
        """Serve `rows` in order (at most `limit` of them), under the rule above."""
        start = len(self.spent)
        for row in rows:
            if limit is not None and len(self.spent) - start >= limit:
                break
            gid = int(self.group[row])
            if gid >= 0 and gid in self.done_groups:
                if self.grouped:
                    continue
                self.wasted += 1
            self.spent.append(row)
            if gid >= 0 and gid not in self.done_groups:
                self.done_groups.add(gid)
                if self.grouped:
                    members = np.flatnonzero(self.group == gid)
                    self.free += [int(m) for m in members if int(m) != row and int(m) not in self.spent]

    def known(self) -> list[int]:
        return self.spent + self.free

    def open_rows(self) -> np.ndarray:
        mask = np.ones(self.n, dtype=bool)
        mask[self.known()] = False
        return np.flatnonzero(mask)
