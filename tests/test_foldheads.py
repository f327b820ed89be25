"""training/foldheads.py: cross-validation whose fold heads last across trainings.

Plain ML on synthetic features (no Label Studio, no images): what matters here is which head gives
which logit, and that is the same on any features. The backend's use of it (a correction's
training refits one fold) is checked with a real Label Studio in tests/test_active_labelstudio.py.
"""

from __future__ import annotations

import json

import numpy as np

from training.foldheads import FoldHeads, assigned
from training.head import cross_val_logits, fit_linear

C = 0.05


def blobs(n_per_class: int, classes: int = 4, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (classes, dim))
    y = np.repeat(np.arange(classes), n_per_class)
    X = (centres[y] + rng.normal(0, 1.0, (len(y), dim))).astype(np.float32)
    order = rng.permutation(len(y))
    return X[order], y[order]


def recorder(X, y, keys, fits):
    """fit(train_rows) that records the keys each head was trained on."""

    def fit(rows):
        fits.append({keys[i] for i in rows})
        return fit_linear(X[rows], y[rows], int(y.max()) + 1, C)

    return fit


def stored(path):
    with np.load(path) as z:
        return json.loads(bytes(z["meta"]).decode()), z["W"], z["b"]


def check_honest(path, X, keys, out):
    """Every row's logit is its fold's stored head applied to it, and that head never saw the row."""
    meta, W, b = stored(path)
    for i, key in enumerate(keys):
        fold = meta["assign"][key]
        assert np.allclose(out[i], X[i] @ W[fold].T + b[fold], atol=1e-4)
        assert key not in set(meta["heads"][fold]["trained"])


def test_a_correction_refits_one_fold_and_every_logit_stays_out_of_fold(tmp_path):
    X, y = blobs(12)
    keys = [f"task {i}" for i in range(len(y))]
    heads, sig = FoldHeads(tmp_path / "folds.npz"), "head|a,b,c,d|16"
    first = next(n for n in range(len(y)) if np.bincount(y[:n], minlength=4).min() >= 5)
    fits: list[set] = []
    out, refitted = heads.logits(
        X[:first], y[:first], keys[:first], 4, sig, recorder(X[:first], y[:first], keys[:first], fits)
    )
    assert refitted == 5 and len(fits) == 5
    check_honest(heads.path, X[:first], keys[:first], out)
    for n in range(first + 1, len(y) + 1):  # one new label per training, as corrections come
        fits.clear()
        out, refitted = heads.logits(X[:n], y[:n], keys[:n], 4, sig, recorder(X[:n], y[:n], keys[:n], fits))
        assert refitted == 1 and len(fits) == 1
        check_honest(heads.path, X[:n], keys[:n], out)
    meta, _, _ = stored(heads.path)
    ages = sorted(meta["trainings"] - h["fitted"] for h in meta["heads"])
    assert ages == [0, 1, 2, 3, 4]  # refitted in turn: none lags more than 5 trainings
    counts = np.zeros((5, 4), int)
    for key, fold in meta["assign"].items():
        counts[fold, y[keys.index(key)]] += 1
    assert counts.min() >= 2 and counts.max() - counts.min() <= 1  # every fold holds every label


def test_as_accurate_as_refitting_every_fold(tmp_path):
    X, y = blobs(40, seed=3)
    keys = [f"task {i}" for i in range(len(y))]
    heads, sig = FoldHeads(tmp_path / "folds.npz"), "sig"
    for n in range(100, len(y) + 1, 6):
        out, _ = heads.logits(
            X[:n], y[:n], keys[:n], 4, sig, lambda rows, n=n: fit_linear(X[:n][rows], y[:n][rows], 4, C)
        )
    fresh = cross_val_logits(X, y, 4, C)
    kept_acc, fresh_acc = np.mean(out.argmax(1) == y), np.mean(fresh.argmax(1) == y)
    assert abs(kept_acc - fresh_acc) <= 0.03, (kept_acc, fresh_acc)


