"""Acquisition scores for active learning: higher = more worth a human look."""
from __future__ import annotations

import numpy as np


def entropy(proba: np.ndarray) -> np.ndarray:
    """Predictive entropy normalised to [0, 1] by log(C)."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])


def margin(proba: np.ndarray) -> np.ndarray:
    """1 - (top-1 minus top-2 probability): 1 when the two best labels tie."""
    top2 = np.sort(np.asarray(proba, dtype=np.float64), axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """1 - top-1 probability, rescaled so a uniform prediction scores 1."""
    p = np.asarray(proba, dtype=np.float64)
    c = p.shape[1]
    return (1.0 - p.max(axis=1)) * c / (c - 1)


SCORES = {"entropy": entropy, "margin": margin, "least_confidence": least_confidence}


def rank(proba: np.ndarray, method: str = "margin") -> np.ndarray:
    """Indices from most to least uncertain."""
    if method not in SCORES:
        raise ValueError(f"unknown acquisition method {method!r}; use one of {', '.join(SCORES)}")
    return np.argsort(-SCORES[method](proba), kind="stable")
