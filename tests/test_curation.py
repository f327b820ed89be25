"""Duplicates, unusual photos and similar-photo search (training/duplicates.py, unusual.py,
neighbours.py) on real shared photos embedded by the default backbone, with mirror images, crops, a
byte copy and noise images made at run time (tests/derived.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from derived import near_duplicate, out_of_domain
from scenes import sample
from training import neighbours
from training.backbones import create_backbone
from training.cache import EmbeddingCache
from training.duplicates import DuplicateFinder
from training.images import content_hash
from training.layout import thumbnail
from training.neighbours import NeighbourIndex, exact_search, normalise, pairs_above
from training.params import TrainParams
from training.unusual import unusual_ranking

N_NEAR, N_NOISE = 10, 5


@pytest.fixture(scope="module")
def collection(tmp_path_factory, shared_data):
    """ids, bytes, labels (None for made images), {near duplicate: its original}, noise ids, vectors."""
    paths, labels = sample(34, seed=3)  # 204 photos
    ids = [f"{lab}/{p.name}" for p, lab in zip(paths, labels)]
    blobs = [p.read_bytes() for p in paths]
    labels = list(labels)
    rng = random.Random(0)
    originals = {}
    for i, row in enumerate(rng.sample(range(len(paths)), N_NEAR + 1)):
        if i == N_NEAR:  # one byte copy
            made, name = bytes(blobs[row]), f"copy-of-{ids[row]}"
        else:
            kind = ("flip", "crop")[i % 2]
            made, name = near_duplicate(blobs[row], kind, rng), f"{kind}-of-{ids[row]}"
        originals[name] = ids[row]
        ids.append(name), blobs.append(made), labels.append(None)
    noise = [f"noise-{i}" for i in range(N_NOISE)]
    for name in noise:
        ids.append(name), blobs.append(out_of_domain("noise", rng)), labels.append(None)
    cache = EmbeddingCache(tmp_path_factory.mktemp("curation-cache"))
    vectors = create_backbone(TrainParams().model).embed(blobs, cache=cache)
    return ids, blobs, labels, originals, noise, vectors


def finder_of(collection, parts: int = 1) -> tuple[DuplicateFinder, list]:
    ids, blobs, _, _, _, vectors = collection
    finder = DuplicateFinder(vectors.shape[1])
    hashes = [content_hash(b) for b in blobs]
    thumbs = [thumbnail(b) for b in blobs]
    order = list(range(len(ids)))
    random.Random(parts).shuffle(order)
    joined = []
    for chunk in np.array_split(np.array(order), parts):
        chunk = chunk.tolist()
        joined.append(
            finder.add([ids[i] for i in chunk], vectors[chunk], [hashes[i] for i in chunk], [thumbs[i] for i in chunk])
        )
    return finder, joined


def test_injected_duplicates_group_with_their_originals(collection):
    originals = collection[3]
    finder, _ = finder_of(collection)
    grouped = {g.ids: g for g in finder.groups()}
    for made, original in originals.items():
        group = finder.group_of(made)
        assert group is not None and original in group.ids, made
        assert group.exact == made.startswith("copy-of-")
    # the injected pairs are found, and hardly anything else: at most a couple of the data set's own
    assert sum(len(g) - 1 for g in grouped) <= len(originals) + 2


def test_incremental_add_gives_the_same_groups_as_all_at_once(collection):
    whole, _ = finder_of(collection)
    parts, joined = finder_of(collection, parts=4)
    assert {frozenset(g.ids) for g in whole.groups()} == {frozenset(g.ids) for g in parts.groups()}
    # each add reports the groups its photos are in now; the last report of a group is the whole group
    last = {}
    for report in joined:
        for group in report:
            for photo in group.ids:
                last[photo] = frozenset(group.ids)
    assert set(last.values()) == {frozenset(g.ids) for g in whole.groups()}


def test_a_photo_is_checked_against_its_most_similar_candidates_only():
    """A new photo close (cosine 0.81-0.89) to 10 earlier photos that are not close to each other,
    all with the same thumbnail: only its `max_candidates` most similar are compared, so it joins
    exactly those (the cap that keeps a sky among a thousand skies from costing a thousand checks)."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(64, 11)))[0].T  # 11 orthonormal directions
    close = np.linspace(0.81, 0.89, 10)
    earlier = close[:, None] * basis[0] + np.sqrt(1 - close**2)[:, None] * basis[1:]
    vectors = np.vstack([earlier, basis[0]]).astype(np.float32)
    thumb = rng.integers(0, 256, size=(3, 40, 40), dtype=np.uint8)
    finder = DuplicateFinder(64, max_candidates=3)
    finder.add(list(range(10)), vectors[:10], None, [thumb] * 10)
    assert finder.groups() == []  # 0.81 x 0.89 < 0.80: the earlier ones are no candidates of each other
    (group,) = finder.add(["new"], vectors[10:], None, [thumb])
    assert set(group.ids) == {"new", 7, 8, 9}, group
    assert neighbours.strongest_per_row(np.zeros((0, 3)), 3).shape == (0, 3)


def test_noise_images_rank_first_among_the_unusual(collection):
    ids, _, labels, _, noise, vectors = collection
    ranking = unusual_ranking(vectors, labels)
    assert set(noise) <= {ids[i] for i in ranking.order[: N_NOISE + 3]}
    assert ranking.known is not None and (ranking.score >= ranking.rest).all()


