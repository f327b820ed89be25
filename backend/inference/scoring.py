"""Turn class probabilities into the predictions tasveer writes to Label Studio.

The prediction's `score` is the acquisition priority of the project's strategy (lower = more useful
to label next, because Label Studio serves the lowest score first); the calibrated confidence of
the predicted label goes in the result item's own `score` so the labeler still sees it. See
lsproto/views.py for the meaning of scores on annotated tasks.
"""
from __future__ import annotations

import numpy as np

from lsproto.config import LabelConfig
from lsproto.results import prediction
from training.acquisition import priority


def label_columns(cfg: LabelConfig, model_labels: list[str]) -> list[tuple[str, int]]:
    """(label, column in the model's output) for each label of the config the model knows."""
    return [(label, model_labels.index(label)) for label in cfg.labels if label in model_labels]


def scored_predictions(cfg: LabelConfig, version: str, proba: np.ndarray, columns: list[tuple[str, int]],
                       strategy: str, clusters=None) -> list[dict | None]:
    """One prediction per row of `proba` (N, model labels); None for a row that is not finite."""
    sub = proba[:, [c for _, c in columns]].astype(np.float64)
    finite = np.all(np.isfinite(sub), axis=1)
    out: list[dict | None] = [None] * len(sub)
    if not finite.any():
        return out
    rows = np.flatnonzero(finite)
    good = sub[rows]
    good = good / np.clip(good.sum(axis=1, keepdims=True), 1e-12, None)
    ranks = priority(good, strategy)
    for k, row in enumerate(rows):
        best = int(np.argmax(good[k]))
        cluster = None if clusters is None else int(clusters[row])
        pred = prediction(cfg, columns[best][0], float(ranks[k]), version, cluster=cluster)
        pred["result"][0]["score"] = round(float(good[k, best]), 4)
        out[row] = pred
    return out
