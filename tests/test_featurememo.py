"""backend/writeback/features.py FeatureMemo: a refresh reads from the embedding cache only the
photos added since the last one, and gets exactly what the cache holds.

A real EmbeddingCache (SQLite on disk) with vectors written by the test: the memo's job is which
rows come from where, the same for any vectors; the refresh that uses it runs against a real
Label Studio in tests/test_active_labelstudio.py and tests/test_scale_labelstudio.py."""

from __future__ import annotations

import numpy as np
import pytest

from backend.writeback.features import FeatureMemo
from training.cache import EmbeddingCache

DIM = 8


@pytest.fixture
def cache(tmp_path):
    return EmbeddingCache(tmp_path)


def put(cache, digests, seed):
    rng = np.random.default_rng(seed)
    vectors = {d: rng.normal(size=DIM).astype(np.float32) for d in digests}
    cache.put_many(vectors, "net", 224)
    return vectors


def reader(cache, reads):
    def read(missing):
        reads.append(list(missing))
        return cache.get_many(missing, "net", 224)

    return read


def test_only_new_photos_are_read_and_every_row_is_the_cached_one(cache):
    memo, reads = FeatureMemo(), []
    first = put(cache, [f"d{i}" for i in range(3000)], 0)
    digests = list(first)
    found = memo.rows(("1", "net@224"), digests, reader(cache, reads))
    assert reads == [digests]
    more = put(cache, ["n1", "n2"], 1)
    found = memo.rows(("1", "net@224"), digests + ["n1", "n2", "gone"], reader(cache, reads))
    assert reads[1] == ["n1", "n2", "gone"]  # the 3,000 came from memory
    assert "gone" not in found
    for d, v in (first | more).items():
        assert np.array_equal(found[d], v)
    stacked = memo.matrix(("1", "net@224"), found, ["n2", "d7", "d0"])
    assert np.array_equal(stacked, np.stack([more["n2"], first["d7"], first["d0"]]))
    with pytest.raises(ValueError):
        found["d0"][0] = 1.0  # the memo's rows cannot be changed through what it hands out


def test_another_project_or_backbone_starts_over_and_a_big_one_is_not_kept(cache):
    vectors = put(cache, [f"d{i}" for i in range(10)], 0)
    reads: list = []
    memo = FeatureMemo()
    memo.rows(("1", "net@224"), list(vectors), reader(cache, reads))
    memo.rows(("2", "net@224"), list(vectors), reader(cache, reads))
    memo.rows(("2", "net@224"), list(vectors), reader(cache, reads))
    assert len(reads) == 2  # project 1, then project 2 once
    small = FeatureMemo(limit=5 * DIM * 4)  # room for 5 vectors: 10 are read every time
    for _ in range(2):
        got = small.rows(("1", "net@224"), list(vectors), reader(cache, reads))
        assert all(np.array_equal(got[d], v) for d, v in vectors.items())
    assert len(reads) == 4
