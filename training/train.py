"""One training entry for both modes: `fit(blobs, labels, label_names, params) -> FitResult`.

fit checks its arguments (training/fitjob.py: FitJob), trains in the mode asked for (head: here;
finetune: training/fitfinetune.py), and then measures on a holdout when one is given."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from .backbones import Backbone
from .classifier import Classifier
from .fitfinetune import FINETUNE_T_BOUNDS, MIN_CALIBRATION, fit_finetune  # noqa: F401 - re-exported
from .fitjob import Estimate, FitJob, FitResult, Kept, Trained, backbone_for, label_indices  # noqa: F401 - re-exported
from .foldheads import FoldHeads
from .head import cross_val_logits, fit_linear, fit_temperature, labels_short_of_cv, leave_one_out_logits, softmax
from .metrics import evaluate
from .params import TrainParams, training_part
from .semi import Graph, fit_semi


@dataclass(frozen=True)
class OutOfFold:
    """Logits of each labeled image by heads that never saw its label (None: too few labels for
    any), and how they were made (FitResult.metrics_source, metrics_note)."""

    logits: np.ndarray | None
    source: str
    note: str = ""


def fit(
    blobs: list[bytes],
    labels: list[str],
    label_names: list[str],
    params: TrainParams,
    *,
    cache=None,
    backbone: Backbone | None = None,
    progress: bool = False,
    names: list[str] | None = None,
    eval_blobs: list[bytes] | None = None,
    eval_labels: list[str] | None = None,
    report=None,
    unlabeled_blobs: list[bytes] | None = None,
    unlabeled_features: np.ndarray | None = None,
    partner_backbone: Backbone | None = None,
    folds: FoldHeads | None = None,
) -> FitResult:
    """Train a classifier over `label_names` from image bytes and their labels.

    Bad images are left out (listed in FitResult.skipped). Metrics come from `eval_*` when given,
    else from cross-validation (head; leave-one-out while there are too few labels for it) or the
    validation split (finetune). `progress` shows progress bars; `report(phase=, epoch=, epochs=,
    step=, steps=, eta_s=)`, if given, is called as training goes (any subset of those fields).
    `unlabeled_blobs` (images) or `unlabeled_features` (their embeddings by this backbone): the
    project's unlabeled photos; head mode fits on the first `params.unlabeled` of them too
    (training/semi.py; images that fail to decode are left out).
    `partner_backbone`: a loaded default head backbone to reuse for `ensemble_head` (ensemble.py).
    `folds`: the head's cross-validation folds kept across trainings (training/foldheads.py; the
    examples are keyed by `names`, which must then name them for good, e.g. "task 123").
    """
    start = time.perf_counter()
    job = FitJob.of(blobs, labels, label_names, params, cache=cache, progress=progress, names=names, report=report)
    backbone = backbone_for(params, backbone)
    errors: dict[int, str] = {}
    if params.mode == "head":
        trained = fit_head(job, backbone, errors, unlabeled_blobs, unlabeled_features, folds)
    else:
        trained = fit_finetune(job, backbone, errors, partner_backbone)
    estimate = trained.estimate
    if eval_blobs is not None:
        if eval_labels is None:
            raise TypeError("fit: eval_blobs need their eval_labels")
        estimate = holdout(job, trained.classifier, eval_blobs, eval_labels)
    skipped = {job.names[i]: msg for i, msg in errors.items()}
    return FitResult(
        trained.classifier,
        estimate.metrics,
        len(trained.keep),
        estimate.n,
        time.perf_counter() - start,
        estimate.source,
        skipped,
        trained.oof_proba,
        [int(i) for i in trained.keep],
        estimate.note,
        trained.val_index,
        trained.val_proba,
    )


def fit_head(job: FitJob, backbone, errors: dict, unlabeled_blobs=None, unlabeled_features=None, folds=None) -> Trained:
    """Head mode: a linear head on the backbone's embeddings of the job's images (bad ones go to
    `errors`), semi-supervised over the project's unlabeled photos when there are any, divided by
    the temperature fitted on its out-of-fold logits (`folds`: kept across trainings)."""
    kept = embedded(job, backbone, errors)
    X, y = kept.inputs, kept.y
    # while leave-one-out is the only estimate, it would need one semi-supervised fit per
    # label: the first few labels train the supervised head
    few = bool(labels_short_of_cv(y, job.label_names))
    XU = None if few else unlabeled_embeddings(job, backbone, unlabeled_blobs, unlabeled_features)
    head = unlabeled_head(X, y, len(job.label_names), job.params, XU, job.report)
    job.report(phase="fitting the head")
    W, b = head(np.arange(len(kept.index)))
    # each fold's fit starts from the head on every label, a few labels away from its own optimum
    oof = out_of_fold(job, kept, lambda rows: head(rows, (W, b)), folds)
    if oof.logits is None:
        return Trained(
            Classifier(backbone, W, b, job.label_names, mode="head"), kept.index, Estimate({}, oof.source, oof.note)
        )
    temperature = fit_temperature(oof.logits, y)
    proba = softmax(oof.logits / temperature)
    metrics = {**evaluate(y, proba, job.label_names), "temperature": temperature}
    classifier = Classifier(backbone, W / temperature, b / temperature, job.label_names, mode="head")
    return Trained(classifier, kept.index, Estimate(metrics, oof.source, oof.note), oof_proba=proba)


def embedded(job: FitJob, backbone, errors: dict) -> Kept[np.ndarray]:
    """The labeled images' embeddings, of the ones that decode (the others go to `errors`)."""
    job.report(phase="embedding", step=0, steps=len(job.blobs))
    X = backbone.embed(
        job.blobs,
        cache=job.cache,
        progress=job.progress,
        names=job.names,
        errors=errors,
        report=lambda **f: job.report(phase="embedding", **f),
    )
    keep = np.array([i for i in range(len(job.blobs)) if i not in errors], dtype=int)
    return Kept(keep, job.y[keep], X[keep])


