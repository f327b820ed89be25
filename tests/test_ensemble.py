"""Ensemble versions (params `ensemble_head`, on in the `accurate` preset): a fine-tuned network and
the default head, served alike by PyTorch and ONNX Runtime; versions without it still load."""

import numpy as np
import pytest

from engines import both_engines
from s3fixture import moto_s3  # noqa: F401 (fixture)
from scenes import CLASSES, read, sample
from training.cache import EmbeddingCache
from training.ensemble import head_params
from training.head import softmax
from training.objectstore import S3Objects
from training.pair import PairBackbone
from training.params import PRESETS, TrainParams
from training.serving import load_classifier
from training.store import ModelStore
from training.train import backbone_for, fit

TOL = 1e-4


@pytest.fixture(scope="module")
def photos():
    paths, labels = sample(7, seed=31)  # 42 photos: a validation split of 21 with val_fraction 0.5
    return read(paths), labels, read(sample(2, seed=31, skip=7)[0])


@pytest.fixture(scope="module")
def published(photos, tmp_path_factory):
    """A store with an ensemble version (the accurate preset, shrunk) and a plain fine-tuned one."""
    train, labels, _ = photos
    store = ModelStore(tmp_path_factory.mktemp("store"))
    params = TrainParams.from_dict(
        {"preset": "accurate", "epochs": 1, "image_size": 64, "batch_size": 8, "val_fraction": 0.5}
    )
    result = fit(train, labels, CLASSES, params)
    v_ens = store.publish(result, params=params, plot=False)
    plain = TrainParams(mode="finetune", epochs=1, image_size=64, batch_size=8, val_fraction=0)
    v_plain = store.publish(fit(train[::3], labels[::3], CLASSES, plain), params=plain, plot=False)
    return store, result, v_ens, v_plain


def test_accurate_preset_trains_an_ensemble(published):
    assert PRESETS["accurate"]["ensemble_head"] is True
    store, result, v_ens, _ = published
    info = result.metrics["ensemble"]
    assert info["weight"] == 0.5 and 0.1 <= info["temperature"] <= 10 and info["head_temperature"] > 0
    m = store.manifest(v_ens)
    assert m["params"]["ensemble_head"] and m["contains_backbone"]
    # the head reads the default head's backbone and Lite1, each from its shared graph
    assert [p["backbone_id"] for p in m["partners"]] == backbone_for(head_params(TrainParams())).id.split("|")
    assert info["head_backbone"] == "|".join(p["backbone_id"] for p in m["partners"])
    assert [p["backbone"]["name"] for p in m["partners"]] == ["efficientnet_lite2", "efficientnet_lite1"]
    assert all(p["onnx"]["path"].startswith("backbones/") for p in m["partners"])
    n_ft, n_head = m["backbone"]["num_features"], sum(p["backbone"]["num_features"] for p in m["partners"])
    assert store.head(v_ens)[0].shape == (len(CLASSES), n_ft + n_head)
    assert len(result.val_index) == 21 and result.val_proba.shape == (21, len(CLASSES))


def test_ensemble_version_agrees_between_engines(published, photos, tmp_path):
    store, _, v_ens, _ = published
    onnx, torch = both_engines(store, v_ens, photos[2], tmp_path)
    assert np.abs(onnx - torch).max() < TOL
    assert np.allclose(onnx.sum(axis=1), 1, atol=1e-5)


def test_ensemble_is_the_geometric_mean_of_its_two_models(published, photos, tmp_path):
    """softmax((0.5 z_ft + 0.5 z_head / t_head) / T): one linear layer over both networks' features,
    each network with its own cache key (the head's is head mode's)."""
    store, result, v_ens, _ = published
    clf = load_classifier(store, vid=v_ens, engine="onnx")
    cache = EmbeddingCache(tmp_path)
    blobs = photos[2]
    proba = clf.predict_proba(blobs, cache=cache)
    tuned, *head_parts = clf.backbone.parts
    f1 = tuned.embed(blobs, cache=cache)
    f2 = np.concatenate([part.embed(blobs, cache=cache) for part in head_parts], axis=1)
    assert [cache.count(part.id) for part in clf.backbone.parts] == [len(set(blobs))] * 3
    W, b = store.head(v_ens)
    z1, z2 = f1 @ W[:, : f1.shape[1]].T, f2 @ W[:, f1.shape[1] :].T
    assert np.abs(softmax(z1 + z2 + b) - proba).max() < 1e-5
    assert np.abs(clf.proba_from_features(np.concatenate([f1, f2], axis=1)) - proba).max() < 1e-6


def test_a_version_without_the_ensemble_still_loads(published, photos):
    store, _, _, v_plain = published
    assert "partners" not in store.manifest(v_plain)
    out = []
    for engine in ("onnx", "torch"):
        clf = load_classifier(store, vid=v_plain, engine=engine)
        assert not isinstance(clf.backbone, PairBackbone)
        out.append(clf.predict_proba(photos[2]))
    assert np.abs(out[0] - out[1]).max() < TOL


def test_too_small_a_validation_split_trains_no_ensemble(photos):
    train, labels, _ = photos
    params = TrainParams(mode="finetune", epochs=1, image_size=64, batch_size=8, val_fraction=0.2, ensemble_head=True)
    result = fit(train, labels, CLASSES, params)
    assert "ensemble" not in result.metrics and not isinstance(result.classifier.backbone, PairBackbone)
    assert "no ensemble head" in result.metrics_note


def test_an_ensemble_version_travels_through_a_bucket(published, photos, moto_s3, tmp_path, monkeypatch):
    """Another machine gets the version with both graphs: its own and the head backbone's shared one."""
    for key, value in moto_s3.env.items():
        monkeypatch.setenv(key, value)
    _, result, v_ens, _ = published
    bucket = S3Objects(f"s3://{moto_s3.bucket()}/stores").child("ens")
    writer = ModelStore(tmp_path / "a", remote=bucket)
    reader = ModelStore(tmp_path / "b", remote=S3Objects(bucket.url), poll=0)
    vid = writer.publish(result, params=TrainParams(mode="finetune", ensemble_head=True), plot=False)
    clf = load_classifier(reader, vid=vid, engine="onnx")
    assert all((tmp_path / "b" / p["onnx"]["path"]).exists() for p in reader.manifest(vid)["partners"])
    expected = load_classifier(writer, vid=vid, engine="onnx").predict_proba(photos[2][:4])
    assert np.abs(clf.predict_proba(photos[2][:4]) - expected).max() < 1e-6
