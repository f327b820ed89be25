"""Cross-validation that lasts across trainings: each labeled example keeps its fold, each fold's
head is kept with the keys it was trained on, and a training refits only the folds that need it.

A correction adds one label to a project that has many, and the out-of-fold logits (the temperature,
the metrics, the label checks, the promotion check) cost k head fits per training: about 80 % of a
correction's fit. `FoldHeads.logits` keeps them honest at a fraction of that:

* An example's fold is fixed by its key (e.g. "task 123") when it is first seen: the fold with the
  fewest examples of its label, so every fold holds every label.
* A fold's stored head is reused while it never saw a key of its fold (otherwise refitted: an
  example that left and came back in another fold), knows every label its fold's training rows
  have (a new label: refitted) and lacks few of them (at most `folds` examples, counting a
  relabeled one: more, e.g. after a bulk of labels, and it is refitted; so the promotion check,
  which needs 10 new labels, never compares heads that missed them). Every
  out-of-fold logit therefore comes from a head that never saw that example's label, as in plain
  k-fold cross-validation.
* The fold whose head is oldest is refitted on every training, so no head is more than `folds`
  trainings behind; until then it lacks the newest labels, which makes the estimate slightly
  pessimistic, never optimistic.
* The store (one .npz, written atomically) belongs to one training recipe: `signature` names it
  (parameters, label names, feature size); another signature starts afresh.

Not used while some label has fewer than `folds` examples: the caller cross-validates afresh
(training.head.cross_val_logits, or leave-one-out), as cheap there as it is honest.
bench/head_fit.py measures the time and the calibration it gives against refitting every fold.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .atomic import write_atomic

FOLDS = 5


class FoldHeads:
    def __init__(self, path: str | Path, folds: int = FOLDS):
        self.path = Path(path)
        self.folds = folds

    def logits(self, X: np.ndarray, y: np.ndarray, keys: list[str], n_classes: int, signature: str, fit):
        """(out-of-fold logits (len(y), n_classes), folds refitted) for the examples X, y named by
        `keys`; `fit(train_rows) -> (W, b)` fits a fold's head. None when the keys are not unique
        or some label present has fewer than `folds` examples."""
        counts = np.bincount(y, minlength=n_classes)
        if len(set(keys)) != len(keys) or counts[counts > 0].min() < self.folds:
            return None
        meta, W, b = self._load(signature, n_classes, X.shape[1])
        assign = assigned(meta["assign"], keys, y, self.folds)
        fold_of = np.array([assign[k] for k in keys])
        redo = [f for f in range(self.folds) if not self._usable(meta["heads"][f], keys, y, fold_of == f)]
        if not redo:  # all usable: the oldest is refitted, so none lags more than `folds` trainings
            redo = [min(range(self.folds), key=lambda f: meta["heads"][f]["fitted"])]
        meta["trainings"] += 1
        out = np.zeros((len(y), n_classes), dtype=np.float32)
        for f in range(self.folds):
            test, train = np.flatnonzero(fold_of == f), np.flatnonzero(fold_of != f)
            if f in redo:
                W[f], b[f] = fit(train)
                meta["heads"][f] = {
                    "trained": [keys[i] for i in train],
                    "y": [int(c) for c in y[train]],
                    "fitted": meta["trainings"],
                }
            out[test] = X[test] @ W[f].T + b[f]
        meta["assign"] = assign
        self._save(meta, W, b)
        return out, len(redo)

    def _usable(self, head: dict, keys: list[str], y: np.ndarray, in_fold: np.ndarray) -> bool:
        """Whether a fold's stored head may give the logits of the fold's examples (`in_fold`): it
        exists, saw none of them, knows every label of the other examples and lacks few of those."""
        if head.get("trained") is None:
            return False
        seen = dict(zip(head["trained"], head["y"]))
        if any(keys[i] in seen for i in np.flatnonzero(in_fold)):
            return False
        train = np.flatnonzero(~in_fold)
        if not {int(c) for c in y[train]} <= set(seen.values()):
            return False
        missing = sum(1 for i in train if seen.get(keys[i]) != int(y[i]))
        return missing <= self.folds

    def _load(self, signature: str, n_classes: int, dim: int) -> tuple[dict, np.ndarray, np.ndarray]:
        """The stored folds of this signature, or a fresh store (none, another signature, unreadable)."""
        try:
            with np.load(self.path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                W, b = z["W"].copy(), z["b"].copy()
            if meta.get("signature") == signature and W.shape == (self.folds, n_classes, dim):
                return meta, W, b
        except (OSError, ValueError, KeyError):
            pass
        fresh: dict = {"fitted": -1, "trained": None, "y": []}
        meta = {"signature": signature, "assign": {}, "heads": [dict(fresh) for _ in range(self.folds)], "trainings": 0}
        return meta, np.zeros((self.folds, n_classes, dim), np.float32), np.zeros((self.folds, n_classes), np.float32)

    def _save(self, meta: dict, W: np.ndarray, b: np.ndarray) -> None:
        buf = io.BytesIO()
        meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez(buf, meta=meta_bytes, W=W.astype(np.float32), b=b.astype(np.float32))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, buf.getvalue(), fsync=False)


def assigned(before: dict, keys: list[str], y: np.ndarray, folds: int) -> dict[str, int]:
    """key -> fold for `keys`: the folds of `before` kept, a new key put into the fold with the
    fewest examples of its label (then the fewest examples, then the lowest number); keys no longer
    given are dropped."""
    assign = {k: int(before[k]) for k in keys if k in before and 0 <= int(before[k]) < folds}
    label = dict(zip(keys, (int(c) for c in y)))
    per_label: dict[tuple[int, int], int] = {}
    sizes = [0] * folds
    for k, f in assign.items():
        per_label[label[k], f] = per_label.get((label[k], f), 0) + 1
        sizes[f] += 1
    for k in sorted(set(keys) - set(assign)):
        f = min(range(folds), key=lambda g: (per_label.get((label[k], g), 0), sizes[g], g))
        assign[k] = f
        per_label[label[k], f] = per_label.get((label[k], f), 0) + 1
        sizes[f] += 1
    return assign
