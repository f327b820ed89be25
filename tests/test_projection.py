"""The embedding map's projections (training/projection.py) and their background computation
(backend/collection/layouts.py), on clustered vectors: t-SNE keeps a point's neighbours where the
first two principal components lose them, both are deterministic, and the layout a map asks for is
computed off the request, newest key first, with a failure leaving the map on the components."""

from __future__ import annotations

import time

import numpy as np
import pytest

from backend.collection.layouts import PREFIX, Layouts
from training.projection import TSNE_MIN_POINTS, neighbour_layout, neighbour_overlap, project_2d

CLUSTERS, PER, DIM = 6, 60, 64


def clustered(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """CLUSTERS tight groups of PER unit vectors in DIM dimensions, with their group numbers."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM))
    x = np.repeat(centres, PER, axis=0) + 0.35 * rng.standard_normal((CLUSTERS * PER, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(CLUSTERS), PER)


def purity(points: np.ndarray, groups: np.ndarray, k: int = 10) -> float:
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    near = np.argsort(d, axis=1)[:, 1 : k + 1]
    return float(np.mean((groups[near] == groups[:, None]).mean(axis=1)))


def test_tsne_keeps_neighbours_the_components_lose():
    x, groups = clustered()
    pca, tsne = project_2d(x), neighbour_layout(x)
    assert tsne.shape == (len(x), 2) and tsne.dtype == np.float32
    kept_pca, kept_tsne = neighbour_overlap(x, pca), neighbour_overlap(x, tsne)
    assert kept_tsne > kept_pca + 0.1, (kept_pca, kept_tsne)
    assert purity(tsne, groups) > 0.95  # six groups in 64 dimensions: two components cannot part them all
    assert purity(tsne, groups) > purity(pca, groups)


def test_layouts_are_deterministic_and_small_sets_use_the_components():
    x, _ = clustered(1)
    assert np.array_equal(neighbour_layout(x), neighbour_layout(x.copy()))
    assert np.array_equal(project_2d(x), project_2d(x.copy()))
    few = x[: TSNE_MIN_POINTS - 1]
    assert np.array_equal(neighbour_layout(few), project_2d(few))


def wait_for(check, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got is not None and got is not False:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_layout_is_computed_in_the_background_and_kept(tmp_path):
    x, _ = clustered(2)
    layouts = Layouts()
    try:
        points, pending = layouts.ready(tmp_path, "k1", x)
        assert points is None and pending  # the request does not wait for it
        points = wait_for(lambda: layouts.ready(tmp_path, "k1", x)[0])  # None until written
        assert points.shape == (len(x), 2) and points.dtype == np.int32
        assert layouts.ready(tmp_path, "k1", x)[1] is False
        assert [p.name for p in tmp_path.glob(f"{PREFIX}*.npy")] == [f"{PREFIX}k1.npy"]
        # photos added: a new key; the older file goes once the new one is written
        more = np.concatenate([x, clustered(3)[0][:30]])
        assert layouts.ready(tmp_path, "k2", more) == (None, True)
        wait_for(lambda: layouts.ready(tmp_path, "k2", more)[0] is not None)
        assert [p.name for p in tmp_path.glob(f"{PREFIX}*.npy")] == [f"{PREFIX}k2.npy"]
        # too few photos for t-SNE: nothing is computed, the map keeps the components
        assert layouts.ready(tmp_path, "k3", x[:5]) == (None, False)
    finally:
        layouts.close()
    assert layouts.ready(tmp_path, "k4", x) == (None, False)  # closed: nothing more is started
    assert layouts.ready(tmp_path, "k2", more)[0] is not None  # what was computed is still read


def test_only_the_newest_key_asked_for_is_computed(tmp_path, monkeypatch):
    """Keys asked for while one is computed: only the last of them is computed after it."""
    import backend.collection.layouts as module

    computed: list[int] = []
    real = module.neighbour_layout

    def counting(vectors):
        computed.append(len(vectors))
        time.sleep(0.3)  # long enough for the requests below to queue behind it
        return real(vectors)

    monkeypatch.setattr(module, "neighbour_layout", counting)
    x, _ = clustered(4)
    layouts = Layouts()
    try:
        layouts.ready(tmp_path, "a", x[:100])
        wait_for(lambda: bool(computed))
        for n, key in ((120, "b"), (140, "c"), (160, "d")):
            assert layouts.ready(tmp_path, key, x[:n]) == (None, True)
        wait_for(lambda: layouts.ready(tmp_path, "d", x[:160])[0] is not None)
        assert computed == [100, 160]
    finally:
        layouts.close()


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_a_failed_layout_leaves_the_map_on_the_components(tmp_path, bad, caplog):
    x, _ = clustered(5)
    x[3, 0] = float(bad)
    layouts = Layouts()
    try:
        assert layouts.ready(tmp_path, "bad", x) == (None, True)
        wait_for(lambda: layouts.ready(tmp_path, "bad", x) == (None, False))
        assert "t-SNE layout bad" in caplog.text
        assert not list(tmp_path.glob(f"{PREFIX}*.npy"))
        good, _ = clustered(6)
        assert layouts.ready(tmp_path, "good", good) == (None, True)  # the thread serves on
        wait_for(lambda: layouts.ready(tmp_path, "good", good)[0] is not None)
    finally:
        layouts.close()