def test_a_new_label_another_signature_or_a_broken_store_refit_every_fold(tmp_path):
    X, y = blobs(10, classes=5)
    keys = [f"task {i}" for i in range(len(y))]
    three = np.isin(y, [0, 1, 2])
    X3, y3, k3 = X[three], y[three], [k for k, t in zip(keys, three) if t]
    heads = FoldHeads(tmp_path / "folds.npz")
    fit3 = lambda rows: fit_linear(X3[rows], y3[rows], 5, C)  # noqa: E731
    assert heads.logits(X3, y3, k3, 5, "s", fit3)[1] == 5
    assert heads.logits(X3, y3, k3, 5, "s", fit3)[1] == 1
    four = np.isin(y, [0, 1, 2, 3])  # ten photos of a fourth label: every fold's training rows have it
    X4, y4, k4 = X[four], y[four], [k for k, t in zip(keys, four) if t]
    fit4 = lambda rows: fit_linear(X4[rows], y4[rows], 5, C)  # noqa: E731
    out, refitted = heads.logits(X4, y4, k4, 5, "s", fit4)
    assert refitted == 5 and out[y4 == 3].argmax(1).tolist().count(3) >= 5
    assert heads.logits(X4, y4, k4, 5, "another recipe", fit4)[1] == 5
    heads.path.write_bytes(b"not an npz")
    assert heads.logits(X4, y4, k4, 5, "another recipe", fit4)[1] == 5


def test_a_bulk_of_new_or_changed_labels_refits_every_fold(tmp_path):
    """A head lacking more than `folds` of its training labels is refitted: after a bulk of labels
    the estimate is of the new labels, not of heads that never saw them."""
    X, y = blobs(25)
    keys = [f"task {i}" for i in range(len(y))]
    heads = FoldHeads(tmp_path / "folds.npz")

    def fit_first(n):
        return lambda rows: fit_linear(X[:n][rows], y[:n][rows], 4, C)

    assert heads.logits(X[:60], y[:60], keys[:60], 4, "s", fit_first(60))[1] == 5
    assert heads.logits(X[:61], y[:61], keys[:61], 4, "s", fit_first(61))[1] == 1
    assert heads.logits(X[:91], y[:91], keys[:91], 4, "s", fit_first(91))[1] == 5  # 30 labels at once
    relabeled = y[:91].copy()
    relabeled[:12] = (relabeled[:12] + 1) % 4  # a person corrected 12 labels in one go
    out, refitted = heads.logits(
        X[:91], relabeled, keys[:91], 4, "s", lambda rows: fit_linear(X[:91][rows], relabeled[rows], 4, C)
    )
    assert refitted == 5


def test_a_head_that_saw_a_key_of_its_fold_is_not_used(tmp_path):
    """A key that left and came back in another fold (here: the store says so) must not be
    predicted by a head trained on it."""
    X, y = blobs(10)
    keys = [f"task {i}" for i in range(len(y))]
    heads = FoldHeads(tmp_path / "folds.npz")
    fit = lambda rows: fit_linear(X[rows], y[rows], 4, C)  # noqa: E731
    heads.logits(X, y, keys, 4, "s", fit)
    meta, W, b = stored(heads.path)
    moved = keys[0]
    old = meta["assign"][moved]
    meta["assign"][moved] = (old + 1) % 5  # fold old+1's head was trained on it
    heads._save(meta, W, b)
    fits: list[set] = []
    out, refitted = heads.logits(X, y, keys, 4, "s", recorder(X, y, keys, fits))
    assert refitted >= 1 and all(moved not in f for f in fits[:1])
    check_honest(heads.path, X, keys, out)


def test_too_few_examples_of_a_label_or_repeated_keys_leave_it_to_the_caller(tmp_path):
    X, y = blobs(4)
    heads = FoldHeads(tmp_path / "folds.npz")
    assert heads.logits(X, y, [f"k{i}" for i in range(len(y))], 4, "s", None) is None
    X, y = blobs(6)
    assert heads.logits(X, y, ["same"] * len(y), 4, "s", None) is None
    assert not heads.path.exists()


def test_assignment_keeps_folds_and_balances_each_label():
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    keys = [f"k{i}" for i in range(len(y))]
    first = assigned({}, keys[:6], y[:6], 3)
    assert sorted(first[k] for k in keys[:3]) == [0, 1, 2] and sorted(first[k] for k in keys[3:6]) == [0, 1, 2]
    later = assigned(first, keys, y, 3)
    assert all(later[k] == first[k] for k in keys[:6])
    assert "gone" not in assigned({**first, "gone": 1}, keys, y, 3)


def test_the_folds_belong_to_what_is_trained_not_to_serving_or_schedule_parameters():
    """Turning auto-accept on or training less often keeps the fold heads; another head keeps none."""
    from training.params import TrainParams
    from training.train import FitJob, _recipe

    X = np.zeros((3, 8), dtype=np.float32)

    def signature(**values):
        job = FitJob.of([b"a", b"b", b"c"], ["x", "y", "x"], ["x", "y"], TrainParams.from_dict(values))
        return _recipe(job, X)

    plain = signature()
    assert signature(auto_accept=0.95, spot_check=0.1, retrain_every=5) == plain
    assert signature(head_c=0.5) != plain
