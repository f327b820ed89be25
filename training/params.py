"""Training hyperparameters: one validated object for both training modes."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

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
PRESETS = {
    "fast": {"mode": "head", "second_model": None},
    "balanced": {"mode": "head", "model": "efficientnet_lite2", "image_size": None,
                 "second_model": "efficientnet_lite1"},
    "accurate": {"mode": "finetune", "model": "efficientnet_lite1", "image_size": 160, "epochs": 6,
                 "lr": 5e-4, "tta": True, "ensemble_head": True, "second_model": None},
}


class ParamError(ValueError):
    """A hyperparameter with a bad name or value; the message names it and says what is allowed."""


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters. Build from user input with `TrainParams.from_dict`, which validates.

    head mode: a logistic-regression head on cached backbone embeddings (seconds); `head_c` is its
    inverse L2 strength; `unlabeled` bounds the unlabeled photos its fit also learns from. `lr`,
    `epochs`, `batch_size`, `label_smoothing`, `patience` and `augment`
    drive finetune mode (the whole network), which also uses `weight_decay` and `val_fraction`.
    """

    # head mode on EfficientNet-Lite2 (260 px) with C = 0.005 won bench/head_features.py: +0.3 to
    # +1.3 points over Lite0 at every label count for about twice the network time (bench/HISTORY.md,
    # "Head features")
    model: str = "efficientnet_lite2"
    mode: str = "head"
    pretrained: bool | None = None  # None: pretrained weights where the model has them
    lr: float = 1e-3
    epochs: int = 8
    batch_size: int = 32
    image_size: int | None = None  # None: the backbone's own size (260 for efficientnet_lite2)
    weight_decay: float = 1e-4
    seed: int = 0
    val_fraction: float = 0.15
    label_smoothing: float = 0.1
    patience: int = 3
    augment: bool = True
    head_c: float = 0.005
    # head mode: at most this many of the project's unlabeled (already embedded) photos join the
    # head's fit with pseudo-labels (training/semi.py); 0 = labeled photos only
    unlabeled: int = 2000
    # which unlabeled task is most useful to label next (see training/acquisition.py)
    acquisition: str = DEFAULT_ACQUISITION
    # a new version serves only if its accuracy is at most this much below the serving one's;
    # otherwise it is kept as a candidate that can be promoted by hand
    promotion_margin: float = 0.0
    # train after every N new annotations (1: after each one); "train now" and LS's train button
    # start a training whatever the count
    retrain_every: int = 1
    # 0: off; N: a training that starts when N or more labels were added since the last `accurate`
    # training (and a version already serves) trains the `accurate` preset instead of these
    # parameters, promoted only if better (backend/recipe.py)
    accurate_every: int = 0
    # auto-accept (backend/autoaccept.py): None = off; else the accuracy promised for labels taken
    # from the model without a person (its threshold is refitted after every publish), and the
    # share of would-be-accepted tasks left to people as spot checks
    auto_accept: float | None = None
    spot_check: float = 0.05
    # test-time augmentation: features averaged over each photo and its mirror image (twice the
    # network time per photo, served the same way by PyTorch and ONNX Runtime)
    tta: bool = False
    # finetune mode: also fit the default head (model/size defaults above) on the same labelled
    # photos and serve the geometric mean of both models' probabilities (training/ensemble.py)
    ensemble_head: bool = False
    # head mode: a second pretrained backbone (at its own input size, flip-averaged too with `tta`)
    # whose features sit beside `model`'s; the head reads both. With efficientnet_lite0 and tta:
    # +0.8 point at 60 labels, for the second network's time on every photo (bench/HISTORY.md, "A head
    # over two backbones")
    second_model: str | None = None
    # a named recipe (PRESETS); applied by `from_dict`, where explicit values override it
    preset: str | None = None
    # from-scratch `smallcnn` family only
    filters: int = 32
    kernel_size: int = 3
    depth: int = 4

    def __post_init__(self) -> None:
        _check_str(self, "model", self.model)
        if self.mode not in MODES:
            raise ParamError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.acquisition not in ACQUISITIONS:
            raise ParamError(f"acquisition must be one of {', '.join(ACQUISITIONS)}; got {self.acquisition!r}")
        if self.preset is not None and self.preset not in PRESETS:
            raise ParamError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        if self.pretrained is not None:
            _check_bool(self, "pretrained")
        _check_bool(self, "augment")
        _check_bool(self, "tta")
        _check_bool(self, "ensemble_head")
        _check_num(self, "lr", float, lo=0, lo_open=True, hi=10)
        _check_num(self, "epochs", int, lo=1, hi=1000)
        _check_num(self, "batch_size", int, lo=1, hi=4096)
        if self.image_size is not None:
            _check_num(self, "image_size", int, lo=32, hi=1024)
        _check_num(self, "weight_decay", float, lo=0, hi=10)
        _check_num(self, "seed", int, lo=0, hi=2**32 - 1)
        _check_num(self, "val_fraction", float, lo=0, hi=0.5)
        _check_num(self, "label_smoothing", float, lo=0, hi=0.5)
        _check_num(self, "patience", int, lo=1, hi=1000)
        _check_num(self, "head_c", float, lo=0, lo_open=True, hi=1e6)
        _check_num(self, "unlabeled", int, lo=0, hi=100000)
        _check_num(self, "promotion_margin", float, lo=0, hi=1)
        _check_num(self, "retrain_every", int, lo=1, hi=100000)
        _check_num(self, "accurate_every", int, lo=0, hi=1000000)
        if self.auto_accept is not None:
            _check_num(self, "auto_accept", float, lo=0.5, hi=0.999)
        _check_num(self, "spot_check", float, lo=0, hi=0.5)
        _check_num(self, "filters", int, lo=1, hi=1024)
        _check_num(self, "kernel_size", int, lo=1, hi=15)
        if self.kernel_size % 2 == 0:
            raise ParamError(f"kernel_size must be odd (so padding keeps the size); got {self.kernel_size}")
        _check_num(self, "depth", int, lo=1, hi=8)
        if self.second_model is not None:
            _check_str(self, "second_model", self.second_model)
            if self.second_model == self.model or self.mode != "head":
                raise ParamError(f"second_model must name another backbone than model ({self.model!r}), for mode "
                                 f"'head' only; got {self.second_model!r} with mode {self.mode!r}")
        if self.mode == "head" and (self.pretrained is False or self.model == "smallcnn"):
            # a head on random features: the features would change with every process that builds
            # the network, and no version stores them
            raise ParamError(f"mode 'head' needs a pretrained backbone; {self.model!r} "
                             f"{'has no pretrained weights' if self.model == 'smallcnn' else 'with pretrained: false'} "
                             "would give random features: use mode 'finetune' to train it")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict | None) -> "TrainParams":
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
                f"unknown training parameter(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
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


def _check_str(params, name, value):
    if not isinstance(value, str) or not value.strip():
        raise ParamError(f"{name} must be a non-empty string; got {value!r}")


def _check_bool(params, name):
    value = getattr(params, name)
    if not isinstance(value, bool):
        raise ParamError(f"{name} must be true or false; got {value!r}")


def _check_num(params, name, kind, lo=None, hi=None, lo_open=False):
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(f"{name} must be a number; got {value!r}")
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise ParamError(f"{name} must be a whole number; got {value!r}")
            object.__setattr__(params, name, int(value))
            value = int(value)
    else:
        if not math.isfinite(value):
            raise ParamError(f"{name} must be a finite number; got {value!r}")
        object.__setattr__(params, name, float(value))
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and value > hi
    if too_low or too_high:
        lower = f"> {lo}" if lo_open else f">= {lo}"
        raise ParamError(f"{name} must be {lower} and <= {hi}; got {value!r}")
