"""Do two photos show the same picture? A check on small colour thumbnails that forgives a mirror
image, a crop of up to ~12 %, re-encoding and small colour shifts, for the near-duplicate candidates
the embeddings propose (duplicates.py).

A photo is kept as a 40 x 40 RGB thumbnail (uint8, 4.7 KiB). Its *views* are 20 x 20 area-averaged
windows of it: the whole photo and windows cut by 2 to 5 px (5 to 12.5 %) at offsets 1 px apart,
each also mirrored (174 views). The similarity of a pair is the mean of two Pearson
correlations of one photo's whole view with the best-matching view of the other: of the views
themselves and of their details (a band-pass of each view), which tells apart photos that merely
share a layout (a horizon, a sky); taken both ways round, the larger. Sizes, windows and the detail term
chosen by bench/curation.py: 16 x 16 views, offsets half a cut apart and no details (with the
embedding's similarity) reached pair precision 0.65 at recall 0.96; these 0.994 at 0.988 (pairs of
two shared photos set aside).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

from .images import decode_image

THUMB = 40  # stored thumbnail side, pixels
VIEW = 20  # compared view side, pixels
# (thumbnail pixels cut off a view's width and height, offsets tried along each axis, evenly spaced
# from 0 to the cut): offsets 1 px apart keep a crop within half a view pixel of some window
WINDOWS = ((0, 1), (2, 3), (3, 4), (4, 5), (5, 6))
# photos whose views are built at once (174 views of 9.4 KiB each a photo): 8 against 64 took a
# comparison 2.5x faster with a third of the peak memory (bench/peak_memory.py)
VIEW_BATCH = 8


def thumbnail(data: bytes, name: str = "image") -> np.ndarray:
    """(3, THUMB, THUMB) uint8: the whole photo, area-averaged (not cropped to a square)."""
    img = decode_image(data, name).resize((THUMB, THUMB), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def area_matrix(width: float, offset: float) -> np.ndarray:
    """(VIEW, THUMB): row i averages thumbnail pixels [offset, offset + width) into bin i of VIEW."""
    out = np.zeros((VIEW, THUMB), dtype=np.float32)
    edges = np.linspace(offset, offset + width, VIEW + 1)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        for p in range(int(np.floor(lo)), int(np.ceil(hi))):
            out[i, p] = max(0.0, min(hi, p + 1) - max(lo, p))
        out[i] /= out[i].sum()
    return out


def blur_matrix() -> np.ndarray:
    """(VIEW, VIEW): a 3-pixel box blur along one axis, edge pixels repeated."""
    out = np.zeros((VIEW, VIEW), dtype=np.float32)
    for i in range(VIEW):
        for j in (i - 1, i, i + 1):
            out[i, min(max(j, 0), VIEW - 1)] += 1 / 3
    return out


@cache
def filters() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Per window size of WINDOWS: (rows (3, k VIEW, THUMB), columns (3, THUMB, 2k VIEW)), its k
    offsets stacked (columns: plain, then mirrored), for the view itself, its 3 x 3 blur and that
    blur applied three times. Everything is linear, so a view and its blurs are two matmuls each."""
    fine = blur_matrix()
    coarse = fine @ fine @ fine
    found = []
    for cut, steps in WINDOWS:
        offsets = [cut * i / max(1, steps - 1) for i in range(steps)]
        row_parts = [area_matrix(THUMB - cut, offset) for offset in offsets]
        col_parts = [m.T for m in row_parts] + [m.T[::-1] for m in row_parts]  # mirrored: columns reversed
        blurs = (np.eye(VIEW, dtype=np.float32), fine, coarse)
        rows = np.stack([np.concatenate([f @ r for r in row_parts]) for f in blurs])
        cols = np.stack([np.concatenate([c @ f.T for c in col_parts], axis=1) for f in blurs])
        found.append((rows, cols))
    return tuple(found)