@pytest.mark.parametrize("exact_limit", [float("inf"), 0], ids=["brute-force", "index-when-installed"])
def test_neighbours_of_a_photo_include_its_flip(collection, exact_limit):
    ids, _, _, originals, _, vectors = collection
    index = NeighbourIndex(vectors.shape[1], exact_limit=exact_limit)
    index.add(ids[:100], vectors[:100])
    index.add(ids[100:], vectors[100:])  # incremental
    row = {name: i for i, name in enumerate(ids)}
    flips = [name for name in originals if name.startswith("flip-of-")]
    for flip in flips:
        found = [name for name, _ in index.search(vectors[row[originals[flip]]], 5)[0]]
        assert found[0] == originals[flip] and flip in found, (flip, found)


def test_chunked_search_matches_a_full_sort(monkeypatch):
    rng = np.random.default_rng(0)
    base, queries = normalise(rng.standard_normal((300, 16))), normalise(rng.standard_normal((40, 16)))
    monkeypatch.setattr(neighbours, "CHUNK_CELLS", 1000)  # several chunks of 3 queries
    pos, sims = exact_search(queries, base, 7)
    full = queries @ base.T
    assert (pos == np.argsort(-full, axis=1)[:, :7]).all()
    assert np.allclose(sims, np.sort(full, axis=1)[:, ::-1][:, :7])
    pairs = {(a, b) for a, b, _ in pairs_above(queries, base, 0.5)}
    assert pairs == set(zip(*np.nonzero(full >= 0.5)))


def test_byte_copies_group_without_vectors_and_ids_are_unique():
    finder = DuplicateFinder(4)
    nan = np.full((2, 4), np.nan, dtype=np.float32)
    assert finder.add(["a", "b"], nan, ["h1", "h2"]) == []
    joined = finder.add(["c"], np.full((1, 4), np.nan, dtype=np.float32), ["h1"])
    assert [(g.ids, g.exact) for g in joined] == [(("a", "c"), True)]
    with pytest.raises(ValueError, match="added twice"):
        finder.add(["a"], np.ones((1, 4), dtype=np.float32), ["h3"])


def test_nearest_lists_kept_in_parts_equal_the_whole_ranking(collection):
    """training/nearest.py: "far from the rest" from lists kept as photos arrive (new x all) equals
    the brute-force neighbour distance over the whole collection, and survives saving."""
    from training.nearest import NearestKept
    from training.unusual import SKIP_ABOVE, neighbour_distance

    vectors = np.asarray(collection[5], dtype=np.float32)
    whole = neighbour_distance(vectors)
    kept = NearestKept()
    for lo in range(0, len(vectors), 37):  # uneven parts
        hi = min(lo + 37, len(vectors))
        kept = NearestKept.restore(kept.saved()) if lo else kept
        kept.add(list(range(lo, hi)), vectors[lo:hi], vectors[:hi])
    assert np.allclose(kept.distance(10, SKIP_ABOVE), whole, atol=1e-5)
    present = np.ones(len(vectors), dtype=bool)
    present[[3, 50, 90, 140, 200]] = False  # deleted tasks: the others' distances use only those left
    left = neighbour_distance(vectors[present])
    assert np.allclose(kept.distance(10, SKIP_ABOVE, present)[present], left, atol=1e-5)


def test_the_projects_index_grows_with_new_tasks_and_is_rebuilt_after_a_deletion():
    """backend/collection/snapshot.py `Snapshots.index`: one index per project, grown by the tasks
    added since (ids only grow), rebuilt when a task is gone; its positions are the snapshot's rows."""
    from backend.collection.snapshot import Snapshot, Snapshots

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((30, 8)).astype(np.float32)

    def snap(ids):
        rows = np.asarray(ids, dtype=np.int64)
        n = len(rows)
        return Snapshot("1", "v1", rows, [""] * n, vectors[rows - 100], [None] * n, [None] * n, np.zeros(n), [], 0)

    snapshots = Snapshots(service=None)
    first = snapshots.index(snap(range(100, 120)))
    grown = snapshots.index(snap(range(100, 130)))
    assert grown is first and first.ids == list(range(100, 130))  # grown in place, nothing rebuilt
    pos, _ = grown.search_positions(vectors[25:26], 1)
    assert pos[0][0] == 25  # the photo itself, at its snapshot row
    after = snapshots.index(snap([i for i in range(100, 130) if i != 105]))
    assert after is not first and 105 not in after.ids and len(after) == 29


def test_the_finders_thumbnails_are_saved_append_only(tmp_path):
    """backend/collection/curationstore.py: a grown finder writes only its new thumbnails; a fresh
    one starts the files again; a lost file makes the finder rebuild (None), never a wrong one."""
    from backend.collection.curationstore import THUMBS, CurationStore
    from training.layout import THUMB

    rng = np.random.default_rng(0)
    thumbs = rng.integers(0, 256, (8, 3, THUMB, THUMB), dtype=np.uint8)

    def arrays(n):
        return {"ids": np.arange(n), "hashes": np.array(["h"] * n), "thumbs": thumbs[:n],
                "has_thumb": np.ones(n, bool), "parent": np.arange(n)}  # fmt: skip

    store = CurationStore(tmp_path)
    store.save_finder("b1", arrays(5), fresh=True)
    store.save_finder("b1", arrays(8))
    files = sorted(p.name for p in (tmp_path / "collection" / THUMBS).iterdir())
    assert files == ["000000000-000000005.npy", "000000005-000000008.npy"]
    saved = store.finder("b1")
    assert np.array_equal(saved["thumbs"], thumbs) and list(saved["ids"]) == list(range(8))
    assert store.finder("another backbone") is None
    store.save_finder("b1", arrays(3), fresh=True)
    assert sorted(p.name for p in (tmp_path / "collection" / THUMBS).iterdir()) == ["000000000-000000003.npy"]
    assert np.array_equal(store.finder("b1")["thumbs"], thumbs[:3])
    (tmp_path / "collection" / THUMBS / "000000000-000000003.npy").unlink()
    assert store.finder("b1") is None
