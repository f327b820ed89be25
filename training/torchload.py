"""A stored version as a PyTorch `Classifier`: its own network (finetune) or the pretrained
backbone(s) it names (head, ensemble), reusing loaded backbones where their ids match."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from safetensors.torch import load_file

from .backbones import Backbone, create_backbone
from .classifier import Classifier
from .pair import PairBackbone
from .storeformat import WEIGHTS, StoreError, partners


def load_torch(vid: str, m: dict, folder: Path, backbone=None) -> Classifier:
    """Version `vid` (its manifest `m`, its directory `folder` on this machine) for PyTorch;
    `backbone` (a Backbone or a PairBackbone): loaded networks to reuse for the pretrained parts."""
    tensors = load_file(str(folder / WEIGHTS))
    spec = m["backbone"]
    backbone, *given = getattr(backbone, "parts", (backbone,))  # a loaded pair: reuse its parts
    if m["contains_backbone"]:
        backbone = create_backbone(
            spec["name"], pretrained=False, image_size=spec["image_size"], tta=spec.get("tta", False), **spec["kwargs"]
        )
        state = {k[len("backbone.") :]: v for k, v in tensors.items() if k.startswith("backbone.")}
        backbone.module.load_state_dict(state, strict=True)
        backbone.module.to(backbone.device).eval()
        if backbone.device.type == "cpu":
            backbone.module.to(memory_format=torch.channels_last)
        backbone.weights = spec["weights"]
    elif backbone is None or backbone.id != m["backbone_id"] or backbone.image_size != spec["image_size"]:
        backbone = create_backbone(
            spec["name"],
            pretrained=spec["weights"] != "random",
            image_size=spec["image_size"],
            tta=spec.get("tta", False),
            **spec["kwargs"],
        )
    more = []
    for record in partners(m):  # an ensemble's head or a two-backbone head: pretrained backbones
        spec = record["backbone"]
        part = next((g for g in given if g is not None and g.id == record["backbone_id"]), None)
        part = part or create_backbone(
            spec["name"], pretrained=True, image_size=spec["image_size"], tta=spec.get("tta", False), **spec["kwargs"]
        )
        if part.id != record["backbone_id"]:
            raise StoreError(f"version {vid!r} needs backbone {record['backbone_id']}; built {part.id}")
        more.append(part)
    if more:
        backbone = PairBackbone(backbone, *more)
    return Classifier(
        backbone, tensors["head.weight"].numpy(), tensors["head.bias"].numpy(), m["labels"], mode=m["mode"], version=vid
    )


def torch_parts(clf: Classifier) -> tuple[Backbone, ...]:
    """The PyTorch networks of a classifier load_torch gave (ModelStore.load): its backbone, or the
    parts of its PairBackbone. (Classifier.backbone is typed for either engine.)"""
    return cast("tuple[Backbone, ...]", getattr(clf.backbone, "parts", (clf.backbone,)))
