"""The semi-supervised head (training/semi.py) on real photos, and the plumbing that hands a
project's unlabeled photos to it."""

import numpy as np
import pytest

import training.train as train_mod
from scenes import CLASSES, read, sample
from training.backbones import create_backbone
from training.cache import EmbeddingCache
from training.head import fit_linear
from training.params import ParamError, TrainParams
from training.semi import Graph, fit_semi
from training.train import fit


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Lite0 embeddings of 5 labeled, 40 unlabeled and 20 test photos per class (disjoint)."""
    backbone = create_backbone("efficientnet_lite0")
    cache = EmbeddingCache(tmp_path_factory.mktemp("emb"))
    parts = {}
    for name, (n, skip) in {"lab": (5, 0), "unl": (40, 5), "test": (20, 45)}.items():
        paths, labels = sample(n, seed=4, skip=skip)
        blobs = read(paths)
        parts[name] = (blobs, labels, backbone.embed(blobs, cache=cache))
    return backbone, cache, parts


def accuracy(W, b, X, labels):
    return float(np.mean((X @ W.T + b).argmax(1) == np.array([CLASSES.index(v) for v in labels])))


def test_semi_supervised_head_matches_or_beats_the_supervised_one(photos):
    """Mean over 3 draws of 4 labels per class from the 45 per class; the rest is unlabeled."""
    _, _, parts = photos
    _, lab, XL = parts["lab"]
    _, unl, XU = parts["unl"]
    _, test_labels, XT = parts["test"]
    X = np.vstack([XL, XU])
    y = np.array([CLASSES.index(v) for v in lab + unl])
    sup, semi = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        rows = np.concatenate([rng.choice(np.flatnonzero(y == c), 4, replace=False) for c in range(6)])
        sup.append(accuracy(*fit_linear(X[rows], y[rows], 6, 0.005), XT, test_labels))
        W, b = fit_semi(X, rows, y[rows], 6, 0.005)
        semi.append(accuracy(W, b, XT, test_labels))
    assert W.shape == (6, X.shape[1]) and np.mean(semi) >= np.mean(sup) and min(semi) >= 0.6, (sup, semi)


def test_fit_hands_unlabeled_photos_to_the_semi_supervised_head(photos, monkeypatch):
    backbone, cache, parts = photos
    blobs, labels, _ = parts["lab"]
    unl_blobs, _, XU = parts["unl"]
    calls = []

    def spy(X_all, rows, y, *args, **kwargs):
        calls.append((len(X_all), len(rows)))
        return fit_semi(X_all, rows, y, *args, **kwargs)

    monkeypatch.setattr(train_mod, "fit_semi", spy)
    params = TrainParams(model="efficientnet_lite0")
    fit(blobs, labels, CLASSES, params, cache=cache, backbone=backbone, unlabeled_blobs=unl_blobs)
    # the final head and each cross-validation fold see the 30 labeled + 180 unlabeled photos
    assert calls and all(n == 30 + 240 for n, _ in calls) and calls[0][1] == 30
    calls.clear()
    result = fit(blobs, labels, CLASSES, params, cache=cache, backbone=backbone, unlabeled_features=XU[:50])
    assert calls and all(n == 30 + 50 for n, _ in calls)
    assert 0 < result.metrics["temperature"] <= 1 and result.metrics_source == "cross-validation"
    calls.clear()
    fit(
        blobs,
        labels,
        CLASSES,
        TrainParams(model="efficientnet_lite0", unlabeled=20),
        cache=cache,
        backbone=backbone,
        unlabeled_features=XU,
    )
    assert calls and all(n == 30 + 20 for n, _ in calls)  # bounded by params.unlabeled
    calls.clear()
    fit(
        blobs,
        labels,
        CLASSES,
        TrainParams(model="efficientnet_lite0", unlabeled=0),
        cache=cache,
        backbone=backbone,
        unlabeled_features=XU,
    )
    assert calls == []  # off: the supervised head
    result = fit(blobs[:11], labels[:11], CLASSES, params, cache=cache, backbone=backbone, unlabeled_features=XU)
    assert calls == [] and result.metrics_source == "leave-one-out"  # 1 label of a class: supervised


def test_unlabeled_param_is_validated():
    assert TrainParams().unlabeled == 2000
    assert TrainParams.from_dict({"unlabeled": 0}).unlabeled == 0
    for bad in (-1, 1.5, "many", 10**6):
        with pytest.raises(ParamError, match="unlabeled"):
            TrainParams.from_dict({"unlabeled": bad})


def test_graph_spreads_labels_to_neighbours():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 16)) * 5
    X = np.vstack([centres[0] + rng.normal(size=(20, 16)), centres[1] + rng.normal(size=(20, 16))])
    F = Graph(X, k=5).spread(np.array([0, 20]), np.array([0, 1]), 2)
    assert np.allclose(F.sum(1), 1) and (F[:20, 0] > 0.5).all() and (F[20:, 1] > 0.5).all()


class _Api:
    """Label Studio as the task index sees it: as many tasks as it holds (so nothing is listed).
    A stand-in: what is tested is the local read; tests/test_scale_labelstudio.py runs it for real."""

    def __init__(self, index):
        self.index = index

    def task_count(self, project_id):
        return self.index.count()

    def tasks_after(self, project_id, task_id):
        raise AssertionError("nothing to list: the index holds every task")

    iter_tasks = tasks_after


class _Embeddings:
    def get_many(self, hashes, backbone, size):
        assert (backbone, size) in (("net", 224), ("net2", 160))
        scale, missing = (1.0, "h3") if backbone == "net" else (10.0, "h4")
        return {h: np.full(4, scale * float(h[1]), dtype=np.float32) for h in hashes if h != missing}


class _Backbone:
    id = "net"

    class preprocessing:
        image_size = 224


class _Second:
    id = "net2"

    class preprocessing:
        image_size = 160


class _Pair:  # training.pair.PairBackbone's `parts`, all the trainer reads of it
    parts = (_Backbone(), _Second())


def test_trainer_reads_only_cached_embeddings_of_unlabeled_tasks(tmp_path):
    from backend.jobs.unlabeled import unlabeled_features
    from backend.writeback.taskindex import IndexedTask, TaskIndex

    index = TaskIndex(tmp_path)
    # task 1's image was never fetched (no digest), task 3's never embedded, task 6 is labeled
    index.add(IndexedTask(i, f"/data/{i}.jpg", None if i == 1 else f"h{i}") for i in range(7))

    def read(backbone, limit):
        return unlabeled_features(index, _Api(index), 7, "image", _Embeddings(), backbone, [6], limit)

    got = read(_Backbone(), 10)
    assert got.shape == (4, 4) and got[:, 0].tolist() == [0, 2, 4, 5]
    some = read(_Backbone(), 2)
    assert some.shape[0] <= 2 and set(some[:, 0]) <= {0, 2, 4, 5}
    # a head over two backbones (`second_model`): both networks' embeddings side by side, only of
    # tasks both have embedded (task 4: only the first network)
    both = read(_Pair(), 10)
    assert both.shape == (3, 8) and both[:, 0].tolist() == [0, 2, 5] and (both[:, 4] == 10 * both[:, 0]).all()


def test_simulation_hands_the_rest_of_the_pool_to_a_semi_supervised_head():
    from training.simulate import simulate

    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat(np.arange(3), 40))
    X = rng.normal(size=(120, 8)) + np.eye(3, 8)[y] * 4
    seen = []

    def head(XL, yL, XU, n_classes, C, seed):
        seen.append((len(XL), len(XU)))
        return fit_semi(np.vstack([XL, XU]), np.arange(len(XL)), yL, n_classes, C, seed)

    hist = simulate(
        X[:90],
        y[:90],
        X[90:],
        y[90:],
        ["a", "b", "c"],
        strategy="margin",
        initial=9,
        batch=6,
        rounds=2,
        head=head,
        head_c=1.0,
    )
    assert seen == [(9, 81), (15, 75), (21, 69)] and hist[-1]["accuracy"] > 0.8
