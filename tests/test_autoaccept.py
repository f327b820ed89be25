"""The auto-accept threshold keeps its promise on data where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from training.autoaccept import fit_pool_threshold, fit_threshold, precision_lower_bound


def synthetic(n: int, rng: np.random.Generator, classes: int = 6, overconfident: float = 1.0):
    """Calibrated by construction: an example with confidence c is right with probability c (with
    `overconfident` = k > 1: wrong k times as often as c says). Most examples are confident, as with
    a trained model (mean accuracy about 83 %)."""
    conf = 1.0 - (1.0 - 1.0 / classes) * rng.random(n) ** 4
    y = rng.integers(0, classes, n)
    right = rng.random(n) < 1 - np.minimum(1.0, overconfident * (1 - conf))
    pred = np.where(right, y, (y + 1 + rng.integers(0, classes - 1, n)) % classes)
    proba = np.full((n, classes), 0.0)
    proba[np.arange(n), pred] = conf
    rest = (1 - conf) / (classes - 1)
    for c in range(classes):
        proba[:, c] = np.where(pred == c, conf, rest)
    return proba, y


def test_clopper_pearson_bound():
    assert precision_lower_bound(0, 10, 0.05) == 0.0
    assert precision_lower_bound(100, 100, 0.05) == pytest.approx(0.05 ** (1 / 100))  # all right: delta^(1/n)
    assert precision_lower_bound(90, 100, 0.05) < 0.9 < precision_lower_bound(990, 1000, 0.05) + 0.01


def test_the_promise_holds_in_at_least_95_percent_of_draws():
    rng = np.random.default_rng(0)
    failures, covered = 0, []
    for _ in range(200):
        proba, y = synthetic(600, rng)
        rule = fit_threshold(proba, y, target=0.95, delta=0.05)
        assert rule.threshold is not None
        # the realised accuracy on new examples from the same distribution (known: conf >= t)
        new_proba, new_y = synthetic(20_000, rng)
        accepted = rule.accepts(new_proba.max(axis=1))
        realised = (new_proba.argmax(axis=1)[accepted] == new_y[accepted]).mean()
        failures += realised < 0.95
        covered.append(accepted.mean())
    assert failures <= 10, failures  # at most 5 % of the draws
    assert np.mean(covered) > 0.05  # and it does accept something


def test_a_naive_threshold_would_overpromise_where_the_rule_does_not():
    rng = np.random.default_rng(1)
    naive_fail = rule_fail = 0
    for _ in range(100):
        proba, y = synthetic(300, rng)
        conf, right = proba.max(axis=1), proba.argmax(axis=1) == y
        order = np.argsort(-conf)
        running = np.cumsum(right[order]) / np.arange(1, len(y) + 1)
        ok = np.flatnonzero(running >= 0.97)
        naive_t = conf[order][ok.max()] if len(ok) else 1.1
        new_proba, new_y = synthetic(20_000, rng)
        new_conf, new_right = new_proba.max(axis=1), new_proba.argmax(axis=1) == new_y
        naive_fail += new_right[new_conf >= naive_t].mean() < 0.97
        rule = fit_threshold(proba, y, target=0.97, delta=0.05)
        if rule.threshold is not None:
            rule_fail += new_right[new_conf >= rule.threshold].mean() < 0.97
    assert naive_fail > 20 and rule_fail <= 5, (naive_fail, rule_fail)


def test_too_few_or_bad_labels_claim_nothing_and_bad_arguments_say_why():
    rng = np.random.default_rng(2)
    proba, y = synthetic(15, rng)
    assert fit_threshold(proba, y).threshold is None  # under MIN_ACCEPTED supporting examples
    proba, y = synthetic(400, rng)
    rule = fit_threshold(proba, (y + 1) % 6, target=0.9)  # every label wrong: nothing can be promised
    assert rule.threshold is None and rule.coverage_labeled == 0.0
    for bad in ({"target": 1.0}, {"target": 0.3}, {"delta": 0.0}):
        with pytest.raises(ValueError):
            fit_threshold(proba, y, **bad)


def test_spot_checks_are_a_stable_share_of_tasks():
    from backend.accept.decisions import is_spot_check

    draws = [is_spot_check(t, 0.05) for t in range(20_000)]
    assert 0.04 < np.mean(draws) < 0.06
    assert draws == [is_spot_check(t, 0.05) for t in range(20_000)]  # the same task every time
    assert not any(is_spot_check(t, 0.0) for t in range(1000))


def test_spot_checks_pause_auto_accept_only_when_below_target_beyond_chance():
    from backend.accept.decisions import check_status

    def checks(right, wrong):
        return [{"predicted": "a", "human": "a"}] * right + [{"predicted": "a", "human": "b"}] * wrong

    assert check_status([], 0.98)["paused"] is False
    fine = check_status(checks(49, 1), 0.98)  # 98 %: exactly on target
    assert not fine["paused"] and fine["precision"] == 0.98 and fine["message"] is None
    assert not check_status(checks(19, 1), 0.98)["paused"]  # 95 % of 20: within chance of 98 %
    bad = check_status(checks(45, 5), 0.98)  # 90 % of 50: P[X <= 45 | 98 %] ~ 0.0032
    assert bad["paused"] and bad["p_value"] < 0.05 and "paused" in bad["message"] and "45 of 50" in bad["message"]
    assert not check_status(checks(45, 5), None)["paused"]  # auto-accept off: nothing to pause
    # only the newest checks count: enough good ones after the bad ones resume auto-accept
    assert not check_status(checks(45, 5) + checks(100, 0), 0.98)["paused"]


def test_auto_accept_parameters_are_validated_and_never_retrain():
    from training.params import ParamError, TrainParams, training_part

    assert TrainParams().auto_accept is None and TrainParams().spot_check == 0.05
    assert TrainParams.from_dict({"auto_accept": 0.98, "spot_check": 0.1}).auto_accept == 0.98
    for bad in ({"auto_accept": 1.0}, {"auto_accept": 0.3}, {"auto_accept": "high"}, {"spot_check": 0.9}):
        with pytest.raises(ParamError):
            TrainParams.from_dict(bad)
    on = TrainParams.from_dict({"auto_accept": 0.98}).to_dict()
    assert training_part(on) == training_part(TrainParams().to_dict())  # same training either way


def pool_rule_draws(overconfident: float, target: float = 0.98, draws: int = 100):
    """(promise failures, mean coverage of the pool rule, mean coverage of the labels-only rule)."""
    rng = np.random.default_rng(3)
    failures, covered, labels_only = 0, [], []
    for _ in range(draws):
        proba, y = synthetic(600, rng, overconfident=overconfident)
        pool, pool_y = synthetic(5_000, rng, overconfident=overconfident)  # their labels are never shown
        conf = pool.max(axis=1)
        rule = fit_pool_threshold(proba, y, conf, target=target)
        assert rule.threshold is None or (rule.lower_bound >= target and rule.calibration_ratio >= 1.0)
        accepted = rule.accepts(conf)
        if accepted.any():
            failures += (pool.argmax(axis=1)[accepted] == pool_y[accepted]).mean() < target
        covered.append(accepted.mean())
        labels_only.append(fit_threshold(proba, y, target=target).accepts(conf).mean())
    return failures, float(np.mean(covered)), float(np.mean(labels_only))


def test_the_pool_rule_keeps_its_promise_and_covers_more_than_labels_alone():
    failures, covered, labels_only = pool_rule_draws(1.0)
    assert failures <= 5, failures
    assert covered > labels_only + 0.1, (covered, labels_only)  # the pool's confidences are worth it
    # a model wrong twice as often as its confidences say: the calibration ratio sees it in the
    # labels and accepts less, and the promise still holds
    failures, worse, _ = pool_rule_draws(2.0)
    assert failures <= 5, failures
    assert 0.1 < worse < covered - 0.03, (worse, covered)


def test_the_pool_rule_claims_nothing_on_too_few_labels_or_an_empty_pool():
    rng = np.random.default_rng(4)
    proba, y = synthetic(20, rng)
    assert fit_pool_threshold(proba, y, proba.max(axis=1)).threshold is None  # 65 % of 20 < MIN_ACCEPTED
    proba, y = synthetic(400, rng)
    assert fit_pool_threshold(proba, y, []).threshold is None
    assert fit_pool_threshold(proba, (y + 1) % 6, proba.max(axis=1), target=0.9).threshold is None
    with pytest.raises(ValueError):
        fit_pool_threshold(proba, y, proba.max(axis=1), target=1.0)
