"""The unlabeled photos a head's semi-supervised fit learns from (training/semi.py): up to `limit` of
the project's tasks that are not trained on, a seeded random choice, with their cached embeddings.

Read from the task index (backend/writeback/taskindex.py) and the embedding cache: no listing of the
project's tasks per correction (one request to Label Studio when no task was added) and nothing
downloaded or embedded here; a task never predicted (no cached embedding) is simply not among them.
"""

from __future__ import annotations

import numpy as np

from backend.writeback.features import cached_rows
from backend.writeback.taskindex import TaskIndex, catch_up


def unlabeled_features(
    index: TaskIndex, api, project_id: int, data_key: str, embeddings, backbone, trained, limit: int, seed: int = 0
) -> np.ndarray | None:
    """(limit or fewer, features) of tasks not in `trained`; None when there are none."""
    catch_up(index, api, project_id, data_key)
    digests = list(dict.fromkeys(index.digests(exclude=trained)))
    if len(digests) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(digests), limit, replace=False))
        digests = [digests[i] for i in pick]
    found = cached_rows(embeddings, backbone, digests)
    rows = [found[d] for d in digests if d in found]
    return np.stack(rows) if rows else None
