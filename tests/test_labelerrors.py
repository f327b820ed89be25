"""Label errors on real embedded photos: injected wrong labels rank at the top."""

import numpy as np
import pytest

from scenes import read, sample
from training.backbones import create_backbone
from training.cache import EmbeddingCache
from training.labelerrors import find_label_errors, label_errors_from_proba

CLASSES = ["buildings", "forest", "glacier"]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    paths, labels = sample(20, seed=0, classes=CLASSES)
    cache = EmbeddingCache(tmp_path_factory.getbasetemp() / "al-cache")
    X = create_backbone("efficientnet_lite0").embed(read(paths), cache=cache)
    return X, labels


def test_injected_wrong_labels_rank_first(embedded):
    X, labels = embedded
    noisy = list(labels)
    injected = {3: "forest", 25: "glacier", 47: "buildings"}  # a buildings, a forest, a glacier photo
    for i, wrong in injected.items():
        assert noisy[i] != wrong
        noisy[i] = wrong
    found = find_label_errors(X, noisy, CLASSES, seed=0)
    assert {f["index"] for f in found[:3]} == set(injected)
    for f in found[:3]:
        assert f["given"] == injected[f["index"]] and f["suggested"] == labels[f["index"]]
        assert 0 < f["given_prob"] < f["confidence"] <= 1 and 0 < f["strength"] <= 1
    strengths = [f["strength"] for f in found]
    assert strengths == sorted(strengths, reverse=True)
    assert len(found) <= 8  # a handful of honest doubts at most, not a wholesale relabel
    # the same photos with their true labels: nothing confidently wrong among the top
    clean = find_label_errors(X, labels, CLASSES, seed=0)
    assert len(clean) <= 3


def test_from_proba_rule_and_validation():
    names = ["a", "b", "c"]
    proba = np.array(
        [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.85, 0.05], [0.7, 0.2, 0.1], [0.05, 0.05, 0.9], [0.3, 0.4, 0.3]]
    )
    y = np.array([0, 0, 1, 1, 2, 2])
    found = label_errors_from_proba(proba, y, names)
    # per-label bars (mean p(j) over the rows given j): a 0.85, b 0.525, c 0.6; row 3 (given b)
    # leans to a at 0.7, below a's bar: a doubt, not a confident disagreement
    assert [f["index"] for f in found] == []
    proba[3] = [0.88, 0.1, 0.02]  # now above a's bar (0.85): flagged
    found = label_errors_from_proba(proba, y, names)
    assert [(f["index"], f["given"], f["suggested"]) for f in found] == [(3, "b", "a")]
    assert found[0]["confidence"] == pytest.approx(0.88) and found[0]["given_prob"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="columns"):
        label_errors_from_proba(proba, y, names[:2])
    with pytest.raises(ValueError, match="not among"):
        find_label_errors(np.zeros((6, 4)), ["a", "b", "x", "a", "b", "c"], names)
