"""Flip test-time augmentation served alike by PyTorch and ONNX Runtime, temperature-scaled fine-tuned
versions, and presets validated and reaching the trainer."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from scenes import CLASSES, REPO, SCENES, read, sample
from training.cache import EmbeddingCache
from training.params import PRESETS, ParamError, TrainParams
from training.serving import load_classifier
from training.store import ModelStore
from training.train import fit

TOL = 1e-4


@pytest.fixture(scope="module")
def photos():
    train_paths, labels = sample(2, seed=21)
    return read(train_paths), labels, read(sample(2, seed=21, skip=2)[0])


@pytest.fixture(scope="module")
def published(photos, tmp_path_factory):
    """A store with a plain head, a flip-averaged head and a flip-averaged finetuned version."""
    train, labels, _ = photos
    store = ModelStore(tmp_path_factory.mktemp("store"))
    plain = TrainParams(image_size=128)
    v_plain = store.publish(fit(train, labels, CLASSES, plain), params=plain, plot=False)
    flip = TrainParams(image_size=128, tta=True)
    v_flip = store.publish(fit(train, labels, CLASSES, flip), params=flip, plot=False)
    tuned_params = TrainParams(mode="finetune", epochs=1, image_size=96, batch_size=6, val_fraction=0, tta=True)
    tuned = fit(train, labels, CLASSES, tuned_params)
    v_tuned = store.publish(tuned, params=tuned_params, plot=False)
    return store, v_plain, v_flip, v_tuned


def mirrored(blob: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(blob)).convert("RGB").transpose(Image.FLIP_LEFT_RIGHT).save(out, "PNG")
    return out.getvalue()


def test_flip_features_average_the_photo_and_its_mirror_image(published, photos):
    store, v_plain, v_flip, _ = published
    plain = load_classifier(store, v_plain, engine="onnx").backbone
    flip = load_classifier(store, v_flip, engine="onnx").backbone
    assert flip.tta and not plain.tta and flip.id == plain.id + "+flip"
    # one graph file serves both (the flip happens around it)
    assert store.manifest(v_flip)["onnx"]["path"] == store.manifest(v_plain)["onnx"]["path"]
    blobs = photos[2][:4]
    expected = (plain.embed(blobs) + plain.embed([mirrored(b) for b in blobs])) / 2
    assert np.abs(flip.embed(blobs) - expected).max() < 1e-3


@pytest.mark.parametrize("which", ["head", "finetune"])
def test_flip_versions_agree_between_engines(published, photos, which, tmp_path):
    store, _, v_flip, v_tuned = published
    vid = v_flip if which == "head" else v_tuned
    blobs = photos[2] + [b"not an image"]
    out = []
    for engine in ("onnx", "torch"):
        clf = load_classifier(store, vid, engine=engine)
        assert clf.backbone.tta
        errors = {}
        out.append(clf.predict_proba(blobs, errors=errors, cache=EmbeddingCache(tmp_path / engine)))
        assert list(errors) == [12]
    assert np.abs(out[0][:12] - out[1][:12]).max() < TOL


def test_flip_features_have_their_own_cache_key(published, photos, tmp_path):
    store, v_plain, v_flip, _ = published
    cache = EmbeddingCache(tmp_path)
    load_classifier(store, v_plain, engine="onnx").predict_proba(photos[2], cache=cache)
    flip = load_classifier(store, v_flip, engine="onnx")
    flip.predict_proba(photos[2], cache=cache)
    assert cache.count(flip.backbone.id) == len(set(photos[2])) and flip.backbone.id.endswith("+flip")


def test_finetuned_version_is_temperature_scaled_on_its_validation_split(photos):
    train, labels, _ = photos
    more_paths, more_labels = sample(5, seed=22, skip=4)
    blobs, ys = train + read(more_paths), labels + more_labels
    params = TrainParams(mode="finetune", epochs=1, image_size=64, batch_size=8, val_fraction=0.5)
    result = fit(blobs, ys, CLASSES, params)
    assert result.metrics_source == "validation split" and result.n_eval >= 20
    t = result.metrics["temperature"]
    assert 0.1 <= t <= 10 and t != 1.0
    # the stored head carries the temperature: its probabilities on the validation split are the
    # calibrated ones the metrics were computed from
    assert result.metrics["ece"] < 0.3


def test_presets_fill_in_values_and_explicit_values_win():
    fast, accurate = TrainParams.from_dict({"preset": "fast"}), TrainParams.from_dict({"preset": "accurate"})
    balanced = TrainParams.from_dict({"preset": "balanced"})
    for name, params in (("fast", fast), ("balanced", balanced), ("accurate", accurate)):
        assert params.preset == name
        assert {k: getattr(params, k) for k in PRESETS[name]} == PRESETS[name]
    assert fast.mode == balanced.mode == "head" and accurate.mode == "finetune"
    assert fast.second_model is None and balanced.second_model == "efficientnet_lite1"
    mine = TrainParams.from_dict({"preset": "accurate", "epochs": 1, "tta": False})
    assert mine.epochs == 1 and not mine.tta and mine.mode == "finetune"
    again = TrainParams.from_dict(mine.to_dict())  # what a manifest stores reads back the same
    assert again == mine
    for bad in ("best", 3, ""):
        with pytest.raises(ParamError, match="preset must be one of fast, balanced, accurate"):
            TrainParams.from_dict({"preset": bad})


def test_extra_params_preset_reaches_the_trainer():
    """The backend stores what a person set (`preset` and overrides) and trains with the preset's
    values: backend.jobs.trainer builds its TrainParams from the stored values with from_dict."""
    from backend.projects.registry import parse_extra_params

    given = parse_extra_params('{"preset": "accurate", "epochs": 2}')
    assert given == {"preset": "accurate", "epochs": 2}
    params = TrainParams.from_dict(given)
    assert params.mode == "finetune" and params.epochs == 2
    assert params.model == PRESETS["accurate"].get("model", params.model)
    with pytest.raises(ParamError, match="preset"):
        parse_extra_params({"preset": "turbo"})


def test_cli_train_preset_reaches_the_trainer(tmp_path):
    store = tmp_path / "store"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "train",
            "--data",
            str(SCENES),
            "--out",
            str(store),
            "--limit",
            "12",
            "--preset",
            "accurate",
            "--epochs",
            "1",
            "--image-size",
            "64",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "TASVEER_CACHE": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mode"] == "finetune"  # stdout holds the JSON alone
    manifest = ModelStore(store).manifest("v0001")
    expected = {**PRESETS["accurate"], "epochs": 1, "image_size": 64, "preset": "accurate"}
    assert {k: manifest["params"][k] for k in expected} == expected
    assert manifest["backbone"]["tta"] == expected.get("tta", False)
