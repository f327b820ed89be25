"""The embedding loop shared by both engines (PyTorch and ONNX Runtime), torch-free.

Hash every input once (or not at all: bytes that arrive as `cache.Digested` carry their hash), take
what the cache knows, compute each distinct content once, and decode the next batch in threads while
the network runs on the current one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm.auto import tqdm

from .cache import known_hash
from .images import ImageError, content_hash
from .preprocess import Preprocessing


def decode_workers() -> int:
    return max(2, min(4, os.cpu_count() or 1))


def flip_averaged(forward: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Test-time augmentation: `forward` of each image and of its mirror image (left-right),
    averaged. A linear head on averaged features gives the average of the two images' logits."""

    def run(batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        both = forward(np.concatenate([batch, batch[..., ::-1]]))
        return (both[:n] + both[n:]) / 2

    return run


def blob_key(blob) -> str:
    """The embedding cache key of one input: its SHA-256, taken from a `Digested` when known."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        return ""
    return known_hash(blob) or content_hash(blob)


def embed_images(
    forward: Callable[[np.ndarray], np.ndarray],
    prep: Preprocessing,
    feature_id: str,
    num_features: int,
    blobs: list,
    *,
    cache=None,
    batch_size: int = 64,
    progress: bool = False,
    names: list[str] | None = None,
    errors: dict | None = None,
    report=None,
) -> np.ndarray:
    """Pooled features (N, num_features) of image bytes; `forward` maps an (n, 3, S, S) float32
    batch to (n, num_features). The cache is keyed by (content hash, feature_id, image size).

    A bad image raises ImageError, unless an `errors` dict is passed: then its row is NaN and
    errors[index] holds the message, so one bad upload never sinks a whole batch.
    `report(step=, steps=)`, if given, is called after each batch (images embedded so far).
    """
    names = names or [f"image #{i}" for i in range(len(blobs))]
    hashes = [blob_key(b) for b in blobs]
    out = np.full((len(blobs), num_features), np.nan, dtype=np.float32)
    size = prep.image_size
    todo = _from_cache(out, hashes, cache, feature_id, size)
    # the same content twice in one call is computed once
    first_of: dict[str, int] = {}
    unique = [i for i in todo if first_of.setdefault(hashes[i], i) == i]
    chunks = [unique[s : s + batch_size] for s in range(0, len(unique), batch_size)]
    bar = tqdm(total=len(unique), desc="embedding", unit="img", disable=not progress)
    with ThreadPoolExecutor(decode_workers()) as pool, ThreadPoolExecutor(1) as ahead:

        def load(idx):
            return prep.batch([blobs[i] for i in idx], [names[i] for i in idx], pool)

        pending = ahead.submit(load, chunks[0]) if chunks else None
        for k, idx in enumerate(chunks):
            assert pending is not None  # chunk k was submitted before the loop or in turn k - 1
            arr, good, bad = pending.result()
            # the next batch decodes while this one runs through the network
            pending = ahead.submit(load, chunks[k + 1]) if k + 1 < len(chunks) else None
            for j, message in bad.items():
                if errors is None:
                    if pending is not None:
                        pending.cancel()
                    raise ImageError(message)
                errors[idx[j]] = message
            if good:
                fresh = _run_batch(forward, arr, [idx[j] for j in good], hashes, out)
                if cache is not None:
                    cache.put_many(fresh, feature_id, size)
            bar.update(len(idx))
            if report is not None:
                report(step=sum(len(c) for c in chunks[: k + 1]), steps=len(unique))
    bar.close()
    _copy_repeats(out, todo, hashes, first_of, errors)
    return out


def _run_batch(
    forward: Callable[[np.ndarray], np.ndarray], arr: np.ndarray, rows: list[int], hashes: list[str], out: np.ndarray
) -> dict[str, np.ndarray]:
    """Run the decoded batch `arr` (one image per entry of `rows`) through `forward` into those
    rows of `out`; the new features by content hash, for the cache."""
    fresh = {}
    for row, vec in zip(rows, forward(arr)):
        out[row] = vec
        fresh[hashes[row]] = vec
    return fresh


def _from_cache(out: np.ndarray, hashes: list[str], cache, feature_id: str, size: int) -> list[int]:
    """Fill the rows of `out` the cache knows; the indices of the others, to compute."""
    known = cache.get_many(hashes, feature_id, size) if cache is not None else {}
    todo = []
    for i, key in enumerate(hashes):
        if key in known:
            out[i] = known[key]
        else:
            todo.append(i)
    return todo


def _copy_repeats(
    out: np.ndarray, todo: list[int], hashes: list[str], first_of: dict[str, int], errors: dict | None
) -> None:
    """Rows of content seen earlier in the same call: a copy of the first one's row (and error)."""
    for i in todo:
        src = first_of[hashes[i]]
        if src != i:
            out[i] = out[src]
            if errors is not None and src in errors:
                errors[i] = errors[src]
