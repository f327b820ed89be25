"""The model store in an S3-compatible bucket (moto server): the same API and guarantees as on
disk, shared by two ModelStore objects with separate local caches (two machines)."""

import numpy as np
import pytest

from s3fixture import moto_s3  # noqa: F401 (fixture)
from scenes import CLASSES, read, sample
from training.backbones import create_backbone
from training.objectstore import S3Objects
from training.params import TrainParams
from training.serving import load_classifier
from training.store import ModelStore, StoreError
from training.storebucket import StoreBucket
from training.train import fit


@pytest.fixture(scope="module")
def trained():
    paths, labels = sample(4, seed=2)
    blobs = read(paths)
    backbone = create_backbone()
    return blobs, fit(blobs, labels, CLASSES, TrainParams(), backbone=backbone)


def test_two_machines_share_versions_through_a_bucket(trained, moto_s3, tmp_path, monkeypatch):
    for key, value in moto_s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = S3Objects(f"s3://{moto_s3.bucket()}/stores").child("7")
    writer = ModelStore(tmp_path / "a", remote=bucket)
    reader = ModelStore(tmp_path / "b", remote=S3Objects(bucket.url), poll=0)
    assert reader.serving() is None and reader.versions() == [] and reader.serving_stamp() is None
    blobs, result = trained
    v1 = writer.publish(result, params=TrainParams())
    assert (reader.serving(), [m["version"] for m in reader.versions()]) == (v1, [v1])
    stamp = reader.serving_stamp()
    clf = load_classifier(reader, engine="onnx")  # version + shared ONNX graph copied to b/
    assert clf.version == v1 and (tmp_path / "b" / "versions" / v1 / "weights.safetensors").exists()
    assert np.allclose(clf.predict_proba(blobs[:3]), result.classifier.predict_proba(blobs[:3]), atol=1e-4)
    v2 = writer.publish(result, params=TrainParams(seed=1), parent=v1)
    assert reader.serving_stamp() != stamp and reader.serving() == v2
    reader.rollback(v1)
    assert writer.serving() == v1 and reader.manifest(v2)["parent"] == v1
    with pytest.raises(StoreError):
        reader.rollback("v0099")


def test_a_cut_off_upload_is_never_listed_nor_served(trained, moto_s3, tmp_path, monkeypatch):
    for key, value in moto_s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = S3Objects(f"s3://{moto_s3.bucket()}")
    store = ModelStore(tmp_path / "a", remote=bucket)
    v1 = store.publish(trained[1], params=TrainParams())
    uploads = []

    def cut(rel, path):  # the connection drops before the manifest is written
        if rel.endswith("manifest.json"):
            raise ConnectionError("network down")
        uploads.append(rel)
        return S3Objects.upload(bucket, rel, path)

    monkeypatch.setattr(bucket, "upload", cut)
    with pytest.raises(ConnectionError):
        store.publish(trained[1], params=TrainParams(seed=3), parent=v1)
    assert "versions/v0002/weights.safetensors" in uploads  # files went up, the manifest did not
    other = ModelStore(tmp_path / "b", remote=S3Objects(bucket.url))
    assert [m["version"] for m in other.versions()] == [v1] and other.serving() == v1
    monkeypatch.undo()
    for key, value in moto_s3.env.items():
        monkeypatch.setenv(key, value)
    assert store.publish(trained[1], params=TrainParams(seed=3), parent=v1) == "v0003"  # the claimed id is skipped
    assert other.serving() == "v0003"


def test_only_one_publisher_claims_an_id(moto_s3, monkeypatch, tmp_path):
    for key, value in moto_s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = S3Objects(f"s3://{moto_s3.bucket()}/p")
    first, second = StoreBucket(bucket, tmp_path / "a"), StoreBucket(S3Objects(bucket.url), tmp_path / "b")
    assert first.claim("v0001") is True
    assert second.claim("v0001") is False  # a conditional put: the server refuses the second
    assert first.taken_ids() == ["v0001"] and first.listed() == []  # claimed, not a version
