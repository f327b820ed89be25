"""A small real active-learning simulation, and the `tasveer simulate` verb's JSON."""

import argparse
import json

import numpy as np
import pytest

from scenes import CLASSES, read, sample
from training.backbones import create_backbone
from training.cache import EmbeddingCache
from training.head import fit_linear
from training.simulate import project_head, simulate, simulate_repeats


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "al-cache"


@pytest.fixture(scope="module")
def embedded(cache_dir):
    paths, labels = sample(20, seed=0)  # 120 photos, 6 classes
    X = create_backbone("efficientnet_lite0").embed(read(paths), cache=EmbeddingCache(cache_dir))
    y = np.array([CLASSES.index(lab) for lab in labels])
    test = np.arange(len(y)) % 5 == 0
    return X[~test], y[~test], X[test], y[test]


@pytest.mark.parametrize("strategy", ["random", "margin", "diverse"])
def test_simulation_counts_and_no_repeats(embedded, strategy, monkeypatch):
    pool_X, pool_y, test_X, test_y = embedded
    from training import head

    revealed, real_fit = [], head.fit_linear

    def spy(X, y, n_classes, C, seed):  # the rows each retrain sees
        revealed.append(X.copy())
        return real_fit(X, y, n_classes, C, seed)

    monkeypatch.setattr(head, "fit_linear", spy)
    hist = simulate(pool_X, pool_y, test_X, test_y, CLASSES, strategy=strategy, initial=12, batch=10, rounds=3, seed=0)
    assert [h["labels"] for h in hist] == [12, 22, 32, 42]
    assert all(0.0 <= h["accuracy"] <= 1.0 for h in hist)
    last = revealed[-1]
    assert len(last) == 42 and len(np.unique(last, axis=0)) == 42  # no photo labeled twice
    for before, after in zip(revealed, revealed[1:]):  # each round keeps every earlier label
        assert np.array_equal(after[: len(before)], before)
    assert hist[-1]["accuracy"] > 0.5  # 42 labels of 6 scene classes: far above chance


def test_repeats_and_validation(embedded):
    pool_X, pool_y, test_X, test_y = embedded
    res = simulate_repeats(
        pool_X, pool_y, test_X, test_y, CLASSES, strategy="margin", repeats=2, initial=12, batch=12, rounds=1
    )
    assert res["strategy"] == "margin" and [r["labels"] for r in res["rounds"]] == [12, 24]
    assert all(r["spread"] >= 0 for r in res["rounds"])
    with pytest.raises(ValueError, match="unknown strategy"):
        simulate(pool_X, pool_y, test_X, test_y, CLASSES, strategy="bald")
    with pytest.raises(ValueError, match="pool holds only"):
        simulate(pool_X, pool_y, test_X, test_y, CLASSES, strategy="margin", initial=60, batch=60)


def test_project_head_learns_from_the_unlabeled_pool_like_a_project(embedded):
    pool_X, pool_y, _, _ = embedded
    rows = np.concatenate([np.flatnonzero(pool_y == c)[:3] for c in range(len(CLASSES))])
    rest = np.setdiff1d(np.arange(len(pool_y)), rows)
    XL, yL, XU = pool_X[rows], pool_y[rows], pool_X[rest]
    sup = fit_linear(XL, yL, len(CLASSES), 0.005, 0)
    assert all(np.array_equal(a, b) for a, b in zip(project_head(0)(XL, yL, XU, len(CLASSES), 0.005, 0), sup))
    semi = project_head(40)(XL, yL, XU, len(CLASSES), 0.005, 0)
    assert not np.allclose(semi[0], sup[0])  # the unlabeled photos moved the head
    again = project_head(40)(XL, yL, XU, len(CLASSES), 0.005, 0)
    assert np.array_equal(semi[0], again[0])  # the same seeded choice of unlabeled photos
    other = project_head(40)(XL, yL, XU, len(CLASSES), 0.005, 1)
    assert not np.allclose(semi[0], other[0])  # another seed, another choice
    # a label with one example: k-fold cross-validation is impossible, so a project's head is
    # the supervised one (training/train.py), and so is the simulation's
    few = np.concatenate([rows[yL != 0], rows[yL == 0][:1]])
    assert np.array_equal(
        project_head(40)(pool_X[few], pool_y[few], XU, len(CLASSES), 0.005, 0)[0],
        fit_linear(pool_X[few], pool_y[few], len(CLASSES), 0.005, 0)[0],
    )
    with pytest.raises(ValueError, match="unlabeled must not be negative"):
        project_head(-1)


def _tree(tmp_path, per_class):
    """A class-per-folder tree of symlinks to the shared photos (nothing copied)."""
    paths, labels = sample(per_class, seed=0)
    for p, lab in zip(paths, labels):
        (tmp_path / lab).mkdir(parents=True, exist_ok=True)
        (tmp_path / lab / p.name).symlink_to(p)
    return tmp_path


