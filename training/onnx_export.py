"""Export a backbone's feature extractor (pooled features, no head) to ONNX.

The graph takes `images` (N, 3, S, S) float32, already resized and normalised (see preprocess.py),
with a dynamic batch axis N, and returns `features` (N, num_features): exactly what
`Backbone.embed` computes before the head. The head stays a numpy matmul, so every head-only
version of one backbone shares one file:

    ROOT/backbones/<safe backbone id>-<size>.onnx   pretrained backbone (exported once, reused)
    ROOT/versions/<vid>/features.onnx               a finetuned version's own network

Files are written to a temporary name and moved into place in one step, so a reader never sees a
half-written graph. A backbone's shared file, once there, is never replaced (the first export wins,
so the sha256 recorded by every version that uses it stays true).
"""

from __future__ import annotations

import copy
import os
import re
import uuid
import warnings
from pathlib import Path

import torch

from .ort import INPUT, OUTPUT

OPSET = 18


def safe_name(backbone_id: str, image_size: int) -> str:
    """File name for a backbone's graph: the id with anything but [A-Za-z0-9._-] replaced."""
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', backbone_id)}-{image_size}.onnx"


def export_features(module: torch.nn.Module, image_size: int, path: str | Path, replace: bool = True) -> Path:
    """Write `module` (images -> pooled features) as ONNX at `path`, atomically. With
    `replace=False` an existing file at `path` is kept (and the new export dropped)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # torch's stubs list device and memory_format in separate overloads; Module.to takes both at once
    net = copy.deepcopy(module).to("cpu", memory_format=torch.contiguous_format).float().eval()  # type: ignore[call-overload]
    example = torch.zeros((2, 3, image_size, image_size), dtype=torch.float32)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (example,),
                str(tmp),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
            )
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and fails if another process got there first
            except FileExistsError:
                pass
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def ensure_backbone_onnx(root: str | Path, backbone) -> Path:
    """The shared graph of a pretrained backbone under ROOT/backbones/, exported only if missing
    (one graph per network and size: flip averaging happens around the graph, see ort.py)."""
    path = Path(root) / "backbones" / safe_name(getattr(backbone, "network_id", backbone.id), backbone.image_size)
    if not path.exists():
        export_features(backbone.module, backbone.image_size, path, replace=False)
    return path
