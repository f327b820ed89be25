"""Active-learning simulation: reveal labels from a pool batch by batch, retrain the product's
linear head after every batch, and measure held-out accuracy.

`embed_folder` loads a class-per-folder tree through the embedding cache, so a rerun of a
simulation (or of the benchmark) costs seconds instead of minutes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import list_folder


def embed_folder(root, cache_dir, limit: int | None = None, seed: int = 0, backbone=None):
    """(X (N, F) float32, y (N,) int, label_names, paths) for DIR/<class>/<image>.

    `limit` keeps a class-balanced sample of that many photos, chosen by `seed`. Photos that fail
    to decode are left out. Progress goes to stderr.
    """
    from tqdm.auto import tqdm

    from .backbones import create_backbone
    from .cache import EmbeddingCache
    from .data import balanced_sample
    from .images import read_image_file

    paths, labels, names = list_folder(root)
    if limit is not None and limit < len(paths):
        keep = balanced_sample(labels, int(limit), seed)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    backbone = backbone or create_backbone("efficientnet_lite0")
    cache = EmbeddingCache(Path(cache_dir))
    blobs = [
        read_image_file(p) for p in tqdm(paths, desc="reading", unit="img", file=sys.stderr, disable=len(paths) < 500)
    ]
    errors: dict[int, str] = {}
    X = backbone.embed(blobs, cache=cache, progress=True, names=[str(p) for p in paths], errors=errors)
    good = [i for i in range(len(paths)) if i not in errors]
    index = {n: i for i, n in enumerate(names)}
    y = np.array([index[labels[i]] for i in good], dtype=np.int64)
    return X[good].astype(np.float32), y, names, [paths[i] for i in good]


def project_head(unlabeled: int):
    """The head a project trains (training.train.unlabeled_head), as `simulate`'s `head`: the
    labeled photos plus a seeded random `unlabeled` of the rest of the pool as its unlabeled tasks
    (backend/trainer.py chooses them the same way); supervised while some label is short of k-fold
    cross-validation, as in the product, or with `unlabeled` = 0."""
    from .head import fit_linear, labels_short_of_cv
    from .params import TrainParams
    from .train import unlabeled_head

    if int(unlabeled) < 0:
        raise ValueError(f"unlabeled must not be negative; got {unlabeled}")

    def head(XL, yL, XU, n_classes, head_c, seed):
        if not unlabeled or len(XU) == 0 or labels_short_of_cv(yL, [str(i) for i in range(n_classes)]):
            return fit_linear(XL, yL, n_classes, head_c, seed)
        if len(XU) > unlabeled:
            XU = XU[np.sort(np.random.default_rng(seed).choice(len(XU), int(unlabeled), replace=False))]
        params = TrainParams(head_c=head_c, seed=seed, unlabeled=int(unlabeled))
        return unlabeled_head(XL, yL, n_classes, params, XU, lambda **_: None)(np.arange(len(yL)))

    return head


def accuracy(W, b, X, y) -> float:
    return float(np.mean((X @ W.T + b).argmax(axis=1) == y)) if len(y) else float("nan")


def first_batch(pool_X, pool_y, n: int, strategy: str, seed: int) -> list[int]:
    """The first labels revealed: k-means medoids for every strategy but `random` (a seeded random
    draw). Topped up at random until two labels are present, since a head needs two."""
    from .acquisition import initial_batch

    rng = np.random.default_rng(seed)
    if strategy == "random":
        chosen = [int(i) for i in rng.permutation(len(pool_y))[:n]]
    else:
        chosen = [int(i) for i in initial_batch(pool_X, n, seed)]
    taken = set(chosen)
    rest = [int(i) for i in rng.permutation(len(pool_y)) if int(i) not in taken]
    while len(np.unique(pool_y[chosen])) < 2 and rest:
        chosen.append(rest.pop(0))
    return chosen


def simulate(
    pool_X,
    pool_y,
    test_X,
    test_y,
    label_names,
    *,
    strategy: str,
    initial: int = 60,
    batch: int = 60,
    rounds: int = 8,
    seed: int = 0,
    head_c: float = 0.002,
    auto_accept: float | None = None,
    head=None,
    groups=None,
    skip_duplicates: bool = False,
) -> list[dict]:
    """Reveal `initial` pool labels, then `rounds` batches of `batch` chosen by `strategy`,
    retraining the product's head (training.head.fit_linear) each time; `head`, if given, replaces
    it: head(X_labeled, y_labeled, X_unlabeled, n_classes, head_c, seed) -> (W, b), the unlabeled
    rows being the rest of the pool. One {"labels", "accuracy"} per step (rounds + 1); with
    `auto_accept` (a target accuracy) also the share of test photos the auto-accept rule takes and
    their realised accuracy ("auto_coverage", "auto_precision"; training/autoaccept.py).

    `groups` (near-duplicate groups of pool rows) adds "duplicates_served": photos served although
    a member of their group was labeled before; with `skip_duplicates` none is (training/dupserving.py)."""
    from .acquisition import check_strategy, select
    from .dupserving import Duplicates
    from .head import softmax

    check_strategy(strategy)
    _check_sizes(initial, batch, rounds)
    data = _Photos.of(pool_X, pool_y, test_X, test_y)
    if initial + rounds * batch > len(data.pool_y):
        raise ValueError(
            f"initial + rounds * batch = {initial + rounds * batch} labels but the pool holds only "
            f"{len(data.pool_y)} photos"
        )
    n_classes = len(label_names)
    served = Duplicates(groups, len(data.pool_y), skip=skip_duplicates)
    served.take(first_batch(data.pool_X, data.pool_y, int(initial), strategy, seed))
    history = []
    for r in range(int(rounds) + 1):
        unlabeled = served.open_rows()
        known = served.known()
        W, b = _fit(data, known, unlabeled, n_classes, head, head_c, seed)
        step = _score(data, known, W, b, n_classes, head_c=head_c, seed=seed, auto_accept=auto_accept)
        step["labels"] = len(served.spent)
        if groups is not None:
            step["duplicates_served"] = served.wasted
        history.append(step)
        if r == rounds or not len(unlabeled):
            break
        proba = softmax(data.pool_X[unlabeled] @ W.T + b)
        asked = min(len(unlabeled), 3 * batch if served.grouped else batch)
        picks = select(proba, asked, strategy, features=data.pool_X[unlabeled], seed=seed * 1000 + r)
        served.take([int(unlabeled[i]) for i in picks], batch)
    return history


def _check_sizes(initial: int, batch: int, rounds: int) -> None:
    for name, v in (("initial", initial), ("batch", batch)):
        if int(v) < 1:
            raise ValueError(f"{name} must be at least 1; got {v}")
    if int(rounds) < 0:
        raise ValueError(f"rounds must not be negative; got {rounds}")


@dataclass(frozen=True)
class _Photos:
    """A simulation's embeddings and labels: the pool (labels revealed) and the test photos."""

    pool_X: np.ndarray
    pool_y: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray

    @classmethod
    def of(cls, pool_X, pool_y, test_X, test_y) -> _Photos:
        photos = cls(
            np.asarray(pool_X, dtype=np.float32),
            np.asarray(pool_y, dtype=np.int64),
            np.asarray(test_X, dtype=np.float32),
            np.asarray(test_y, dtype=np.int64),
        )
        if len(photos.pool_X) != len(photos.pool_y) or len(photos.test_X) != len(photos.test_y):
            raise ValueError("features and labels must have the same number of rows")
        return photos


