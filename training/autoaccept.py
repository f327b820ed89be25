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
accurate than what the rule measured.

The labels-only rule is safe but covers little: with 600 labels it can promise 98 % for only about
a quarter of new photos, because a few errors among a few hundred labels leave a wide bound. The
rule the product uses (`fit_pool_threshold`) also reads the served model's calibrated confidences
of the photos it would accept (the pool), whose mean is the precision a calibrated model expects
there, and uses the labels to bound how far that expectation can be off:

1. the calibration ratio: among the WIDE (65 %) most confident out-of-fold examples, the errors
   k against the errors the confidences predict E = sum(1 - confidence); r = max(1, U(k) / E)
   with U(k) the Poisson upper bound of k at confidence 1 - delta (99 %). One ratio from a wide
   region: many errors, a tight relative bound;
2. for thresholds t from the top of the pool down: the estimated error of the accepted pool tasks
   is r * mean(1 - confidence); the scan stops at the first t where it exceeds 1 - target, where t
   falls below the region the ratio was measured on, or where the out-of-fold examples at or above
   t contradict the target (one-sided binomial test at CHECK); a threshold needs at least
   MIN_ACCEPTED labeled examples at or above it. Under MIN_POOL_LABELS labels the labels-only rule
   decides (at 120 labels the pool rule missed its promise in 3 of 15 bench runs: out-of-fold
   models trained on 96 labels say little about the confidences of one trained on 120).

bench/auto_accept.py measures both on held-out photos (bench/RESULTS.md).
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
    method: str = "clopper-pearson"  # or "pool" (fit_pool_threshold)
    estimated_precision: float | None = None  # pool: mean confidence of the accepted pool tasks
    calibration_ratio: float | None = None  # pool: bound on errors / errors the confidences predict
    coverage_pool: float | None = None  # pool: share of the pool at or above the threshold

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


WIDE = 0.65  # the share of most confident labeled examples the calibration ratio is measured on
MIN_POOL_LABELS = 200  # below this many labels the out-of-fold models (80 % of them) differ too much
# from the served model for its confidences to be trusted: fit_threshold (labels only) decides
POOL_DELTA = 0.01  # the ratio's upper bound holds with confidence 1 - POOL_DELTA
CHECK = 0.05  # a threshold whose labeled examples reject "precision >= target" at this level ends the scan


def poisson_upper(k: int, delta: float) -> float:
    """Upper confidence bound (1 - delta) of a Poisson mean from k events."""
    from scipy.stats import chi2

    return 0.5 * float(chi2.ppf(1 - delta, 2 * (k + 1)))


