"""The production pointer of the model store (PRODUCTION beside SERVING): deploys, rollbacks that walk
back, the history with who and the metrics then, a crash between the pointer and the history, and the
same in a bucket (moto) where two machines' stores agree. (The backend side: test_classify.py.)"""

from __future__ import annotations

import json

import pytest

from s3fixture import moto_s3  # noqa: F401 (fixture)
from training.objectstore import S3Objects
from training.store import ModelStore, StoreError

VERSIONS = ("v0001", "v0002", "v0003")


def manifest(i: int) -> str:
    """The i-th version's manifest: a manifest is all the production pointer reads of a version."""
    metrics = {"accuracy": 0.5 + i / 10, "n": 10}
    return json.dumps(
        {
            "version": VERSIONS[i],
            "created_at": f"2025-01-0{i + 1}",
            "metrics": metrics,
            "metrics_source": "cross-validation",
        }
    )


def check_production_moves(store: ModelStore, reader: ModelStore) -> None:
    assert store.production() is None and store.production_history() == [] and store.production_stamp() is None
    first = store.deploy("v0001", by="ana", via="cli")
    assert first["metrics"]["accuracy"] == 0.5 and first["previous"] is None
    assert reader.production() == "v0001" and store.serving() is None  # production is not SERVING
    stamp = reader.production_stamp()
    store.deploy("v0002", by="ben", via="model page")
    assert store.deploy("v0002", by="ben", via="cli")["via"] == "model page"  # again: nothing moves
    store.deploy("v0003", by="ana", via="cli")
    assert reader.production_stamp() != stamp and reader.production() == "v0003"
    back = reader.rollback_production(by="cy", via="cli")
    assert (back["version"], back["previous"], back["rollback"]) == ("v0002", "v0003", True)
    assert store.rollback_production(by="cy", via="cli")["version"] == "v0001"  # rollbacks walk back
    with pytest.raises(StoreError, match="no earlier production version"):
        store.rollback_production(by="cy", via="cli")
    history = reader.production_history()
    assert [(e["version"], e["by"], e["rollback"]) for e in history] == [
        ("v0001", "ana", False),
        ("v0002", "ben", False),
        ("v0003", "ana", False),
        ("v0002", "cy", True),
        ("v0001", "cy", True),
    ]
    with pytest.raises(StoreError):
        store.deploy("v0099", by="ana", via="cli")


def test_production_pointer_in_a_store_directory(tmp_path):
    store = ModelStore(tmp_path / "store")
    for i, vid in enumerate(VERSIONS):
        (store.root / "versions" / vid).mkdir(parents=True)
        (store.root / "versions" / vid / "manifest.json").write_text(manifest(i))
        (store.root / "versions" / vid / "weights.safetensors").write_bytes(b"")
    check_production_moves(store, ModelStore(tmp_path / "store"))
    # a crash after PRODUCTION moved and before the history was written loses no entry
    history = store.production_history()
    entry = dict(history[0], id="crashed", version="v0003", at="later")
    (store.root / "PRODUCTION").write_text(json.dumps(entry))
    assert store.production() == "v0003" and store.production_history() == [*history, entry]
    assert store.deploy("v0002", by="ana", via="cli")["previous"] == "v0003"
    assert [e["id"] for e in store.production_history()][-2] == "crashed"  # written down at the next deploy


def test_production_pointer_in_a_bucket_is_shared(moto_s3, tmp_path, monkeypatch):  # noqa: F811
    for key, value in moto_s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = S3Objects(f"s3://{moto_s3.bucket()}/stores").child("3")
    for i, vid in enumerate(VERSIONS):
        bucket.put(f"versions/{vid}/manifest.json", manifest(i).encode())
    check_production_moves(
        ModelStore(tmp_path / "a", remote=bucket), ModelStore(tmp_path / "b", remote=S3Objects(bucket.url), poll=0)
    )
    assert bucket.get("PRODUCTION") and json.loads(bucket.get("PRODUCTION_HISTORY.json"))[-1]["version"] == "v0001"
