"""Similar photos: the k nearest neighbours of one task in its project's collection, with what is
known of each (a person's label, the serving version's prediction and confidence), for the model
page's panel and `tasveer similar`.

The snapshot (snapshot.py) holds every predicted task's unit vector; its index (`Snapshots.index`,
training/neighbours.py) answers: below 60k photos one exact matrix-vector product (p50 7.6 ms at
50k photos of dimension 1280, bench/RESULTS.md), above it an HNSW graph (faiss, when installed),
kept per project and grown as tasks arrive.
"""

from __future__ import annotations

import math

import numpy as np

from backend.collection.snapshot import Snapshot
from backend.errors import RequestError
from training.neighbours import NeighbourIndex, exact_search

DEFAULT_K = 8
MAX_K = 100


def check_k(k) -> int:
    """k as an int in 1..MAX_K; RequestError (422) otherwise."""
    try:
        value = int(k)
    except (TypeError, ValueError):
        raise RequestError(f"k must be a whole number from 1 to {MAX_K}; got {str(k)[:40]!r}") from None
    if not 1 <= value <= MAX_K:
        raise RequestError(f"k must be from 1 to {MAX_K}; got {value}")
    return value


def describe(snap: Snapshot, row: int) -> dict:
    """One task of the snapshot as the answer shows it (no NaN: JSON has none)."""
    conf = float(snap.confidence[row])
    return {
        "task": int(snap.task_ids[row]),
        "label": snap.labels[row],
        "predicted": snap.predicted[row],
        "confidence": None if math.isnan(conf) else round(conf, 4),
    }


def nearest_rows(snap: Snapshot, row: int, k: int, index: NeighbourIndex | None = None) -> list[tuple[int, float]]:
    """(row, cosine similarity) of the k rows most similar to `row`, most similar first, `row`
    itself left out (an exact copy of the photo stays in, at similarity 1). `index`: over the
    snapshot's rows in order (exact search over them without one)."""
    if len(snap) < 2:
        return []
    query, wanted = snap.vectors[row : row + 1], min(k + 1, len(snap))
    pos, sims = (
        index.search_positions(query, wanted) if index is not None else exact_search(query, snap.vectors, wanted)
    )
    found = [(int(p), float(s)) for p, s in zip(pos[0], sims[0]) if int(p) != row]
    return found[:k]


def similar_tasks(snap: Snapshot, task_id: int, k: int = DEFAULT_K, index: NeighbourIndex | None = None) -> dict:
    """{"project", "version", "query": {task, label, predicted, confidence}, "k", "neighbours":
    [{task, similarity, label, predicted, confidence}], "classes", "collection", "missing"}.
    NotFound (404) when the task is not in the snapshot (another project's, or not predicted yet)."""
    k = check_k(k)
    row = snap.row_of(task_id)
    neighbours = []
    for other, sim in nearest_rows(snap, row, k, index):
        neighbours.append({**describe(snap, other), "similarity": round(float(np.clip(sim, -1.0, 1.0)), 4)})
    return {
        "project": snap.project,
        "version": snap.version,
        "query": describe(snap, row),
        "k": k,
        "neighbours": neighbours,
        "classes": list(snap.classes),
        "collection": len(snap),
        "missing": snap.missing,
    }


def similar(service, pid: str, task_id: int, k: int = DEFAULT_K) -> dict:
    """`similar_tasks` on the project's snapshot now, each task with its thumbnail URL (the
    backend's, ui/routes.py) and its link in Label Studio."""
    k = check_k(k)
    snap = service.snapshots.get(pid)
    answer = similar_tasks(snap, int(task_id), k, service.snapshots.index(snap))
    state = service.projects.state(pid)
    public = str((state.hostname if state else None) or service.projects.api(state).base_url).rstrip("/")
    for item in [answer["query"], *answer["neighbours"]]:
        item["image"] = f"/projects/{pid}/tasks/{item['task']}/image"
        item["link"] = f"{public}/projects/{pid}/data?task={item['task']}"
    return answer
