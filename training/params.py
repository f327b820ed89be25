"""Training hyperparameters: one validated object for both training modes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from .backbone_names import FROM_SCRATCH, LITE
from .paramchecks import ParamError, check_bool, check_num, check_str

MODES = ("head", "finetune")
# acquisition strategies (training/acquisition.py implements them; kept here so validating a
# parameter imports no numpy)
ACQUISITIONS = ("random", "least_confidence", "margin", "entropy", "diverse")
DEFAULT_ACQUISITION = "margin"
# parameters of what is done with a version's predictions, not of training: changing one neither
# retrains nor changes whether a version may serve (see training_part)
SERVING_ONLY = ("auto_accept", "spot_check")
# parameters of when to train, not of what is trained: not compared between trainings either
SCHEDULE = ("retrain_every", "accurate_every")
# Named recipes (bench/RESULTS.md, "How accurate is each preset for N labels?"): a preset fills in
# its values, and any parameter given beside it overrides the preset's value for that parameter.
# fast: the default head on one network (seconds); balanced: the head over Lite2 and Lite1 side by
# side (+1.3 points at 60 labels, +0.5 at 600: 91.3 % there; 1.9x the network time per photo and
# 2.4x the fit); accurate: Lite1 fine-tuned at 160 px ensembled with a head on Lite2 and Lite1 (minutes:
# 95.1 % with all 6,992 labels in 20-23 min end to end, bench/RESULTS.md "`accurate`: fine-tuned Lite1
# and a head on Lite2 and Lite1").
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"mode": "head", "second_model": None},
    "balanced": {
        "mode": "head",
        "model": "efficientnet_lite2",
        "image_size": None,
        "second_model": "efficientnet_lite1",
    },
    "accurate": {
        "mode": "finetune",
        "model": "efficientnet_lite1",
        "image_size": 160,
        "epochs": 6,
        "lr": 5e-4,
        "tta": True,
        "ensemble_head": True,
        "second_model": None,
    },
}


def _help(default, label: str, text: str, unset: str = "none"):
    """A field with its help: `label` names it in the form, `text` says what it does (the form,
    `tasveer train --help`, the README), `unset` what a None default means."""
    return field(default=default, metadata={"label": label, "help": text, "unset": unset})


def help_of(name: str) -> dict:
    """{"label", "help", "unset"} of the parameter `name`."""
    return dict(TrainParams.__dataclass_fields__[name].metadata)


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters. Build from user input with `TrainParams.from_dict`, which validates.

    head mode: a logistic-regression head on cached backbone embeddings (seconds); `head_c` is its
    inverse L2 strength; `unlabeled` bounds the unlabeled photos its fit also learns from. `lr`,
    `epochs`, `batch_size`, `label_smoothing`, `patience` and `augment`
    drive finetune mode (the whole network), which also uses `weight_decay` and `val_fraction`.
    """

    # Each field's `_help(default, label, help)`: the one text the parameters form, `tasveer train
    # --help` and the README's table (python -m training.paramtable) show.
    # head mode on EfficientNet-Lite2 (260 px) with C = 0.005 won bench/head_features.py: +0.3 to
    # +1.3 points over Lite0 at every label count for about twice the network time (bench/HISTORY.md,
    # "Head features")
    model: str = _help(
        "efficientnet_lite2",
        "model",
        f"backbone: {', '.join(LITE)} (offline ImageNet weights; {' / '.join(str(v[1]) for v in LITE.values())} px), "
        f"{', '.join(FROM_SCRATCH)} (from scratch: mode finetune only), or any timm name (hub weights when "
        "online, or pretrained false)",
    )
    mode: str = _help(
        "head",
        "mode",
        "head: logistic regression on cached embeddings (seconds); finetune: the whole network (minutes)",
    )
    pretrained: bool | None = _help(
        None, "pretrained weights", "unset: pretrained weights where the model has them", unset="auto"
    )
    lr: float = _help(1e-3, "learning rate", "finetune: AdamW's learning rate (warm-up + cosine schedule)")
    epochs: int = _help(8, "epochs", "finetune: passes over the training photos")
    batch_size: int = _help(32, "batch size", "finetune: photos per step")
    image_size: int | None = _help(
        None,
        "image size",
        "input size in pixels; unset: the backbone's own (260 for efficientnet_lite2)",
        unset="backbone's",
    )
    weight_decay: float = _help(1e-4, "weight decay", "finetune: AdamW's weight decay")
    seed: int = _help(0, "seed", "random seed: sampling, splits and training")
    val_fraction: float = _help(
        0.15,
        "validation share",
        "finetune: the share of labelled photos held out to keep the best epoch, stop early and fit the temperature",
    )
    label_smoothing: float = _help(0.1, "label smoothing", "finetune: label smoothing of the loss")
    patience: int = _help(3, "patience", "finetune: epochs without a better validation accuracy before it stops")
    augment: bool = _help(True, "augment", "finetune: random-resized-crop + flip of the training photos")
    head_c: float = _help(0.005, "head C", "head: inverse L2 strength of the logistic regression")
    unlabeled: int = _help(
        2000,
        "unlabeled photos",
        "head: at most this many of the project's unlabeled photos "
        "(those already embedded) join the fit with pseudo-labels from label spreading "
        "(training/semi.py); 0 = labelled photos only",
    )
    acquisition: str = _help(
        DEFAULT_ACQUISITION,
        "acquisition strategy",
        f"which unlabeled task Label Studio serves next: {', '.join(ACQUISITIONS)} (training/acquisition.py)",
    )
    promotion_margin: float = _help(
        0.0,
        "promotion margin",
        "a new version serves only if its accuracy is at most "
        "this much below the serving one's; otherwise it is kept as a candidate that "
        "can be promoted by hand",
    )
    retrain_every: int = _help(
        1,
        "retrain after every N new annotations",
        "train after every N new annotations "
        '(1: after each); "train now" and Label Studio\'s train button train whatever the '
        "count",
    )
    accurate_every: int = _help(
        0,
        "accurate training after every N new labels",
        "0: never; N: once a version "
        "serves, a training that finds N or more labels added since the last `accurate` "
        "training trains the `accurate` preset instead (minutes), promoted only if better "
        "(backend/jobs/recipe.py)",
    )
    auto_accept: float | None = _help(
        None,
        "auto-accept accuracy",
        "unset: off; else the accuracy promised for "
        "labels taken from the model without a person (e.g. 0.98; its threshold is "
        "refitted after every publish)",
        unset="off",
    )
    spot_check: float = _help(
        0.05, "spot checks", "auto-accept: the share of would-be-accepted tasks left to people as spot checks"
    )
    tta: bool = _help(
        False,
        "flip TTA",
        "average each photo's features with its mirror image's (twice the network "
        "time per photo; served the same way by PyTorch and ONNX Runtime)",
    )
    ensemble_head: bool = _help(
        False,
        "ensemble with a head",
        "finetune: also fit a head on pretrained Lite2 (260 "
        "px, the default head's embeddings) and Lite1 (240 px) features side by side on the "
        "same labelled photos, and serve the geometric mean of both models' probabilities, "
        "temperature-scaled on the validation split (training/ensemble.py)",
    )
    # with efficientnet_lite0 and tta: +0.8 point at 60 labels (bench/HISTORY.md, "A head over two backbones")
    second_model: str | None = _help(
        None,
        "second backbone",
        "head: a second pretrained backbone (at its own input "
        "size, flip-averaged too with tta) whose features sit beside model's; the head "
        "reads both, for the second network's time on every photo. efficientnet_lite1 "
        "beside the default Lite2 is the best head measured: +1.3 points at 60 labels, "
        "+0.5 at 600 (bench/RESULTS.md)",
    )
    preset: str | None = _help(
        None,
        "preset",
        "a named recipe whose values fill in (values given beside it win): "
        "fast = the default head on one network (seconds); balanced = the head over Lite2 "
        "and Lite1 side by side (91.3 % at 600 labels against 90.2 %, for 1.9x the network "
        "time per photo); accurate = Lite1 fine-tuned at 160 px, flip TTA, ensembled with a "
        "head (95.1 % with all 6,992 labels in 20-23 min on 2 cores)",
    )
    filters: int = _help(32, "filters", "smallcnn only: channels of the first layer")
    kernel_size: int = _help(3, "kernel size", "smallcnn only: filter size (odd)")
    depth: int = _help(4, "depth", "smallcnn only: number of stages")

    def __post_init__(self) -> None:
        check_str(self, "model", self.model)
        if self.mode not in MODES:
            raise ParamError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.acquisition not in ACQUISITIONS:
            raise ParamError(f"acquisition must be one of {', '.join(ACQUISITIONS)}; got {self.acquisition!r}")
        if self.preset is not None and self.preset not in PRESETS:
            raise ParamError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        if self.pretrained is not None:
            check_bool(self, "pretrained")
        check_bool(self, "augment")
        check_bool(self, "tta")
        check_bool(self, "ensemble_head")
        check_num(self, "lr", float, lo=0, lo_open=True, hi=10)
        check_num(self, "epochs", int, lo=1, hi=1000)
        check_num(self, "batch_size", int, lo=1, hi=4096)
        if self.image_size is not None:
            check_num(self, "image_size", int, lo=32, hi=1024)
        check_num(self, "weight_decay", float, lo=0, hi=10)
        check_num(self, "seed", int, lo=0, hi=2**32 - 1)
        check_num(self, "val_fraction", float, lo=0, hi=0.5)
        check_num(self, "label_smoothing", float, lo=0, hi=0.5)
        check_num(self, "patience", int, lo=1, hi=1000)
        check_num(self, "head_c", float, lo=0, lo_open=True, hi=1e6)
        check_num(self, "unlabeled", int, lo=0, hi=100000)
        check_num(self, "promotion_margin", float, lo=0, hi=1)
        check_num(self, "retrain_every", int, lo=1, hi=100000)
        check_num(self, "accurate_every", int, lo=0, hi=1000000)
        if self.auto_accept is not None:
            check_num(self, "auto_accept", float, lo=0.5, hi=0.999)
        check_num(self, "spot_check", float, lo=0, hi=0.5)
        check_num(self, "filters", int, lo=1, hi=1024)
        check_num(self, "kernel_size", int, lo=1, hi=15)
        if self.kernel_size % 2 == 0:
            raise ParamError(f"kernel_size must be odd (so padding keeps the size); got {self.kernel_size}")
        check_num(self, "depth", int, lo=1, hi=8)
        if self.second_model is not None:
            check_str(self, "second_model", self.second_model)
            if self.second_model == self.model or self.mode != "head":
                raise ParamError(
                    f"second_model must name another backbone than model ({self.model!r}), for mode "
                    f"'head' only; got {self.second_model!r} with mode {self.mode!r}"
                )
        if self.mode == "head" and (self.pretrained is False or self.model == "smallcnn"):
            # a head on random features: the features would change with every process that builds
            # the network, and no version stores them
            raise ParamError(
                f"mode 'head' needs a pretrained backbone; {self.model!r} "
                f"{'has no pretrained weights' if self.model == 'smallcnn' else 'with pretrained: false'} "
                "would give random features: use mode 'finetune' to train it"
            )

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict | None) -> TrainParams:
        """Validate user-supplied values (JSON, CLI): unknown names and bad values raise ParamError.
        A `preset` fills in its recipe's values first; the other values given override them."""
        if values is None:
            return cls()
        if not isinstance(values, dict):
            raise ParamError(f"training parameters must be a JSON object, got {type(values).__name__}")
        known = set(cls.names())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParamError(
                f"unknown training parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
            )
        preset = values.get("preset")
        if preset is not None:
            if not isinstance(preset, str) or preset not in PRESETS:
                raise ParamError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
            values = {**PRESETS[preset], **values}
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def training_part(params: dict | None) -> dict:
    """A parameter dict without SERVING_ONLY and SCHEDULE entries: what decides whether two trainings
    are equal."""
    return {k: v for k, v in (params or {}).items() if k not in SERVING_ONLY and k not in SCHEDULE}


def with_preset(values: dict | None, preset: str) -> TrainParams:
    """`values` (a project's explicit parameters) with a preset's recipe on top: what a training of
    that recipe uses (the recipe's own values win; the project's other parameters stay)."""
    if preset not in PRESETS:
        raise ParamError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    return TrainParams.from_dict({**(values or {}), **PRESETS[preset], "preset": preset})