def _fit(data: _Photos, labeled: list[int], unlabeled, n_classes: int, head, head_c: float, seed: int):
    """(W, b) of the head on the labels revealed so far (`head`, if given, also sees the rest)."""
    from .head import fit_linear

    XL, yL = data.pool_X[labeled], data.pool_y[labeled]  # a duplicate's label is its group's (the same class)
    if head is None:
        return fit_linear(XL, yL, n_classes, head_c, seed)
    return head(XL, yL, data.pool_X[unlabeled], n_classes, head_c, seed)


def _score(
    data: _Photos, labeled: list[int], W, b, n_classes: int, *, head_c: float, seed: int, auto_accept: float | None
) -> dict:
    """One step of the history: labels revealed, test accuracy, and the auto-accept figures if asked."""
    step = {"labels": len(labeled), "accuracy": accuracy(W, b, data.test_X, data.test_y)}
    if auto_accept is not None:
        from .autoaccept import measure

        (rule,) = measure(
            data.pool_X[labeled],
            data.pool_y[labeled],
            data.test_X,
            data.test_y,
            n_classes,
            [auto_accept],
            head_c=head_c,
            seed=seed,
        )
        step.update(auto_coverage=rule["auto_coverage"], auto_precision=rule["auto_precision"])
    return step


def summarise(strategy: str, runs: list[list[dict]]) -> dict:
    """{"strategy", "rounds": [{"labels", "accuracy" (mean), "spread" (std over runs)}]}."""
    rounds: list[dict] = []
    for step in zip(*runs):
        acc = np.array([s["accuracy"] for s in step])
        rounds.append({"labels": int(step[0]["labels"]), "accuracy": float(acc.mean()), "spread": float(acc.std())})
        if "duplicates_served" in step[0]:
            rounds[-1]["duplicates_served"] = float(np.mean([s["duplicates_served"] for s in step]))
        if "auto_coverage" in step[0]:
            precisions = [s["auto_precision"] for s in step if s["auto_precision"] is not None]
            rounds[-1].update(
                auto_coverage=float(np.mean([s["auto_coverage"] for s in step])),
                auto_precision=float(np.mean(precisions)) if precisions else None,
            )
    return {"strategy": strategy, "rounds": rounds}


def simulate_repeats(
    pool_X, pool_y, test_X, test_y, label_names, *, strategy: str, repeats: int = 3, seed: int = 0, **kwargs
) -> dict:
    """`simulate` with seeds seed .. seed + repeats - 1 on the same split; mean and spread per step."""
    if int(repeats) < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    runs = [
        simulate(pool_X, pool_y, test_X, test_y, label_names, strategy=strategy, seed=seed + i, **kwargs)
        for i in range(int(repeats))
    ]
    return summarise(strategy, runs)
