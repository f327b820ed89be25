"""ONNX Runtime serving: every published version has a graph, ORT and PyTorch agree on real photos,
the graph of a backbone is exported once, and another process serves a version without torch."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from scenes import CLASSES, REPO, read, sample
from training.backbones import Backbone
from training.cache import EmbeddingCache
from training.ort import OrtBackbone
from training.params import TrainParams
from training.serving import load_classifier, pick_engine
from training.store import ModelStore, StoreError, file_sha256
from training.train import fit

TOL = 1e-4  # max abs difference between ORT and PyTorch probabilities


@pytest.fixture(scope="module")
def photos():
    train = read(sample(2, seed=11)[0])
    labels = sample(2, seed=11)[1]
    test = read(sample(2, seed=11, skip=2)[0])  # disjoint from training
    return train, labels, test


@pytest.fixture(scope="module")
def published(photos, tmp_path_factory):
    """A store with a head version (224 px) and a finetuned version (1 epoch, 128 px)."""
    train, labels, _ = photos
    store = ModelStore(tmp_path_factory.mktemp("store"))
    head = fit(train, labels, CLASSES, TrainParams())
    v_head = store.publish(head, params=TrainParams(), plot=False)
    params = TrainParams(mode="finetune", epochs=1, image_size=128, batch_size=6, val_fraction=0)
    tuned = fit(train[::2], labels[::2], CLASSES, params)
    v_tuned = store.publish(tuned, params=params, plot=False)
    return store, head, v_head, v_tuned


def _both(store, vid, blobs):
    """Probabilities and errors from ORT and from PyTorch for the same version."""
    out = []
    for engine in ("onnx", "torch"):
        clf = load_classifier(store, vid, engine=engine)
        errors = {}
        out.append((clf, clf.predict_proba(blobs, errors=errors), errors))
    return out


def test_manifest_names_the_graph_that_serves_each_version(published):
    store, head, v_head, v_tuned = published
    for vid, where in ((v_head, "backbones/"), (v_tuned, f"versions/{v_tuned}/features.onnx")):
        record = store.manifest(vid)["onnx"]
        assert record["path"].startswith(where) and record["input"] == "images"
        assert record["sha256"] == file_sha256(store.root / record["path"])
    assert not (store.root / ".tmp").exists() or not any((store.root / ".tmp").iterdir())


def test_head_version_ort_matches_pytorch_on_real_photos(published, photos):
    store, _, v_head, _ = published
    blobs = photos[2] + [b"not an image"]
    (ort_clf, p_ort, e_ort), (pt_clf, p_pt, e_pt) = _both(store, v_head, blobs)
    assert isinstance(ort_clf.backbone, OrtBackbone) and isinstance(pt_clf.backbone, Backbone)
    assert ort_clf.labels == pt_clf.labels == CLASSES and ort_clf.version == v_head
    assert p_ort.shape == (13, 6) and np.isnan(p_ort[12]).all() and list(e_ort) == list(e_pt) == [12]
    assert np.abs(p_ort[:12] - p_pt[:12]).max() < TOL
    assert ort_clf.predict(blobs[:3]) and ort_clf.backbone.id == pt_clf.backbone.id


def test_finetuned_version_ort_matches_pytorch(published, photos):
    store, _, _, v_tuned = published
    (ort_clf, p_ort, _), (_, p_pt, _) = _both(store, v_tuned, photos[2])
    assert ort_clf.backbone.image_size == 128 and ort_clf.mode == "finetune"
    assert np.abs(p_ort - p_pt).max() < TOL


def test_engines_share_the_embedding_cache(published, photos, tmp_path):
    store, _, v_head, _ = published
    cache = EmbeddingCache(tmp_path)
    ort_clf = load_classifier(store, v_head, engine="onnx")
    p_ort = ort_clf.predict_proba(photos[2], cache=cache)
    pt_clf = load_classifier(store, v_head, engine="torch")
    calls = []
    hook = pt_clf.backbone.module.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        p_cached = pt_clf.predict_proba(photos[2], cache=cache)
    finally:
        hook.remove()
    assert calls == [] and np.array_equal(p_cached, p_ort)  # PyTorch found ORT's features


def test_backbone_graph_is_exported_once(published, monkeypatch):
    store, head, v_head, _ = published

    def refuse(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr("training.onnx_export.export_features", refuse)
    v_again = store.publish(head, params=TrainParams(seed=1), plot=False, serve=False)
    assert store.manifest(v_again)["onnx"] == store.manifest(v_head)["onnx"]
    assert len(list((store.root / "backbones").glob("*.onnx"))) == 1
    assert not list((store.root / "backbones").glob(".*"))  # no temporary files left
    # and a served ORT backbone is reused by the next head version (one session)
    first = load_classifier(store, v_head, engine="onnx")
    assert load_classifier(store, v_again, engine="onnx", backbone=first.backbone).backbone is first.backbone


def test_auto_engine_is_onnx_on_cpu():
    assert pick_engine("auto", device="cpu") == "onnx" and pick_engine("auto", device="cuda:0") == "torch"
    assert pick_engine("torch") == "torch"
    with pytest.raises(ValueError):
        pick_engine("tensorrt")


SERVE_WITHOUT_TORCH = textwrap.dedent("""
    import json, sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from training.serving import load_classifier
    from training.store import ModelStore
    store = ModelStore({root!r})
    blobs = [Path(p).read_bytes() for p in {paths!r}]
    out = {{}}
    for vid in {vids!r}:
        clf = load_classifier(store, vid)  # auto: ORT on a machine without CUDA
        out[vid] = {{"engine": clf.backbone.engine, "proba": clf.predict_proba(blobs).tolist()}}
    assert "torch" not in [m.split(".")[0] for m, mod in sys.modules.items() if mod is not None]
    print(json.dumps(out))
""")


def test_another_process_serves_with_ort_and_no_torch(published):
    store, _, v_head, v_tuned = published
    paths = [str(p) for p in sample(1, seed=12, skip=4)[0]]
    code = SERVE_WITHOUT_TORCH.format(repo=str(REPO), root=str(store.root), paths=paths, vids=[v_head, v_tuned])
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    blobs = read(paths)
    for vid in (v_head, v_tuned):
        assert served[vid]["engine"] == "onnx"
        expected = load_classifier(store, vid, engine="torch").predict_proba(blobs)
        assert np.abs(np.array(served[vid]["proba"]) - expected).max() < TOL


def test_a_network_the_exporter_refuses_still_publishes_for_pytorch(published, photos, tmp_path, monkeypatch):
    _, head, _, _ = published

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr("training.onnx_export.export_features", broken)
    store = ModelStore(tmp_path)
    with pytest.warns(UserWarning, match="unsupported operator"):
        vid = store.publish(head, params=TrainParams(), plot=False)
    m = store.manifest(vid)
    assert m["onnx"] is None and "unsupported operator" in m["onnx_error"]
    with pytest.raises(StoreError, match="unsupported operator"):
        load_classifier(store, vid, engine="onnx")
    clf = load_classifier(store, vid, engine="auto", backbone=head.classifier.backbone)
    assert clf.backbone.engine == "torch" and clf.predict_proba(photos[2][:2]).shape == (2, 6)
