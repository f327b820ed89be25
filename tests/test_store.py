"""Versioned store: publish, list, load, rollback, and a crash mid-publish never serves a half
version."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from scenes import CLASSES, REPO, read, sample
from training.backbones import create_backbone
from training.params import TrainParams
from training.store import ModelStore, StoreError, data_fingerprint
from training.train import fit


@pytest.fixture(scope="module")
def trained():
    paths, labels = sample(4, seed=2)
    blobs = read(paths)
    backbone = create_backbone(TrainParams().model)
    return blobs, labels, backbone, fit(blobs, labels, CLASSES, TrainParams(), backbone=backbone)


def test_publish_load_list_rollback(trained, tmp_path):
    blobs, labels, backbone, result = trained
    store = ModelStore(tmp_path)
    assert store.serving() is None and store.versions() == []
    v1 = store.publish(result, params=TrainParams(), data_fingerprint=data_fingerprint(["h"], ["sea"]))
    v2 = store.publish(result, params=TrainParams(seed=1), parent=v1)
    assert (v1, v2, store.serving()) == ("v0001", "v0002", "v0002")
    m = store.manifest(v2)
    for key in (
        "version",
        "parent",
        "labels",
        "backbone",
        "image_size",
        "params",
        "metrics",
        "data_fingerprint",
        "created_at",
    ):
        assert key in m
    assert m["parent"] == v1 and m["labels"] == CLASSES and m["params"]["seed"] == 1
    assert [v["version"] for v in store.versions()] == [v1, v2]
    loaded = store.load(backbone=backbone)
    assert loaded.version == v2 and loaded.backbone is backbone  # head version: backbone reused
    assert np.allclose(loaded.predict_proba(blobs[:3]), result.classifier.predict_proba(blobs[:3]), atol=1e-6)
    store.rollback(v1)
    assert store.serving() == v1 and store.load(backbone=backbone).version == v1
    with pytest.raises(StoreError):
        store.rollback("v0099")
    assert (tmp_path / "versions" / v1 / "confusion.png").exists()


CRASH = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    from scenes import CLASSES, read, sample
    from training.params import TrainParams
    from training.store import ModelStore
    from training.train import fit
    paths, labels = sample(3, seed=4)
    result = fit(read(paths), labels, CLASSES, TrainParams())
    store = ModelStore({root!r})
    real = {target}
    def crash(*a, **k):
        if {when}:
            os._exit(9)  # the process dies here: no cleanup, no exception handlers
        return real(*a, **k)
    {patch} = crash
    store.publish(result, params=TrainParams())
""")


@pytest.mark.parametrize(
    "target,when,patch",
    [
        ("os.rename", "True", "os.rename"),  # weights and manifest written, not yet published
        ("os.replace", "'SERVING' in str(a[1])", "os.replace"),  # published, pointer not yet moved
    ],
)
def test_crash_mid_publish_keeps_previous_version_serving(trained, tmp_path, target, when, patch):
    _, _, backbone, result = trained
    store = ModelStore(tmp_path)
    v1 = store.publish(result, params=TrainParams())
    code = CRASH.format(
        repo=str(REPO), tests=str(REPO / "tests"), root=str(tmp_path), target=target, when=when, patch=patch
    )
    proc = subprocess.run([sys.executable, "-c", "import os\n" + code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr
    assert store.serving() == v1
    assert store.load(backbone=backbone).version == v1
    for v in store.versions():  # whatever is listed is complete
        assert json.loads((tmp_path / "versions" / v["version"] / "manifest.json").read_text())
    # and the store keeps working after the crash
    v_next = store.publish(result, params=TrainParams())
    assert store.serving() == v_next != v1


def test_finetuned_version_round_trips_with_its_backbone(tmp_path):
    paths, labels = sample(3, seed=5)
    blobs = read(paths)
    params = TrainParams(mode="finetune", epochs=1, image_size=48, batch_size=8, val_fraction=0)
    result = fit(blobs, labels, CLASSES, params)
    store = ModelStore(tmp_path)
    vid = store.publish(result, params=params)
    loaded = store.load(vid)
    assert loaded.backbone.id == result.classifier.backbone.id
    assert np.allclose(loaded.predict_proba(blobs), result.classifier.predict_proba(blobs), atol=1e-5)
