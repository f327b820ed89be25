"""Auto-accept: the confidence above which a model's label may be taken without a person, chosen so
that the accepted labels keep a target accuracy with stated confidence.

The rule (`fit_threshold`) sees only OUT-OF-FOLD predictions of human-labeled examples: what models
that never saw an example's label said of it. For a candidate threshold t it counts the examples
whose out-of-fold confidence is >= t (n) and how many of those were right (k), and takes the
Clopper-Pearson lower bound of their precision at confidence 1 - delta. Candidate thresholds are
tested from the most confident down and the scan stops at the first one that fails (fixed-sequence
testing), so the chance that the chosen threshold's true precision is below the target is at most
delta, not delta per threshold tried. The sequence is fixed from the confidences alone, before any
label is looked at: it starts where n is large enough for a flawless run to pass at all
(target^n <= delta) and goes down in steps of 5 % of the labeled examples. A naive rule ("the
lowest threshold whose observed precision meets the target") picks the threshold by the very noise it
then reports, and over-promises.

Out-of-fold models are trained on 80 % of the labels, so the served model is, if anything, more
accurate than what the rule measured: the guarantee is conservative.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_ACCEPTED = 20  # fewer supporting examples than this and no threshold is claimed
STEPS = 20  # candidate thresholds are 1/STEPS of the labeled examples apart


@dataclass(frozen=True)
class Threshold:
    target: float  # the accuracy promised for auto-accepted labels
    delta: float  # the chance the promise fails (1 - confidence of the bound)
    threshold: float | None  # accept when the top probability is >= this; None = accept nothing
    support: int  # labeled examples at or above the threshold
    observed_precision: float | None  # their out-of-fold accuracy
    lower_bound: float | None  # its Clopper-Pearson lower bound at confidence 1 - delta
    coverage_labeled: float  # share of the labeled examples at or above the threshold

    def to_dict(self) -> dict:
        return asdict(self)

    def accepts(self, confidence: np.ndarray) -> np.ndarray:
        if self.threshold is None:
            return np.zeros(len(confidence), dtype=bool)
        return np.asarray(confidence) >= self.threshold


def precision_lower_bound(k: int, n: int, delta: float) -> float:
    """One-sided Clopper-Pearson lower bound on a success rate from k successes in n trials."""
    from scipy.stats import beta

    if n == 0 or k == 0:
        return 0.0
    return float(beta.ppf(delta, k, n - k + 1))


def fit_threshold(proba, y, target: float = 0.98, delta: float = 0.05, min_accepted: int = MIN_ACCEPTED) -> Threshold:
    """The lowest confidence threshold whose accepted labels keep `target` accuracy with confidence
    1 - delta (see the module doc). `proba`: out-of-fold probabilities (N, C); `y`: true label indices."""
    if not 0.5 <= target < 1.0:
        raise ValueError(f"target accuracy must be in [0.5, 1); got {target}")
    if not 0.0 < delta < 0.5:
        raise ValueError(f"delta must be in (0, 0.5); got {delta}")
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"proba must be (N, C) for N labels; got {p.shape} and {len(y)} labels")
    conf = p.max(axis=1)
    right = p.argmax(axis=1) == y
    order = np.argsort(-conf, kind="stable")
    conf, hits = conf[order], np.cumsum(right[order])
    first = max(min_accepted, int(np.ceil(np.log(delta) / np.log(target))))
    best = None
    for n in range(first, len(conf) + 1, max(1, len(conf) // STEPS)):
        while n < len(conf) and conf[n] == conf[n - 1]:
            n += 1  # a threshold takes every example with the same confidence
        k = int(hits[n - 1])
        bound = precision_lower_bound(k, n, delta)
        if bound < target:
            break  # fixed sequence: the first failure ends the scan
        best = (float(conf[n - 1]), n, k / n, bound)
    if best is None:
        return Threshold(target, delta, None, 0, None, None, 0.0)
    threshold, n, observed, bound = best
    return Threshold(target, delta, threshold, n, observed, bound, n / len(conf))


def measure(X, y, test_X, test_y, n_classes: int, targets, *, head_c: float = 0.002, seed: int = 0,
            delta: float = 0.05) -> list[dict]:
    """Train the product's head on labeled (X, y) as training.train.fit does (temperature from
    out-of-fold logits), fit the threshold on its out-of-fold probabilities for each target, and
    measure it on photos it never saw: the share it auto-accepts and their realised accuracy."""
    from .head import cross_val_logits, fit_linear, fit_temperature, softmax

    y, test_y = np.asarray(y), np.asarray(test_y)
    W, b = fit_linear(X, y, n_classes, head_c, seed)
    oof = cross_val_logits(X, y, n_classes, head_c, seed)
    if oof is None:
        return [{"target": t, "threshold": None, "auto_coverage": 0.0, "auto_precision": None} for t in targets]
    temperature = fit_temperature(oof, y)
    oof_p, test_p = softmax(oof / temperature), softmax((np.asarray(test_X) @ W.T + b) / temperature)
    out = []
    for target in targets:
        rule = fit_threshold(oof_p, y, target=target, delta=delta)
        accepted = rule.accepts(test_p.max(axis=1))
        precision = float(np.mean(test_p.argmax(axis=1)[accepted] == test_y[accepted])) if accepted.any() else None
        out.append({"target": target, "threshold": rule.threshold, "lower_bound": rule.lower_bound,
                    "auto_coverage": float(accepted.mean()), "auto_precision": precision})
    return out
