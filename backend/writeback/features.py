"""The embeddings of a project's tasks: read from the embedding cache where the task index knows the
image's digest, fetched and embedded (CHUNK images at a time, bytes dropped after) where not, the
index told the digests it learnt. Used by the refresh and the prediction of new tasks; a training
reads only what is cached (`cached_rows`): it never downloads an image of an unlabeled task.
"""

from __future__ import annotations

import numpy as np

from backend.fetch import FetchError
from backend.writeback.taskindex import IndexedTask, TaskIndex, indexed
from training.cache import known_hash

CHUNK = 256  # images fetched and embedded at a time


def cached_rows(embeddings, backbone, digests: list[str]) -> dict[str, np.ndarray]:
    """digest -> the backbone's embedding, for the digests whose embedding is cached (a pair of
    backbones, `second_model`: both embeddings side by side)."""
    if not digests:
        return {}
    parts = getattr(backbone, "parts", (backbone,))
    found = [embeddings.get_many(digests, part.id, part.preprocessing.image_size) for part in parts]
    return {d: np.concatenate([f[d] for f in found]) for d in dict.fromkeys(digests) if all(d in f for f in found)}


class TaskFeatures:
    def __init__(self, fetcher, embeddings):
        self.fetcher = fetcher
        self.embeddings = embeddings

    def of_indexed(
        self, backbone, data_key: str, tasks: list[IndexedTask], api, project, index: TaskIndex
    ) -> tuple[np.ndarray, list[int], list[str]]:
        """(features, their task ids, errors) for indexed tasks: cached embeddings first, the rest
        fetched and embedded (and their digests recorded in `index`)."""
        cached = cached_rows(self.embeddings, backbone, [t.digest for t in tasks if t.digest])
        hit = [t for t in tasks if t.digest in cached]
        miss = [t.as_task(data_key) for t in tasks if t.digest not in cached]
        x_new, kept, errors = self.embed(backbone, data_key, miss, api, project, index)
        ids = [t.id for t in hit] + [int(t["id"]) for t in kept]
        parts = [np.stack([cached[str(t.digest)] for t in hit])] if hit else []
        if len(kept):
            parts.append(x_new)
        return (np.concatenate(parts) if parts else np.zeros((0, 0))), ids, errors

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
