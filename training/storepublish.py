"""The files of one new version of the model store (training/storeformat.py), written into a
temporary directory: the weights, the ONNX graphs that serve it, its confusion matrix, and the
manifest that describes them. ModelStore.publish (training/store.py) then gives the version its id
and moves it into place in one step.

Imports torch and the exporter: store.py imports this module inside publish() only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save_file

from . import onnx_export  # looked up at each call (tests replace onnx_export.export_features)
from .metrics import plot_confusion
from .ort import INPUT, OUTPUT
from .storeformat import CONFUSION, FEATURES_ONNX, WEIGHTS, file_sha256

if TYPE_CHECKING:
    from .backbones import Backbone


@dataclass(frozen=True)
class Networks:
    """A version's backbones: the first (its own network when `with_backbone`: finetune), then the
    others of a version over several (a pair.PairBackbone), whose features follow the first's."""

    first: Backbone
    others: tuple
    with_backbone: bool

    @classmethod
    def of(cls, clf) -> Networks:
        first, *others = getattr(clf.backbone, "parts", (clf.backbone,))
        return cls(first, tuple(others), clf.mode == "finetune")


@dataclass(frozen=True)
class Graphs:
    """The ONNX graphs that serve a version: the first network's record and its others' (in order),
    {"path" (relative to ROOT), "sha256", "input", "output"} each; or, when export failed, why."""

    own: dict | None
    others: tuple
    error: str | None = None


def write_version(
    root: Path, tmp: Path, result, *, params, parent: str | None, data_fingerprint: str, extra: dict | None, plot: bool
) -> dict:
    """Write the FitResult `result` as a version's files into `tmp` (under `root`, the store) and
    return its manifest, less "version" and "created_at" (ModelStore.publish adds those)."""
    nets = Networks.of(result.classifier)
    write_weights(result.classifier, nets, tmp)
    graphs = export_graphs(root, tmp, nets)
    if graphs.error:
        warnings.warn(graphs.error, stacklevel=3)  # said at publish()'s caller
    if plot and result.metrics.get("confusion_matrix"):
        plot_confusion(result.metrics, tmp / CONFUSION)
    return describe(result, nets, graphs, params=params, parent=parent, data_fingerprint=data_fingerprint, extra=extra)


def write_weights(clf, nets: Networks, tmp: Path) -> None:
    """weights.safetensors: the head, and for finetune the network's own tensors ("backbone.*")."""
    tensors = {"head.weight": torch.from_numpy(clf.weight), "head.bias": torch.from_numpy(clf.bias)}
    if nets.with_backbone:
        for key, value in nets.first.module.state_dict().items():
            tensors[f"backbone.{key}"] = value.detach().cpu().contiguous()
    save_file(tensors, str(tmp / WEIGHTS))


def export_graphs(root: Path, tmp: Path, nets: Networks) -> Graphs:
    """The ONNX graphs that serve the version: its own network's (finetune), or its backbones'
    shared ones. A network the exporter cannot handle still publishes (PyTorch serves it), and the
    manifest says why."""
    try:
        if nets.with_backbone:
            first = onnx_export.export_features(nets.first.module, nets.first.image_size, tmp / FEATURES_ONNX)
        else:
            first = onnx_export.ensure_backbone_onnx(root, nets.first)
        files = [first] + [onnx_export.ensure_backbone_onnx(root, other) for other in nets.others]
        own, *others = [
            {"path": f.relative_to(root).as_posix(), "sha256": file_sha256(f), "input": INPUT, "output": OUTPUT}
            for f in files
        ]
    except Exception as exc:  # noqa: BLE001 - any exporter failure
        return Graphs(None, (None,) * len(nets.others), f"ONNX export failed: {type(exc).__name__}: {exc}")
    return Graphs(own, tuple(others))


def describe(
    result, nets: Networks, graphs: Graphs, *, params, parent: str | None, data_fingerprint: str, extra: dict | None
) -> dict:
    """The manifest of the version (see training/storeformat.py), less its id and time."""
    clf, net = result.classifier, nets.first
    manifest = {
        "labels": clf.labels,
        "mode": clf.mode,
        "backbone": net.spec(),
        "backbone_id": net.id,
        "image_size": net.image_size,
        "contains_backbone": nets.with_backbone,
        "params": params.to_dict(),
        "metrics": result.metrics,
        "metrics_source": result.metrics_source,
        "metrics_note": getattr(result, "metrics_note", ""),
        "n_train": result.n_train,
        "n_eval": result.n_eval,
        "train_seconds": round(result.seconds, 3),
        "skipped": result.skipped,
        "data_fingerprint": data_fingerprint,
        "parent": parent,
        "extra": extra or {},
        "onnx": graphs.own,
    }
    if nets.others:  # their features follow the first network's (head.weight's columns)
        manifest["partners"] = [
            {"backbone": o.spec(), "backbone_id": o.id, "onnx": graphs.own and r}
            for o, r in zip(nets.others, graphs.others)
        ]
    if graphs.error:
        manifest["onnx_error"] = graphs.error
    return manifest