def unlabeled_embeddings(job: FitJob, backbone, unlabeled_blobs=None, unlabeled_features=None):
    """The project's unlabeled photos as embeddings: `unlabeled_features` when given, else the first
    `params.unlabeled` of `unlabeled_blobs` embedded (those that fail to decode left out)."""
    n = job.params.unlabeled
    if unlabeled_features is not None or not unlabeled_blobs or not n:
        return unlabeled_features
    job.report(phase="embedding unlabeled photos")
    bad: dict[int, str] = {}
    XU = backbone.embed(
        list(unlabeled_blobs[:n]),
        cache=job.cache,
        errors=bad,
        names=[f"unlabeled #{i}" for i in range(min(len(unlabeled_blobs), n))],
    )
    return XU[[i for i in range(len(XU)) if i not in bad]]


def out_of_fold(job: FitJob, kept: Kept[np.ndarray], head, folds: FoldHeads | None = None) -> OutOfFold:
    """k-fold cross-validation of `head` (with `folds`, its fold heads kept across trainings), or
    leave-one-out while a label has too few images for it."""
    X, y, n_classes, params = kept.inputs, kept.y, len(job.label_names), job.params
    job.report(phase="cross-validation")
    if folds is not None:
        got = folds.logits(X, y, [job.names[i] for i in kept.index], n_classes, _recipe(job, X), head)
        if got is not None:
            kept_note = (
                f"{folds.folds}-fold cross-validation, fold heads kept across trainings: {got[1]} refitted "
                f"for this version, the others up to {folds.folds - 1} trainings old"
            )
            return OutOfFold(got[0], "cross-validation", kept_note)
    oof = cross_val_logits(X, y, n_classes, params.head_c, params.seed, fit=head)
    if oof is not None:
        return OutOfFold(oof, "cross-validation")
    note = "k-fold cross-validation needs " + _more(labels_short_of_cv(y, job.label_names))
    oof = leave_one_out_logits(X, y, n_classes, params.head_c, params.seed, fit=head)
    if oof is None:
        return OutOfFold(None, "none", f"too few labels for any estimate; {note}")
    return OutOfFold(oof, "leave-one-out", note)


def holdout(job: FitJob, classifier: Classifier, eval_blobs: list[bytes], eval_labels: list[str]) -> Estimate:
    """Metrics of `classifier` on held-out images and their labels."""
    job.report(phase="evaluating")
    y_eval = label_indices(eval_labels, job.label_names)
    proba = classifier.predict_proba(eval_blobs, cache=job.cache, progress=job.progress)
    return Estimate(evaluate(y_eval, proba, job.label_names), "holdout")


def unlabeled_head(X, y, n_classes: int, params: TrainParams, XU, report):
    """`head(rows, init=None) -> (W, b)`: the head fitted on the labeled rows `rows` of X (labels
    y[rows]); semi-supervised (training/semi.py) over the other rows of X and the first
    `params.unlabeled` unlabeled embeddings XU when there are any, else the supervised
    training.head.fit_linear. `init`: the (W, b) of a fit on nearly the same rows to start from."""
    if XU is None or len(XU) == 0 or params.unlabeled == 0:
        return lambda rows, init=None: fit_linear(X[rows], y[rows], n_classes, params.head_c, params.seed, init=init)
    XU = np.asarray(XU, dtype=np.float32)[: params.unlabeled]
    if XU.ndim != 2 or XU.shape[1] != X.shape[1]:
        raise ValueError(f"unlabeled features of shape {XU.shape} do not match the labeled ones {X.shape}")
    X_all = np.vstack([X, XU]).astype(np.float32)
    report(phase="neighbour graph of the photos")
    graph = Graph(X_all)
    return lambda rows, init=None: fit_semi(
        X_all, rows, y[rows], n_classes, params.head_c, params.seed, graph=graph, init=init
    )


def _recipe(job: FitJob, X: np.ndarray) -> str:
    """What a kept fold head belongs to: the parameters of what is trained (not when to train, nor
    the serving-only ones such as auto-accept: changing those keeps the folds), the label names and
    the feature size."""
    fitted = training_part(job.params.to_dict())
    return json.dumps([fitted, job.label_names, int(X.shape[1])], sort_keys=True, default=str)


def _more(short: dict[str, int]) -> str:
    """'1 more label of sea, 1 more label of forest'"""
    return ", ".join(f"{n} more label{'s' if n > 1 else ''} of {label}" for label, n in short.items()) or "more labels"
