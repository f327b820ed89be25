"""Turn class probabilities into the predictions tasveer writes to Label Studio.

The prediction's `score` is the calibrated confidence of the predicted label (what Label Studio
shows a person as the prediction's score), with ties broken by the acquisition priority of the
project's strategy far below the printed digits (lsproto/notes.py `confidence_score`); the result
item's own `score` is the confidence as well. The priority itself (lower = more useful to label
next) goes with each `Scored` row: the write-back puts it in the tasks' queue field, which orders
the "Needs review" tab (lsproto/views.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lsproto.config import LabelConfig
from lsproto.notes import confidence_score
from lsproto.results import prediction
from training.acquisition import priority


@dataclass(frozen=True)
class Scored:
    prediction: dict  # {"result", "score", "model_version"[, "cluster"]}
    label: str
    confidence: float  # of `label`, rounded to 4 decimals
    priority: float  # in [0, 1], lower = more useful to label next


def label_columns(cfg: LabelConfig, model_labels: list[str]) -> list[tuple[str, int]]:
    """(label, column in the model's output) for each label of the config the model knows."""
    return [(label, model_labels.index(label)) for label in cfg.labels if label in model_labels]


def score_rows(
    cfg: LabelConfig, version: str, proba: np.ndarray, columns: list[tuple[str, int]], strategy: str, clusters=None
) -> list[Scored | None]:
    """One `Scored` per row of `proba` (N, model labels); None for a row that is not finite."""
    sub = proba[:, [c for _, c in columns]].astype(np.float64)
    finite = np.all(np.isfinite(sub), axis=1)
    out: list[Scored | None] = [None] * len(sub)
    if not finite.any():
        return out
    rows = np.flatnonzero(finite)
    good = sub[rows]
    good = good / np.clip(good.sum(axis=1, keepdims=True), 1e-12, None)
    ranks = priority(good, strategy).tolist()
    best = np.argmax(good, axis=1)
    sure = good[np.arange(len(good)), best].tolist()  # plain floats: one loop of dicts, ~4x faster at 50,000
    for k, (row, b) in enumerate(zip(rows.tolist(), best.tolist())):
        cluster = None if clusters is None else int(clusters[row])
        confidence = round(sure[k], 4)
        pred = prediction(cfg, columns[b][0], confidence_score(confidence, ranks[k]), version, cluster=cluster)
        pred["result"][0]["score"] = confidence
        out[row] = Scored(pred, columns[b][0], confidence, float(ranks[k]))
    return out


def scored_predictions(
    cfg: LabelConfig, version: str, proba: np.ndarray, columns: list[tuple[str, int]], strategy: str, clusters=None
) -> list[dict | None]:
    """One prediction per row of `proba` (N, model labels); None for a row that is not finite."""
    return [None if s is None else s.prediction for s in score_rows(cfg, version, proba, columns, strategy, clusters)]