def fit_pool_threshold(
    proba,
    y,
    pool_confidence,
    target: float = 0.98,
    delta: float = POOL_DELTA,
    wide: float = WIDE,
    min_accepted: int = MIN_ACCEPTED,
    min_labels: int = MIN_POOL_LABELS,
) -> Threshold:
    """The lowest threshold on the pool's confidences whose accepted tasks keep `target` accuracy by
    the calibration-ratio rule (see the module doc). `proba`, `y`: out-of-fold probabilities of the
    labeled examples and their labels; `pool_confidence`: the served model's top probability for
    each task it may accept (never their labels). Under `min_labels` labels: fit_threshold."""
    from scipy.stats import binom

    if not 0.5 <= target < 1.0:
        raise ValueError(f"target accuracy must be in [0.5, 1); got {target}")
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"proba must be (N, C) for N labels; got {p.shape} and {len(y)} labels")
    if len(y) < min_labels:
        return fit_threshold(p, y, target=target)
    conf = p.max(axis=1)
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], (p.argmax(axis=1) == y)[order]
    m = int(np.ceil(wide * len(conf)))
    pool = np.sort(np.asarray(pool_confidence, dtype=np.float64))[::-1]
    if m < min_accepted or not len(pool):
        return Threshold(target, delta, None, 0, None, None, 0.0, "pool", coverage_pool=0.0)
    errors, expected = int((~right[:m]).sum()), float((1 - conf[:m]).sum())
    ratio = max(1.0, poisson_upper(errors, delta) / max(expected, 1e-12))
    floor = conf[m - 1]
    pool_error = np.cumsum(1 - pool) / np.arange(1, len(pool) + 1)
    hits = np.concatenate([[0], np.cumsum(right)])
    support = np.searchsorted(-conf, -pool, side="right")  # labeled examples at or above each candidate
    contradicted = binom.cdf(hits[support], np.maximum(support, 1), target) < CHECK
    passing = (pool >= floor) & (ratio * pool_error <= 1 - target) & ~(contradicted & (support > 0))
    stop = int(np.argmin(passing)) if not passing.all() else len(pool)  # the scan ends at the first failure
    eligible = np.flatnonzero(support[:stop] >= min_accepted)  # a threshold needs labels to stand on
    if not len(eligible):
        return Threshold(target, delta, None, 0, None, None, 0.0, "pool", calibration_ratio=ratio, coverage_pool=0.0)
    i = int(eligible[-1])
    n = int(support[i])
    t = float(pool[i])
    accepted = int(np.searchsorted(-pool, -t, side="right"))
    return Threshold(
        target,
        delta,
        t,
        n,
        float(hits[n] / n) if n else None,
        float(1 - ratio * pool_error[accepted - 1]),
        n / len(conf),
        "pool",
        float(1 - pool_error[accepted - 1]),
        ratio,
        accepted / len(pool),
    )


def head_probabilities(X, y, test_X, n_classes: int, head_c: float = 0.002, seed: int = 0):
    """(out-of-fold probabilities of the labeled X, the final head's probabilities of test_X) as
    training.train.fit makes them (one temperature from out-of-fold logits); (None, None) when
    there are too few labels for out-of-fold predictions."""
    from .head import cross_val_logits, fit_linear, fit_temperature, softmax

    W, b = fit_linear(X, y, n_classes, head_c, seed)
    oof = cross_val_logits(X, y, n_classes, head_c, seed)
    if oof is None:
        return None, None
    temperature = fit_temperature(oof, y)
    return softmax(oof / temperature), softmax((np.asarray(test_X) @ W.T + b) / temperature)


def apply_rule(oof_p, y, test_p, test_y, target: float, rule: str = "pool", delta: float = 0.05) -> dict:
    """Fit one rule ("pool": fit_pool_threshold with the test photos as the pool; "labels":
    fit_threshold) and measure it on the test photos: coverage and realised precision."""
    if oof_p is None:
        return {"target": target, "threshold": None, "lower_bound": None, "auto_coverage": 0.0, "auto_precision": None}
    conf = test_p.max(axis=1)
    if rule == "pool":
        fitted = fit_pool_threshold(oof_p, y, conf, target=target)
    else:
        fitted = fit_threshold(oof_p, y, target=target, delta=delta)
    accepted = fitted.accepts(conf)
    precision = (
        float(np.mean(test_p.argmax(axis=1)[accepted] == np.asarray(test_y)[accepted])) if accepted.any() else None
    )
    return {
        "target": target,
        "threshold": fitted.threshold,
        "lower_bound": fitted.lower_bound,
        "auto_coverage": float(accepted.mean()),
        "auto_precision": precision,
    }


def measure(
    X,
    y,
    test_X,
    test_y,
    n_classes: int,
    targets,
    *,
    head_c: float = 0.002,
    seed: int = 0,
    delta: float = 0.05,
    rule: str = "pool",
) -> list[dict]:
    """Train the product's head on labeled (X, y) as training.train.fit does, fit the threshold for
    each target, and measure it on photos it never saw: the share it auto-accepts and their
    realised accuracy. `rule`: "pool" (the product's) or "labels" (see apply_rule)."""
    y = np.asarray(y)
    oof_p, test_p = head_probabilities(X, y, test_X, n_classes, head_c, seed)
    return [apply_rule(oof_p, y, test_p, test_y, t, rule, delta) for t in targets]
