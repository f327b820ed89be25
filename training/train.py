"""One training entry for both modes: `fit(blobs, labels, label_names, params) -> FitResult`."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from .backbones import Backbone, backbone_kwargs, create_backbone, has_pretrained, weights_tag
from .classifier import Classifier
from .ensemble import fit_ensemble, head_params
from .finetune import finetune, prepare_images
from .head import (TooFewLabels, cross_val_logits, fit_linear, fit_temperature, labels_short_of_cv,
                   leave_one_out_logits, softmax)
from .metrics import evaluate
from .pair import PairBackbone
from .params import ParamError, TrainParams
from .semi import Graph, fit_semi


MIN_CALIBRATION = 20  # validation photos needed to fit a fine-tuned network's temperature
FINETUNE_T_BOUNDS = (0.1, 10.0)


@dataclass
class FitResult:
    classifier: Classifier
    metrics: dict
    n_train: int
    n_eval: int
    seconds: float
    metrics_source: str  # "holdout", "cross-validation", "leave-one-out", "validation split" or "none"
    skipped: dict = field(default_factory=dict)  # name -> why an image was left out
    # head mode: calibrated out-of-fold probabilities (rows = the kept images, in input order, see
    # `kept`): what a model that never saw an image's label says of it (label-error checks)
    oof_proba: np.ndarray | None = None
    kept: list[int] = field(default_factory=list)  # input indices of the images trained on
    # what a person should know about the metrics: why there are none, or why they are rough
    # (e.g. "leave-one-out: k-fold cross-validation needs 1 more label of sea")
    metrics_note: str = ""
    # finetune mode: input indices of the validation split and its calibrated probabilities
    val_index: list[int] = field(default_factory=list)
    val_proba: np.ndarray | None = None


def backbone_for(params: TrainParams, backbone=None):
    """The backbone `params` asks for (a pair.PairBackbone with `second_model`); reuses `backbone`,
    or its parts, where they are the ones asked for already."""
    first, second = getattr(backbone, "parts", (backbone, None))
    net = _single(params.model, params.pretrained, params.image_size, backbone_kwargs(params), params.tta, first)
    if params.second_model is None:
        return net
    return PairBackbone(net, _single(params.second_model, True, None, {}, params.tta, second))


def _single(model: str, pretrained: bool | None, image_size: int | None, kwargs: dict, tta: bool,
            backbone: Backbone | None) -> Backbone:
    pretrained = has_pretrained(model) if pretrained is None else pretrained
    if (backbone is not None and backbone.name == model and backbone.weights == weights_tag(model, pretrained)
            and image_size in (None, backbone.image_size) and backbone.kwargs == kwargs):
        if backbone.tta == tta:
            return backbone
        twin = copy.copy(backbone)  # the same network (shared, not copied), other features
        twin.tta = tta
        return twin
    return create_backbone(model, pretrained=pretrained, image_size=image_size, tta=tta, **kwargs)


def _indices(labels, label_names, what="label"):
    index = {name: i for i, name in enumerate(label_names)}
    bad = sorted({lab for lab in labels if lab not in index})
    if bad:
        raise ParamError(f"{what}(s) {', '.join(map(repr, bad))} not among the labels "
                         f"{', '.join(label_names)}")
    return np.array([index[lab] for lab in labels], dtype=np.int64)


def fit(blobs: list[bytes], labels: list[str], label_names: list[str], params: TrainParams, *,
        cache=None, backbone: Backbone | None = None, progress: bool = False,
        names: list[str] | None = None, eval_blobs: list[bytes] | None = None,
        eval_labels: list[str] | None = None, report=None,
        unlabeled_blobs: list[bytes] | None = None, unlabeled_features: np.ndarray | None = None,
        partner_backbone: Backbone | None = None) -> FitResult:
    """Train a classifier over `label_names` from image bytes and their labels.

    Bad images are left out (listed in FitResult.skipped). Metrics come from `eval_*` when given,
    else from cross-validation (head; leave-one-out while there are too few labels for it) or the
    validation split (finetune). `progress` shows progress bars; `report(phase=, epoch=, epochs=,
    step=, steps=, eta_s=)`, if given, is called as training goes (any subset of those fields).
    `unlabeled_blobs` (images) or `unlabeled_features` (their embeddings by this backbone): the
    project's unlabeled photos; head mode fits on the first `params.unlabeled` of them too
    (training/semi.py; images that fail to decode are left out).
    `partner_backbone`: a loaded default head backbone to reuse for `ensemble_head` (ensemble.py).
    """
    report = report or (lambda **fields: None)
    start = time.perf_counter()
    if len(set(label_names)) != len(label_names) or len(label_names) < 2:
        raise ParamError(f"need at least 2 distinct label names; got {label_names}")
    if len(blobs) != len(labels):
        raise ValueError(f"{len(blobs)} images but {len(labels)} labels")
    names = names or [f"image #{i}" for i in range(len(blobs))]
    y = _indices(labels, label_names)
    backbone = backbone_for(params, backbone)
    errors: dict[int, str] = {}
    metrics_source, metrics, note = "none", {}, ""
    oof_proba, val_index, val_out = None, [], None
    if params.mode == "head":
        report(phase="embedding", step=0, steps=len(blobs))
        X = backbone.embed(blobs, cache=cache, progress=progress, names=names, errors=errors,
                           report=lambda **f: report(phase="embedding", **f))
        keep = np.array([i for i in range(len(blobs)) if i not in errors], dtype=int)
        y_keep = y[keep]
        # while leave-one-out is the only estimate, it would need one semi-supervised fit per
        # label: the first few labels train the supervised head
        few = bool(labels_short_of_cv(y_keep, label_names))
        XU = None if few else unlabeled_features
        if XU is None and unlabeled_blobs and params.unlabeled and not few:
            report(phase="embedding unlabeled photos")
            bad: dict[int, str] = {}
            XU = backbone.embed(list(unlabeled_blobs[:params.unlabeled]), cache=cache, errors=bad,
                                names=[f"unlabeled #{i}" for i in range(min(len(unlabeled_blobs), params.unlabeled))])
            XU = XU[[i for i in range(len(XU)) if i not in bad]]
        head = unlabeled_head(X[keep], y_keep, len(label_names), params, XU, report)
        report(phase="fitting the head")
        W, b = head(np.arange(len(keep)))
        report(phase="cross-validation")
        oof = cross_val_logits(X[keep], y_keep, len(label_names), params.head_c, params.seed, fit=head)
        metrics_source = "cross-validation"
        short = labels_short_of_cv(y_keep, label_names)
        if oof is None:
            oof = leave_one_out_logits(X[keep], y_keep, len(label_names), params.head_c, params.seed,
                                       fit=head)
            metrics_source = "leave-one-out"
            note = "k-fold cross-validation needs " + _more(short)
            if oof is None:
                metrics_source, note = "none", f"too few labels for any estimate; {note}"
        if oof is not None:
            temperature = fit_temperature(oof, y_keep)
            W, b = W / temperature, b / temperature
            oof_proba = softmax(oof / temperature)
            metrics = {**evaluate(y_keep, oof_proba, label_names), "temperature": temperature}
        classifier = Classifier(backbone, W, b, label_names, mode="head")
    else:
        images, good = prepare_images(backbone, blobs, names, backbone.image_size, errors)
        keep = np.array(good, dtype=int)
        y_keep = y[keep]
        if len(np.unique(y_keep)) < 2:
            raise TooFewLabels("need annotated examples of at least 2 labels to train")
        features = None
        if backbone.weights != "random":  # for the linear probe that starts fine-tuning
            plain = backbone
            if backbone.tta:  # the probe only starts training: one view per photo is enough
                plain = copy.copy(backbone)
                plain.tta = False
            features = plain.embed([blobs[i] for i in keep], cache=cache, progress=progress,
                                      names=[names[i] for i in keep])
        tuned, W, b, val_idx, val_proba = finetune(backbone, images, y_keep, len(label_names),
                                                   params, progress, features, report=report)
        temperature = 1.0
        if len(val_idx) >= MIN_CALIBRATION:
            # temperature scaling on the validation split: label smoothing and early stopping leave
            # a fine-tuned network's scores off (ECE 0.07-0.1 measured); log-probabilities are its
            # logits up to a per-row constant, which softmax ignores
            val_logits = np.log(np.clip(val_proba, 1e-38, 1.0))
            temperature = fit_temperature(val_logits, y_keep[val_idx], bounds=FINETUNE_T_BOUNDS)
            W, b = W / temperature, b / temperature
            val_proba = softmax(val_logits / temperature)
        classifier = Classifier(tuned, W, b, label_names, mode="finetune")
        ensemble = None
        if params.ensemble_head and len(val_idx) >= MIN_CALIBRATION:
            partner = backbone_for(head_params(params), partner_backbone)
            classifier, val_proba, ensemble = fit_ensemble(
                classifier, partner, [blobs[i] for i in keep], y_keep, val_idx, val_proba, params, cache=cache,
                progress=progress, names=[names[i] for i in keep], report=report)
        val_index, val_out = [int(i) for i in keep[val_idx]], val_proba
        if len(val_idx):
            metrics_source, metrics = "validation split", evaluate(y_keep[val_idx], val_proba, label_names)
            metrics["temperature"] = temperature
            if ensemble:
                metrics["ensemble"] = ensemble
            if len(val_idx) < 10:
                note = f"validation split of only {len(val_idx)} image(s): a rough estimate"
        else:
            note = (f"too few labels ({len(keep)}) for a validation split of {params.val_fraction:g}; "
                    "mode 'head' estimates accuracy from the first labels")
        if params.ensemble_head and ensemble is None:
            note = "; ".join(filter(None, [note, f"no ensemble head: its calibration needs "
                                                 f">= {MIN_CALIBRATION} validation photos"]))
    skipped = {names[i]: msg for i, msg in errors.items()}
    n_eval = metrics.get("n", 0)
    if eval_blobs is not None:
        report(phase="evaluating")
        y_eval = _indices(eval_labels, label_names)
        proba = classifier.predict_proba(eval_blobs, cache=cache, progress=progress)
        metrics_source, metrics, n_eval = "holdout", evaluate(y_eval, proba, label_names), len(y_eval)
        note = ""
    return FitResult(classifier, metrics, len(keep), n_eval, time.perf_counter() - start,
                     metrics_source, skipped, oof_proba, [int(i) for i in keep], note, val_index, val_out)


def unlabeled_head(X, y, n_classes: int, params: TrainParams, XU, report):
    """`head(rows) -> (W, b)`: the head fitted on the labeled rows `rows` of X (labels y[rows]);
    semi-supervised (training/semi.py) over the other rows of X and the first `params.unlabeled`
    unlabeled embeddings XU when there are any, else the supervised training.head.fit_linear."""
    if XU is None or len(XU) == 0 or params.unlabeled == 0:
        return lambda rows: fit_linear(X[rows], y[rows], n_classes, params.head_c, params.seed)
    XU = np.asarray(XU, dtype=np.float32)[:params.unlabeled]
    if XU.ndim != 2 or XU.shape[1] != X.shape[1]:
        raise ValueError(f"unlabeled features of shape {XU.shape} do not match the labeled ones {X.shape}")
    X_all = np.vstack([X, XU]).astype(np.float32)
    report(phase="neighbour graph of the photos")
    graph = Graph(X_all)
    return lambda rows: fit_semi(X_all, rows, y[rows], n_classes, params.head_c, params.seed, graph=graph)


def _more(short: dict[str, int]) -> str:
    """'1 more label of sea, 1 more label of forest'"""
    return ", ".join(f"{n} more label{'s' if n > 1 else ''} of {label}" for label, n in short.items()) \
        or "more labels"
