"""A head over two pretrained backbones (params `second_model`): trained on both networks'
features, published with both shared graphs, served alike by PyTorch and ONNX Runtime, and its
networks shared with the one-backbone head versions of the same project."""

import numpy as np
import pytest

from engines import both_engines
from scenes import CLASSES, read, sample
from training.cache import EmbeddingCache
from training.params import ParamError, TrainParams, with_preset
from training.store import ModelStore
from training.train import backbone_for, fit

TOL = 1e-4
PAIR = {"second_model": "efficientnet_lite0", "tta": True}


@pytest.fixture(scope="module")
def photos():
    paths, labels = sample(4, seed=41)  # 24 labelled photos: 4 per class, enough for 3-fold CV
    unlabeled = read(sample(3, seed=41, skip=4)[0])
    return read(paths), labels, unlabeled, read(sample(1, seed=41, skip=7)[0])


@pytest.fixture(scope="module")
def published(photos, tmp_path_factory):
    train, labels, unlabeled, _ = photos
    root = tmp_path_factory.mktemp("projects")
    store = ModelStore(root / "7" / "models")
    params = TrainParams.from_dict(PAIR)
    cache = EmbeddingCache(tmp_path_factory.mktemp("emb"))
    result = fit(train, labels, CLASSES, params, cache=cache, unlabeled_blobs=unlabeled)
    return root, store, result, store.publish(result, params=params, plot=False), cache


def test_params_of_a_second_backbone_are_checked():
    for bad in (
        {"second_model": ""},
        {"second_model": "efficientnet_lite2"},
        {"second_model": "efficientnet_lite0", "mode": "finetune"},
    ):
        with pytest.raises(ParamError, match="second_model"):
            TrainParams.from_dict(bad)
    # the accurate preset is a fine-tune: a project's head over two backbones does not stop it
    assert with_preset(PAIR, "accurate").second_model is None
    assert with_preset(PAIR, "fast").second_model is None  # fast = one network


def test_head_reads_both_networks_features(published, photos):
    _, store, result, vid, cache = published
    clf = result.classifier
    first, second = clf.backbone.parts
    assert (first.name, second.name, first.tta, second.tta) == ("efficientnet_lite2", "efficientnet_lite0", True, True)
    assert clf.weight.shape == (len(CLASSES), first.num_features + second.num_features)
    blobs = photos[3]
    X = np.concatenate([first.embed(blobs, cache=cache), second.embed(blobs, cache=cache)], axis=1)
    assert np.allclose(clf.predict_proba(blobs, cache=cache), clf.proba_from_features(X), atol=1e-6)
    assert result.metrics_source == "cross-validation" and result.metrics["accuracy"] > 0.5
    m = store.manifest(vid)
    assert not m["contains_backbone"] and m["params"]["second_model"] == "efficientnet_lite0"
    [partner] = m["partners"]
    assert partner["backbone_id"] == second.id and partner["onnx"]["path"].startswith("backbones/")
    assert m["onnx"]["path"].startswith("backbones/")  # both graphs are the shared pretrained ones


def test_two_backbone_head_agrees_between_engines(published, photos, tmp_path):
    _, store, _, vid, _ = published
    onnx, torch = both_engines(store, vid, photos[3], tmp_path)
    assert np.abs(onnx - torch).max() < TOL


def test_backend_shares_the_networks_between_versions(published, photos):
    """The backend's Serving: PyTorch networks for training and ONNX Runtime sessions for serving are
    shared by a two-backbone head and a one-backbone head of the same networks."""
    from backend.inference.models import Serving

    root, store, result, vid, cache = published
    onnx = Serving(root, engine="onnx")
    _, clf = onnx.classifier("7")
    plain = TrainParams(tta=True)
    single = fit(photos[0], photos[1], CLASSES, plain, cache=cache, backbone=result.classifier.backbone.parts[0])
    store.publish(single, params=plain, plot=False)
    _, clf2 = onnx.classifier("7")
    assert clf2.backbone is clf.backbone.parts[0]  # the same session, not a new one
    torch_side = Serving(root, engine="torch")
    pair = torch_side.backbone(TrainParams.from_dict(PAIR))
    assert pair.parts[0] is torch_side.backbone(plain)
    assert pair.parts[1] is torch_side.backbone(TrainParams(model="efficientnet_lite0", tta=True))
    assert backbone_for(TrainParams.from_dict(PAIR), pair).parts == pair.parts  # reused, not rebuilt


def test_balanced_preset_trains_lite2_beside_lite1_and_both_engines_agree(photos, tmp_path):
    """The `balanced` preset (the two-network head that won bench/semi_supervised.py: Lite2 and Lite1
    side by side) reaches the trainer as that pair, semi-supervised, and ONNX Runtime serves what
    PyTorch computes."""
    train, labels, unlabeled, probe = photos
    params = TrainParams.from_dict({"preset": "balanced"})
    assert (params.mode, params.model, params.second_model) == ("head", "efficientnet_lite2", "efficientnet_lite1")
    assert TrainParams.from_dict({"preset": "balanced", "tta": True}).tta  # explicit values still win
    store = ModelStore(tmp_path / "models")
    result = fit(train, labels, CLASSES, params, cache=EmbeddingCache(tmp_path / "emb"), unlabeled_blobs=unlabeled)
    first, second = result.classifier.backbone.parts
    assert (first.name, first.image_size, second.name, second.image_size) == (
        "efficientnet_lite2",
        260,
        "efficientnet_lite1",
        240,
    )
    assert result.classifier.weight.shape == (len(CLASSES), first.num_features + second.num_features)
    assert result.metrics_source == "cross-validation" and result.metrics["accuracy"] > 0.5
    vid = store.publish(result, params=params, plot=False)
    assert store.manifest(vid)["params"]["preset"] == "balanced"
    onnx, torch = both_engines(store, vid, probe, tmp_path)
    assert np.abs(onnx - torch).max() < TOL