def unit_rows(flat: np.ndarray) -> np.ndarray:
    """Remove each row's mean, scale it to unit length: dot products are Pearson correlations."""
    flat = flat - flat.mean(axis=-1, keepdims=True)
    return flat / np.maximum(np.linalg.norm(flat, axis=-1, keepdims=True), 1e-6)


def _views(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n, windows, 2 x 3 VIEW VIEW) standardised [view, details] / sqrt 2 of (n, 3, THUMB, THUMB)
    float thumbnails for one window size: each half's dot product is half a Pearson correlation.
    Details: the 3 x 3 blur minus the 7-wide one, a band-pass that a half-pixel misalignment of a
    crop hardly changes, unlike the finest details."""
    n, tops, lefts = len(x), rows.shape[1] // VIEW, cols.shape[2] // VIEW
    # the columns' product as one (n 3 rows, THUMB) x (THUMB, columns) matmul: much faster than broadcast
    view, fine, coarse = ((rows[f] @ x).reshape(-1, THUMB) @ cols[f] for f in range(3))

    def flat(y):  # (n, 3, tops VIEW, lefts VIEW) -> (n, tops x lefts, 3 VIEW VIEW)
        y = y.reshape(n, 3, tops, VIEW, lefts, VIEW).transpose(0, 2, 4, 1, 3, 5)
        return y.reshape(n, tops * lefts, 3 * VIEW * VIEW)

    return np.concatenate([unit_rows(flat(view)), unit_rows(flat(fine - coarse))], axis=-1) / np.sqrt(2.0)


def whole_view(thumbs: np.ndarray) -> np.ndarray:
    """(n, 2 x 3 VIEW VIEW) standardised whole views of (n, 3, THUMB, THUMB) thumbnails."""
    rows, cols = filters()[0]  # the uncut window: [plain, mirrored]
    return _views(thumbs.astype(np.float32), rows, cols)[:, 0]


def all_views(thumbs: np.ndarray) -> np.ndarray:
    """(n, 2 x windows, 2 x 3 VIEW VIEW) standardised views, plain and mirrored."""
    x = thumbs.astype(np.float32)
    return np.concatenate([_views(x, rows, cols) for rows, cols in filters()], axis=1)


def _best_match(thumbs: np.ndarray, owners: np.ndarray, others: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """For pairs i: how well some view of photo owners[i] (a row of `thumbs`) matches
    whole[others[i]] (the other photo's standardised whole view): the best correlation of the views
    plus the best of the details, halved (each half of a standardised view is scaled by 1/sqrt 2).
    Grouped by owner: the views of VIEW_BATCH photos at a time, one small matmul per photo; the
    other photos' whole views are gathered per owner, not once per pair (9.4 KiB a pair)."""
    out = np.zeros(len(owners), dtype=np.float32)
    half = 3 * VIEW * VIEW
    order = np.argsort(owners, kind="stable")
    photos, starts = np.unique(owners[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    for first in range(0, len(photos), VIEW_BATCH):
        views = all_views(thumbs[photos[first : first + VIEW_BATCH]])
        for k, photo_views in enumerate(views):
            rows = order[starts[first + k] : ends[first + k]]
            other = whole[others[rows]]
            best = (other[:, :half] @ photo_views[:, :half].T).max(axis=1)
            out[rows] = best + (other[:, half:] @ photo_views[:, half:].T).max(axis=1)
    return out


def pair_similarity(thumbs: np.ndarray, a, b) -> np.ndarray:
    """(len(a),) layout similarity of the pairs (a[i], b[i]) of rows of `thumbs` (n, 3, THUMB, THUMB):
    the better of a's views against b's whole view and b's views against a's whole view."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if not len(a):
        return np.zeros(0, dtype=np.float32)
    used = np.unique(np.r_[a, b])
    local_a, local_b = np.searchsorted(used, a), np.searchsorted(used, b)
    whole = whole_view(thumbs[used])
    # both ways round in one pass, so each photo's views are computed once
    best = _best_match(thumbs[used], np.r_[local_a, local_b], np.r_[local_b, local_a], whole)
    return np.maximum(best[: len(a)], best[len(a) :])
