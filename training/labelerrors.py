"""Suspected wrong labels from out-of-fold probabilities (interim version; see the active-learning work)."""
from __future__ import annotations

import numpy as np


def label_errors_from_proba(proba, y, label_names) -> list[dict]:
    """Examples whose out-of-fold prediction confidently disagrees with the given label, strongest
    first: another label's probability reaches that label's own typical self-confidence (the mean
    probability its labeled examples get) and beats the given label's."""
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    thresholds = np.array([p[y == j, j].mean() if np.any(y == j) else 1.0 for j in range(p.shape[1])])
    out = []
    for i in range(len(y)):
        others = [j for j in range(p.shape[1]) if j != y[i] and p[i, j] >= thresholds[j] and p[i, j] > p[i, y[i]]]
        if not others:
            continue
        j = max(others, key=lambda k: p[i, k])
        out.append({"index": i, "given": label_names[y[i]], "suggested": label_names[j],
                    "confidence": float(p[i, j]), "given_prob": float(p[i, y[i]]),
                    "strength": float(p[i, j] - p[i, y[i]])})
    return sorted(out, key=lambda r: -r["strength"])
