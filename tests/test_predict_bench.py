"""Each image is hashed once on the serving path: the blob cache hands on bytes that carry their
sha256 (training.cache.Digested) and the embedding loop keys the cache with it; integrity holds."""

from __future__ import annotations

import hashlib
import pickle
import sqlite3

import numpy as np

from backend.blobcache import BlobCache
from training import embedder
from training.cache import Digested, EmbeddingCache, known_hash


def test_blob_cache_hands_on_the_digest_and_trusts_a_file_of_the_recorded_size(tmp_path, monkeypatch):
    cache = BlobCache(tmp_path)
    data = b"\xff\xd8 not really a jpeg" * 10
    digest = cache.put("http://ls/data/upload/1/a.jpg", data)
    assert digest == hashlib.sha256(data).hexdigest()
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    got = cache.get("http://ls/data/upload/1/a.jpg")
    assert got == data and isinstance(got, Digested) and known_hash(got) == digest
    assert calls == []  # read back without hashing again
    assert cache.put("http://ls/other-url", got) == digest and calls == []  # a Digested is not re-hashed


def test_blob_cache_misses_a_truncated_file_and_verifies_rows_of_an_older_cache(tmp_path):
    cache = BlobCache(tmp_path)
    data = b"0123456789" * 50
    digest = cache.put("u", data)
    path = tmp_path / "blobs" / digest[:2] / digest
    path.write_bytes(data[:100])
    assert cache.get("u") is None  # another size: fetched again
    cache.put("u", data)
    assert cache.get("u") == data
    # an older cache: no size column; its rows are verified by hashing
    old = tmp_path / "old"
    (old / "blobs" / digest[:2]).mkdir(parents=True)
    (old / "blobs" / digest[:2] / digest).write_bytes(data)
    conn = sqlite3.connect(old / "urls.sqlite")
    conn.execute("CREATE TABLE urls (url TEXT PRIMARY KEY, hash TEXT NOT NULL)")
    conn.execute("INSERT INTO urls VALUES ('u', ?), ('bad', ?)", (digest, "0" * 64))
    conn.commit()
    conn.close()
    migrated = BlobCache(old)
    assert migrated.get("u") == data and known_hash(migrated.get("u")) == digest
    assert migrated.get("bad") is None


def test_digested_keeps_its_digest_only_for_its_own_content():
    d = Digested(b"abcdef", "x" * 64)
    assert known_hash(d) == "x" * 64
    assert known_hash(d[1:]) is None and known_hash(d + b"g") is None and known_hash(b"abcdef") is None
    back = pickle.loads(pickle.dumps(d))
    assert back == d and known_hash(back) == "x" * 64


def test_the_embedding_loop_takes_the_key_from_a_digested_blob(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(embedder, "content_hash", lambda b: calls.append(1) or hashlib.sha256(b).hexdigest())
    data = b"some image bytes"
    digest = hashlib.sha256(data).hexdigest()
    cache = EmbeddingCache(tmp_path)
    cache.put_many({digest: np.arange(4, dtype=np.float32)}, "bb", 224)

    class Prep:
        image_size = 224

    out = embedder.embed_images(lambda x: x, Prep(), "bb", 4, [Digested(data, digest)], cache=cache)
    assert calls == [] and out[0].tolist() == [0, 1, 2, 3]
    out = embedder.embed_images(lambda x: x, Prep(), "bb", 4, [data], cache=cache)
    assert calls == [1] and out[0].tolist() == [0, 1, 2, 3]
