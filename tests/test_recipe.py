"""Which recipe a training job trains (backend/recipe.py): the project's parameters, or the `accurate`
preset when asked for or when `accurate_every` labels were added since the last accurate training.
Real heads fitted on shared photos and published into a real model store; the full path through
Label Studio and a backend process is in test_params_promotion.py."""

from __future__ import annotations

import pytest

import scenes
from backend.jobs.recipe import ACCURATE, accurate_reason, choose, last_accurate_labels, merge_reason, wants_accurate
from training.params import PRESETS, ParamError, TrainParams, training_part, with_preset
from training.store import ModelStore
from training.train import fit

CLASSES = ["forest", "sea", "street"]


@pytest.fixture(scope="module")
def head():
    paths, labels = scenes.sample(2, seed=3, classes=CLASSES)
    params = TrainParams(model="efficientnet_lite0")
    return fit(scenes.read(paths), labels, CLASSES, params), params


def test_accurate_every_counts_labels_since_the_last_accurate_training(tmp_path, head):
    result, params = head
    store = ModelStore(tmp_path / "store")
    explicit = {"accurate_every": 10, "head_c": 0.01, "mode": "head"}

    got, recipe, why = choose(explicit, "ANNOTATION_CREATED", store, 50)
    assert recipe == "project" and got.mode == "head"  # no version serves yet: the fast one comes first

    store.publish(result, params=params, extra={"recipe": "project"})
    got, recipe, why = choose(explicit, "ANNOTATION_CREATED", store, 12)
    assert recipe == ACCURATE and why == "12 labels since the last accurate training (every 10)"
    recipe_values = {k: got.to_dict()[k] for k in PRESETS[ACCURATE]}
    assert recipe_values == PRESETS[ACCURATE]  # the recipe wins over the project's own mode
    assert got.head_c == 0.01 and got.accurate_every == 10  # the project's other parameters stay

    store.publish(result, params=params, extra={"recipe": ACCURATE}, serve=False)  # even as a candidate
    n = result.n_train
    assert last_accurate_labels(store.versions()) == n == 6
    assert choose(explicit, "ANNOTATION_CREATED", store, n + 9)[1:] == (
        "project",
        "9 of 10 labels until the next accurate training",
    )
    assert choose(explicit, "ANNOTATION_CREATED", store, n + 10)[1] == ACCURATE
    assert choose({}, "ANNOTATION_CREATED", store, 10_000)[1] == "project"  # off by default


def test_asked_for_accurate_survives_coalescing_and_trains_the_preset(tmp_path):
    store = ModelStore(tmp_path / "empty")
    asked = accurate_reason("train now (model page)")
    assert wants_accurate(asked) and accurate_reason(asked) == asked and not wants_accurate("train now")
    assert merge_reason(asked, "ANNOTATION_CREATED") == asked
    assert merge_reason("ANNOTATION_CREATED", asked) == asked
    assert merge_reason("START_TRAINING", "ANNOTATION_CREATED") == "ANNOTATION_CREATED"
    got, recipe, why = choose({"lr": 0.1}, asked, store, 3)  # asked for: whatever the count or versions
    assert (recipe, why, got.mode, got.lr, got.tta) == (ACCURATE, "asked for", "finetune", 5e-4, True)


def test_accurate_every_is_validated_and_is_not_a_training_difference():
    with pytest.raises(ParamError, match="accurate_every"):
        TrainParams.from_dict({"accurate_every": -1})
    with pytest.raises(ParamError, match="accurate_every"):
        TrainParams.from_dict({"accurate_every": "often"})
    with pytest.raises(ParamError, match="preset must be one of"):
        with_preset({}, "slowest")
    a, b = TrainParams().to_dict(), TrainParams(accurate_every=500, retrain_every=5).to_dict()
    assert training_part(a) == training_part(b)  # when to train is not what is trained
