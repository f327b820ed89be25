"""Label errors: annotated examples whose label the model confidently disagrees with.

Every judgement uses OUT-OF-FOLD probabilities (each example scored by a head that never saw it),
so a memorised wrong label cannot vouch for itself. The rule, in the spirit of confident learning:

- per label j, a threshold t_j = the mean out-of-fold probability of j over the examples GIVEN j
  (how sure the model usually is about a correct-looking j; timid labels get lower bars);
- example i (given g) is confidently j when p_ij >= t_j; among such j, the most probable one is
  its suggested label;
- i is flagged when the suggestion is not g and the model prefers it: p_i,suggested > p_i,g.

`strength` = p_suggested - p_given, in (0, 1]; results are sorted strongest first.
"""

from __future__ import annotations

import numpy as np

from .head import cross_val_logits, fit_temperature, softmax


def class_thresholds(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per label, the mean probability of that label over the examples given it (1.0 for a label
    nobody was given, so it is suggested only at certainty)."""
    n_classes = proba.shape[1]
    t = np.ones(n_classes)
    for j in range(n_classes):
        rows = y == j
        if rows.any():
            t[j] = float(proba[rows, j].mean())
    return t


def label_errors_from_proba(proba, y, label_names) -> list[dict]:
    """Suspected label errors from out-of-fold probabilities `proba` (N, C) and given label
    indices `y` (N,). Each result: index, given, suggested (names), confidence (probability of the
    suggested label), given_prob, strength; strongest first."""
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"proba must be (N, C) with one row per label; got {p.shape} and {len(y)} labels")
    if p.shape[1] != len(label_names):
        raise ValueError(f"proba has {p.shape[1]} columns but there are {len(label_names)} label names")
    if len(y) and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError("labels must be indices into label_names")
    if len(y) == 0:
        return []
    t = class_thresholds(p, y)
    confident = np.where(p >= t[None, :] - 1e-12, p, -1.0)
    suggested = confident.argmax(axis=1)
    has = confident.max(axis=1) >= 0
    rows = np.arange(len(y))
    given_p = p[rows, y]
    sugg_p = p[rows, suggested]
    flagged = np.flatnonzero(has & (suggested != y) & (sugg_p > given_p))
    out = [
        {
            "index": int(i),
            "given": label_names[y[i]],
            "suggested": label_names[suggested[i]],
            "confidence": float(sugg_p[i]),
            "given_prob": float(given_p[i]),
            "strength": float(min(1.0, sugg_p[i] - given_p[i])),
        }
        for i in flagged
    ]
    out.sort(key=lambda r: (-r["strength"], r["index"]))
    return out


def out_of_fold_proba(
    features, y, n_classes: int, *, head_c: float = 0.002, seed: int = 0, folds: int = 5
) -> np.ndarray:
    """Calibrated out-of-fold probabilities from the product's linear head (temperature fitted on
    the same out-of-fold logits; it sharpens the scores and never changes their order per row)."""
    logits = cross_val_logits(np.asarray(features, dtype=np.float32), y, n_classes, head_c, seed, folds)
    if logits is None:
        raise ValueError("need at least 2 examples of every label present to judge labels out of fold")
    return softmax(logits / fit_temperature(logits, y))


def find_label_errors(features, labels, label_names, *, head_c: float = 0.002, seed: int = 0) -> list[dict]:
    """Suspected label errors among examples with embeddings `features` (N, F) and `labels` (names
    or indices into `label_names`); see `label_errors_from_proba` for the result."""
    label_names = list(label_names)
    index = {name: i for i, name in enumerate(label_names)}
    labels = list(labels)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if labels and isinstance(labels[0], str):
        unknown = sorted({lab for lab in labels if lab not in index})
        if unknown:
            raise ValueError(f"label(s) {', '.join(map(repr, unknown))} not among {', '.join(label_names)}")
        y = np.array([index[lab] for lab in labels], dtype=np.int64)
    else:
        y = np.asarray(labels, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError("need examples of at least 2 labels to find label errors")
    proba = out_of_fold_proba(features, y, len(label_names), head_c=head_c, seed=seed)
    return label_errors_from_proba(proba, y, label_names)
