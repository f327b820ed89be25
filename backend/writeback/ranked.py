"""A version's rows for the unlabeled tasks, in the queue's order, made on demand.

A refresh ranks every unlabeled task as arrays (backend/inference/scoring.py `Ranking`: ~20 ms at
50,000 tasks) and makes the row dicts of the queue's top only before the head's write (`queue_head`);
the others as their batches are written (`RestRows`). Making and arranging all 50,000 rows before the
head cost 1.2 s of each correction (bench/refresh_rows.py), more beside the next training.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from backend.collection.rowprep import Prepared
from backend.inference.scoring import rank_rows


class Ranked:
    """The rows of `ids` (their features' order) scored by a version, most useful first."""

    def __init__(self, cfg, vid: str, proba: np.ndarray | None, columns, strategy: str, ids: list[int], why: str):
        self.ranking = None if proba is None or not columns else rank_rows(cfg, vid, proba, columns, strategy)
        self.order = np.zeros(0, dtype=int) if self.ranking is None else self.ranking.queue()
        self.ids = ids
        self.why = why

    def __len__(self) -> int:
        return len(self.order)

    def task_ids(self) -> list[int]:
        """The tasks with a row (those whose embedding gave finite probabilities)."""
        return [] if self.ranking is None else [self.ids[int(k)] for k in self.ranking.rows]

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict]:
        """The rows from the `start`-th most useful to before the `stop`-th."""
        if self.ranking is None:
            return []
        out = []
        for k in self.order[start:stop].tolist():
            scored = self.ranking.scored(k)
            task = self.ids[int(self.ranking.rows[k])]
            out.append({"task": task, **scored.prediction, "why": self.why, "priority": scored.priority})
        return out


def queue_head(ranked: Ranked, arrange: Callable[[list[dict]], Prepared], size: int) -> Prepared:
    """The queue's first `size` rows, arranged (`arrange`: duplicates after the queue, marks in), made
    from as few rows as it takes. A duplicate moves only later, so the first `size` that keep their
    place among the most useful rows are the queue's first overall; while fewer keep it, the
    candidates grow (every row at last)."""
    take = 4 * size
    while True:
        prep = arrange(ranked.rows(0, take))
        queued = sum(1 for r in prep.rows if r.get("priority", 1.0) <= 1.0)
        if queued >= size or take >= len(ranked):
            prep.rows = prep.rows[:size]
            return prep
        take *= 4


class RestRows:
    """The rows written after the head, made as they are written: the label checks first (they fill
    "Possible label errors"), then the queue after the head, each part arranged as it is made
    (`arrange(rows, checks)`: duplicates after the queue within it, marks in). While people label, a
    newer version cuts a refresh's rest short after a few batches, and the rows it never reaches are
    never made: making and arranging all of them took 1.2 s at 50,000 tasks, beside the next training."""

    def __init__(self, ranked: Ranked, arrange: Callable[[list[dict], list[dict]], Prepared], checks, skip):
        self.ranked = ranked
        self.arrange = arrange
        self.skip = {int(t) for t in skip}
        self.pending = arrange([], checks).checks if checks else []
        self.next = 0  # the next row of `ranked` to make
        self.waiting = 0  # rows made that wait after the queue (duplicates)

    def done(self) -> bool:
        return not self.pending and self.next >= len(self.ranked)

    def take(self, size: int) -> list[dict]:
        """The next `size` rows (fewer at the end)."""
        out, self.pending = self.pending[:size], self.pending[size:]
        while len(out) < size and self.next < len(self.ranked):
            stop = self.next + size - len(out)
            rows = [r for r in self.ranked.rows(self.next, stop) if int(r["task"]) not in self.skip]
            self.next = stop
            prep = self.arrange(rows, [])
            self.waiting += prep.moved
            out += prep.rows
        return out
