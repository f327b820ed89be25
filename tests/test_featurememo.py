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
    x, found = memo.stacked(("1", "net@224"), digests, reader(cache, reads))
    assert reads == [digests] and found.all() and np.array_equal(x, np.stack(list(first.values())))
    more = put(cache, ["n1", "n2"], 1)
    asked = ["n2", "d7", None, "gone", "d0", "n1", "d7"]  # None: a task whose image was never fetched
    x, found = memo.stacked(("1", "net@224"), digests + asked, reader(cache, reads))
    assert reads[1] == ["n2", "gone", "n1"]  # the 3,000 came from memory
    assert found.tolist() == [True] * 3000 + [True, True, False, False, True, True, True]
    expected = [*first.values(), more["n2"], first["d7"], first["d0"], more["n1"], first["d7"]]
    assert np.array_equal(x, np.stack(expected))
    x[0, 0] = 1e6  # what it hands out is a copy: the memo's rows stay as cached
    again, _ = memo.stacked(("1", "net@224"), ["d0"], reader(cache, reads))
    assert np.array_equal(again[0], first["d0"]) and len(reads) == 2


def test_another_project_or_backbone_starts_over_and_a_big_one_is_not_kept(cache):
    vectors = put(cache, [f"d{i}" for i in range(10)], 0)
    reads: list = []
    memo = FeatureMemo()
    memo.stacked(("1", "net@224"), list(vectors), reader(cache, reads))
    memo.stacked(("2", "net@224"), list(vectors), reader(cache, reads))
    memo.stacked(("2", "net@224"), list(vectors), reader(cache, reads))
    assert len(reads) == 2  # project 1, then project 2 once
    small = FeatureMemo(limit=5 * DIM * 4)  # room for 5 vectors: 10 are read every time
    for _ in range(2):
        got, found = small.stacked(("1", "net@224"), list(vectors), reader(cache, reads))
        assert found.all() and np.array_equal(got, np.stack(list(vectors.values())))
    assert len(reads) == 4


def test_a_head_applied_in_place_gives_what_it_gives_on_the_gathered_rows(cache, monkeypatch):
    """`apply` runs over the held rows block by block (a block of 7 here: the 3,000 rows end in a
    part block) and picks the asked digests' rows of the result, in their order."""
    monkeypatch.setattr("backend.writeback.features.BLOCK_ROWS", 7)
    vectors = put(cache, [f"d{i}" for i in range(3000)], 2)
    weight = np.random.default_rng(3).normal(size=(4, DIM))
    head = lambda x: np.exp(x @ weight.T) / np.exp(x @ weight.T).sum(axis=1, keepdims=True)  # noqa: E731
    memo, reads = FeatureMemo(), []
    asked = ["d2999", "d5", None, "gone", "d0", "d5", "d1234"]
    rows, found = memo.stacked(("1", "net@224"), asked, reader(cache, reads))
    proba, found_too = memo.stacked(("1", "net@224"), asked, reader(cache, reads), apply=head)
    assert found.tolist() == found_too.tolist() == [True, True, False, False, True, True, True]
    assert proba.shape == (5, 4) and np.allclose(proba, head(rows))
    assert np.allclose(proba[0], head(vectors["d2999"][None])[0])
    memo.stacked(("1", "net@224"), list(vectors), reader(cache, reads))  # every row held: 429 blocks
    proba, _ = memo.stacked(("1", "net@224"), ["d2999", "d6", "d7"], reader(cache, reads), apply=head)
    assert np.allclose(proba, head(np.stack([vectors["d2999"], vectors["d6"], vectors["d7"]])))
