"""Metrics against hand-computed values; acquisition scores order by uncertainty."""

import numpy as np
import pytest

from training.acquisition import entropy, least_confidence, margin, rank
from training.metrics import evaluate, expected_calibration_error, plot_confusion

LABELS = ["a", "b", "c"]


def test_evaluate_by_hand():
    y = ["a", "a", "b", "c"]
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    m = evaluate(y, proba, LABELS)
    assert m["accuracy"] == 0.75
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_class"]["b"]["precision"] == 0.5
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_ece_by_hand():
    # two bins used: conf 0.9 (1 of 2 right) and 0.6 (1 of 1 right)
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
    y = np.array([0, 1, 0])
    assert expected_calibration_error(y, proba) == pytest.approx((2 / 3) * 0.4 + (1 / 3) * 0.4)


def test_confusion_plot_is_a_png(tmp_path):
    m = evaluate([0, 1, 2, 2], np.eye(3)[[0, 1, 2, 1]], LABELS)
    path = plot_confusion(m, tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_acquisition_scores():
    proba = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.45, 0.05]])
    assert entropy(proba)[1] == pytest.approx(1) and entropy(proba)[0] == pytest.approx(0, abs=1e-9)
    assert least_confidence(proba)[1] == pytest.approx(1)
    assert margin(proba)[2] == pytest.approx(0.95)
    assert list(rank(proba, "entropy")) == [1, 2, 0]
    with pytest.raises(ValueError, match="unknown acquisition"):
        rank(proba, "bald")


def test_temperature_recovers_a_known_sharpening():
    from training.head import fit_temperature, softmax

    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 4))
    p = softmax(3.0 * z)  # the truth is three times sharper than the logits we are given
    y = np.array([rng.choice(4, p=row) for row in p])
    assert fit_temperature(z, y) == pytest.approx(1 / 3, rel=0.1)
    # never softens: logits already too sharp stay as they are
    p = softmax(0.3 * z)
    y = np.array([rng.choice(4, p=row) for row in p])
    assert fit_temperature(z, y) == pytest.approx(1.0, abs=1e-3)
