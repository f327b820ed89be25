"""Acquisition strategies on hand-made probabilities and small synthetic embeddings."""

import numpy as np
import pytest

from training.acquisition import DEFAULT_STRATEGY, STRATEGIES, clusters, initial_batch, priority, select

# row 0: sure; row 1: uniform; row 2: two labels tie; row 3: fairly sure; row 4: spread over two
P = np.array(
    [
        [0.98, 0.01, 0.01],
        [1 / 3, 1 / 3, 1 / 3],
        [0.45, 0.45, 0.10],
        [0.80, 0.15, 0.05],
        [0.40, 0.30, 0.30],
    ]
)


def test_strategies_and_default():
    assert STRATEGIES == ("random", "least_confidence", "margin", "entropy", "diverse")
    assert DEFAULT_STRATEGY in STRATEGIES


def test_uncertainty_orderings():
    # margin: ties first (rows 1 and 2 both have margin 0; stable order), then 0.1, 0.65, 0.97
    assert select(P, 5, "margin").tolist() == [1, 2, 4, 3, 0]
    assert select(P, 5, "least_confidence").tolist() == [1, 4, 2, 3, 0]
    assert select(P, 5, "entropy").tolist() == [1, 4, 2, 3, 0]
    assert select(P, 2, "margin").tolist() == [1, 2]


def test_priority_lower_is_more_useful_and_in_unit_range():
    for strategy in STRATEGIES:
        pr = priority(P, strategy)
        assert pr.shape == (5,) and pr.min() >= 0 and pr.max() <= 1
    assert priority(P, "margin")[2] == pytest.approx(0.0)
    assert priority(P, "margin")[0] == pytest.approx(0.97)
    assert priority(P, "least_confidence")[1] == pytest.approx(0.0)
    assert priority(P, "entropy")[1] == pytest.approx(0.0)
    assert priority(P, "entropy")[0] > 0.8
    for strategy in ("margin", "least_confidence", "entropy"):
        # select's order is exactly "lowest priority first"
        assert select(P, 5, strategy).tolist() == np.argsort(priority(P, strategy), kind="stable").tolist()
    assert np.allclose(priority(P, "diverse"), priority(P, "margin"))
    # random: deterministic per prediction, not tied to the row's position
    r = priority(P, "random")
    assert np.array_equal(r, priority(P, "random"))
    assert priority(P[::-1], "random").tolist() == r[::-1].tolist()
    assert len(set(r.tolist())) == 5


def test_random_is_seeded_and_distinct():
    a = select(np.full((50, 3), 1 / 3), 10, "random", seed=1)
    assert a.tolist() == select(np.full((50, 3), 1 / 3), 10, "random", seed=1).tolist()
    assert len(set(a.tolist())) == 10
    assert a.tolist() != select(np.full((50, 3), 1 / 3), 10, "random", seed=2).tolist()


def test_validation_at_the_edge():
    with pytest.raises(ValueError, match="random, least_confidence, margin, entropy, diverse"):
        select(P, 2, "bald")
    with pytest.raises(ValueError, match="unknown strategy"):
        priority(P, "bald")
    with pytest.raises(ValueError, match="needs the features"):
        select(P, 2, "diverse")
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        select(np.ones(4), 2, "margin")
    assert select(P, 0, "margin").tolist() == []
    assert sorted(select(P, 99, "margin").tolist()) == [0, 1, 2, 3, 4]


def _blobs(n_per=20, centres=4, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=10, size=(centres, dim))
    X = np.concatenate([m + rng.normal(size=(n_per, dim)) for m in means])
    return X, np.repeat(np.arange(centres), n_per)


def test_clusters_shapes_determinism_and_small_n():
    X, truth = _blobs()
    c = clusters(X, 4, seed=0)
    assert c.shape == (80,) and set(c.tolist()) == {0, 1, 2, 3}
    assert np.array_equal(c, clusters(X, 4, seed=0))
    for t in range(4):  # each true blob is one cluster
        assert len(set(c[truth == t].tolist())) == 1
    assert clusters(X[:3], 10).tolist() == [0, 1, 2]  # N < k: one cluster each
    assert clusters(X[:0], 5).shape == (0,)


def test_initial_batch_covers_every_blob():
    X, truth = _blobs()
    picks = initial_batch(X, 4, seed=0)
    assert picks.shape == (4,) and len(set(picks.tolist())) == 4
    assert sorted(truth[picks].tolist()) == [0, 1, 2, 3]
    assert np.array_equal(picks, initial_batch(X, 4, seed=0))
    assert initial_batch(X[:3], 10).tolist() == [0, 1, 2]


def test_diverse_picks_from_different_clusters():
    X, truth = _blobs(n_per=20, centres=4)
    # four uncertain photos in every blob, blob 0's the most uncertain: margin spends the whole
    # batch of 4 on blob 0, diverse takes the most uncertain photo of each blob
    proba = np.tile([0.9, 0.05, 0.05], (80, 1))
    for t in range(4):
        rows = np.flatnonzero(truth == t)[:4]
        gap = 0.01 if t == 0 else 0.1 + 0.02 * t
        proba[rows] = [(1 + gap) / 2 - 0.01, (1 - gap) / 2 - 0.01, 0.02]
        proba[rows[1:], 2] += 0.001 * np.arange(1, 4)
    proba /= proba.sum(axis=1, keepdims=True)
    assert set(truth[select(proba, 4, "margin")].tolist()) == {0}
    picks = select(proba, 4, "diverse", features=X, seed=0)
    assert len(set(picks.tolist())) == 4
    assert sorted(truth[picks].tolist()) == [0, 1, 2, 3]
    m = priority(proba, "margin")[picks]
    assert m.tolist() == sorted(m.tolist())  # most useful first
