"""Evaluation: accuracy, macro F1, per-class precision/recall/F1/support, confusion matrix,
expected calibration error, and a confusion-matrix plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 15) -> float:
    """Weighted gap between confidence and accuracy over equal-width confidence bins."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(ece)


def reliability_bins(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> list[dict]:
    """Confidence against accuracy per equal-width confidence bin (non-empty bins only): the data
    of a reliability diagram."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if inside.any():
            out.append(
                {
                    "lo": round(float(lo), 4),
                    "hi": round(float(hi), 4),
                    "n": int(inside.sum()),
                    "accuracy": float(correct[inside].mean()),
                    "confidence": float(conf[inside].mean()),
                }
            )
    return out


def evaluate(y_true, proba: np.ndarray, labels: list[str]) -> dict:
    """Metrics for true label indices (or names) against predicted probabilities (N, C)."""
    proba = np.asarray(proba, dtype=np.float64)
    if len(y_true) and isinstance(y_true[0], str):
        index = {name: i for i, name in enumerate(labels)}
        y_true = [index[name] for name in y_true]
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(y_true) == 0:
        return {"n": 0, "labels": list(labels)}
    y_pred = proba.argmax(axis=1)
    everything = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=everything, zero_division=0)
    present = [i for i in everything if support[i] > 0]
    return {
        "n": int(len(y_true)),
        "labels": list(labels),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # macro over the labels that occur in the evaluation data
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "ece": expected_calibration_error(y_true, proba),
        "reliability": reliability_bins(y_true, proba),
        "per_class": {
            labels[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in everything
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=everything).tolist(),
    }


def plot_confusion(metrics: dict, path: str | Path, title: str | None = None) -> Path:
    """Confusion matrix as a PNG: counts in each cell, rows = true label, colour = row share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = metrics["labels"]
    cm = np.asarray(metrics.get("confusion_matrix") or np.zeros((len(labels),) * 2), dtype=float)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                str(int(cm[i, j])),
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.5 else "black",
                fontsize=9,
            )
    acc = metrics.get("accuracy")
    heading = title or "confusion matrix"
    if acc is not None:
        heading += f"  (accuracy {acc:.1%}, n={metrics.get('n', int(cm.sum()))})"
    ax.set_title(heading, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true label")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
