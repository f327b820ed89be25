"""What the steps of a fit (training/train.py, training/fitfinetune.py) read and hand on: the job
(`FitJob`: images, label indices, parameters, how to run), what a mode's training gives (`Kept`,
`Estimate`, `Trained`), the `FitResult`, and the backbone a job asks for (`backbone_for`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from .backbones import Backbone, backbone_kwargs, create_backbone, has_pretrained, weights_tag
from .classifier import Classifier
from .pair import PairBackbone
from .params import ParamError, TrainParams


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


def silent(**fields) -> None:
    """A `report` that says nothing."""


@dataclass(frozen=True)
class FitJob:
    """What every step of a fit reads: the images, their label indices `y` (into `label_names`),
    the parameters, the images' names (for messages), and how it runs."""

    blobs: list
    y: np.ndarray
    label_names: list[str]
    params: TrainParams
    names: list[str]
    cache: object = None
    progress: bool = False
    report: Callable = silent  # report(phase=, epoch=, epochs=, step=, steps=, eta_s=)

    @classmethod
    def of(cls, blobs, labels, label_names, params, *, cache=None, progress=False, names=None, report=None) -> FitJob:
        """The job of fit's arguments; ParamError or ValueError where they do not fit together."""
        if len(set(label_names)) != len(label_names) or len(label_names) < 2:
            raise ParamError(f"need at least 2 distinct label names; got {label_names}")
        if len(blobs) != len(labels):
            raise ValueError(f"{len(blobs)} images but {len(labels)} labels")
        names = names or [f"image #{i}" for i in range(len(blobs))]
        return cls(
            blobs, label_indices(labels, label_names), label_names, params, names, cache, progress, report or silent
        )

    def rows(self, index) -> tuple[list, list[str]]:
        """The images and names of the input rows `index`."""
        return [self.blobs[i] for i in index], [self.names[i] for i in index]


Inputs = TypeVar("Inputs")  # what a mode trains on


@dataclass(frozen=True)
class Kept(Generic[Inputs]):
    """The labeled images that decoded: their input indices, their label indices, and what the
    mode trains on (head: their embeddings (N, F); finetune: the uint8 image tensor)."""

    index: np.ndarray
    y: np.ndarray
    inputs: Inputs


@dataclass(frozen=True)
class Estimate:
    """How well a classifier does, and measured how: FitResult's metrics, metrics_source and
    metrics_note."""

    metrics: dict = field(default_factory=dict)
    source: str = "none"
    note: str = ""

    @property
    def n(self) -> int:
        return self.metrics.get("n", 0)


@dataclass(frozen=True)
class Trained:
    """What one mode's training gives fit: the classifier, the input rows it trained on, its
    estimate, and the probabilities it was estimated from (head: out of fold, one row per kept
    image; finetune: the validation split's rows, `val_index` in input indices)."""

    classifier: Classifier
    keep: np.ndarray
    estimate: Estimate
    oof_proba: np.ndarray | None = None
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


def _single(
    model: str, pretrained: bool | None, image_size: int | None, kwargs: dict, tta: bool, backbone: Backbone | None
) -> Backbone:
    pretrained = has_pretrained(model) if pretrained is None else pretrained
    if (
        backbone is not None
        and backbone.name == model
        and backbone.weights == weights_tag(model, pretrained)
        and image_size in (None, backbone.image_size)
        and backbone.kwargs == kwargs
    ):
        if backbone.tta == tta:
            return backbone
        twin = copy.copy(backbone)  # the same network (shared, not copied), other features
        twin.tta = tta
        return twin
    return create_backbone(model, pretrained=pretrained, image_size=image_size, tta=tta, **kwargs)


def label_indices(labels, label_names, what="label") -> np.ndarray:
    """Each label's index in `label_names`; ParamError naming the labels that are not there."""
    index = {name: i for i, name in enumerate(label_names)}
    bad = sorted({lab for lab in labels if lab not in index})
    if bad:
        raise ParamError(f"{what}(s) {', '.join(map(repr, bad))} not among the labels {', '.join(label_names)}")
    return np.array([index[lab] for lab in labels], dtype=np.int64)