def _args(**kw):
    from cli import simulate as verb

    parser = argparse.ArgumentParser(prog="tasveer")
    verb.register(parser.add_subparsers())
    argv = (
        ["simulate"]
        + [x for k, v in kw.items() for x in (f"--{k.replace('_', '-')}", str(v)) if v is not True]
        + [f"--{k}" for k, v in kw.items() if v is True]
    )
    return parser.parse_args(argv)


def test_cli_json_shape(tmp_path, cache_dir, capsys):
    tree = _tree(tmp_path / "pool", 20)
    # Lite0 (the embeddings the fixture cached) to keep the test short; the default is a project's model
    args = _args(
        pool=tree,
        strategy="diverse",
        initial=12,
        batch=12,
        rounds=2,
        repeats=2,
        cache=cache_dir,
        json=True,
        model="efficientnet_lite0",
        unlabeled=50,
    )
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy"] == "diverse" and set(out) == {"strategy", "rounds"}
    assert [r["labels"] for r in out["rounds"]] == [12, 24, 36]
    for r in out["rounds"]:
        assert set(r) == {"labels", "accuracy", "spread"} and 0 <= r["accuracy"] <= 1


def test_cli_defaults_are_a_projects_head():
    from training.params import TrainParams

    args, default = _args(pool="x"), TrainParams()
    assert (args.model, args.head_c, args.unlabeled) == (default.model, default.head_c, default.unlabeled)


def test_cli_errors(tmp_path, cache_dir, capsys):
    tree = _tree(tmp_path / "pool", 2)
    for kw, message in [
        ({"strategy": "bald"}, "unknown strategy 'bald'"),
        ({"mode": "finetune"}, "only 'head'"),
        ({"batch": 0}, "--batch must be at least 1"),
        ({"unlabeled": -1}, "--unlabeled must not be negative"),
        ({"head_c": 0}, "--head-c must be positive"),
        ({"model": "no_such_net"}, "no_such_net"),
    ]:
        args = _args(pool=tree, cache=cache_dir, **kw)
        assert args.func(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("tasveer simulate: ") and message in err


def test_duplicates_cost_labels_unless_skipped(embedded):
    """30 pool photos get a near copy (their vector, slightly moved): uncertainty sampling serves
    photo and copy alike; skipping duplicates serves one per group and labels the other for free."""
    pool_X, pool_y, test_X, test_y = embedded
    rng = np.random.default_rng(3)
    twins = rng.choice(len(pool_y), 30, replace=False)
    X = np.concatenate([pool_X, pool_X[twins] * (1 + 0.01 * rng.standard_normal(pool_X[twins].shape))])
    y = np.concatenate([pool_y, pool_y[twins]])
    groups = [[int(t), len(pool_y) + k] for k, t in enumerate(twins)]
    common = dict(strategy="margin", initial=12, batch=12, rounds=4, seed=0, groups=groups)
    counted = simulate(X, y, test_X, test_y, CLASSES, **common)
    skipped = simulate(X, y, test_X, test_y, CLASSES, skip_duplicates=True, **common)
    assert [h["labels"] for h in counted] == [h["labels"] for h in skipped] == [12, 24, 36, 48, 60]
    assert counted[-1]["duplicates_served"] > 0  # labels spent on a copy of a labeled photo
    assert all(h["duplicates_served"] == 0 for h in skipped)
    plain = simulate(X, y, test_X, test_y, CLASSES, strategy="margin", initial=12, batch=12, rounds=1)
    assert "duplicates_served" not in plain[0]


def test_cli_duplicates_finds_copies_in_the_pool(tmp_path, cache_dir, capsys):
    from PIL import Image, ImageOps

    tree = _tree(tmp_path / "pool", 12)
    for cls_dir in sorted(tree.iterdir()):
        for src in sorted(cls_dir.iterdir())[:4]:  # a mirror image of 4 photos per class
            ImageOps.mirror(Image.open(src).convert("RGB")).save(cls_dir / f"mirror-{src.name}", quality=92)
    args = _args(
        pool=tree, strategy="margin", initial=12, batch=12, rounds=3, cache=cache_dir,
        model="efficientnet_lite0", unlabeled=0, duplicates="skip",
    )  # fmt: skip
    assert args.func(args) == 0
    out = capsys.readouterr().out
    found = int(out.split(" near-duplicate groups in the pool")[0].split()[-1])
    assert found >= 10 and "never served: one label per group" in out, out  # 24 mirrors, some originals held out
    rows = [r for r in (line.split() for line in out.splitlines()) if len(r) == 4 and r[0].isdigit()]
    assert [int(r[0]) for r in rows] == [12, 24, 36, 48] and all(float(r[3]) == 0 for r in rows), out
    args = _args(
        pool=tree, strategy="margin", initial=12, batch=12, rounds=3, cache=cache_dir,
        model="efficientnet_lite0", unlabeled=0, duplicates="count", json=True,
    )  # fmt: skip
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["duplicate_groups"] == found and all("duplicates_served" in r for r in out["rounds"])
