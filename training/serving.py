"""Load a stored version for prediction with either engine, behind one contract
(classifier.Classifier: `predict_proba(blobs, cache=None, names=None, errors=None)`, `predict`,
`labels`, `version`, `backbone.embed(...)`).

    engine="onnx":  ONNX Runtime on CPU; imports no torch.
    engine="torch": PyTorch (CUDA when there is a GPU, else CPU).
    engine="auto":  PyTorch when a CUDA GPU is usable, ONNX Runtime otherwise. Torch is only
                    imported to ask about CUDA when an NVIDIA device is present at all.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from .classifier import Classifier
from .ort import OrtBackbone
from .pair import PairBackbone
from .store import ModelStore, StoreError
from .store import partners as partners_of

ENGINES = ("auto", "onnx", "torch")


def cuda_usable() -> bool:
    """True when PyTorch is importable and sees a CUDA device."""
    if "torch" not in sys.modules:  # cheap checks first: no torch, no driver, hidden devices
        if importlib.util.find_spec("torch") is None or os.environ.get("CUDA_VISIBLE_DEVICES") == "":
            return False
        if not (os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidia0")):
            return False
    try:
        import torch
    except ImportError:  # also when torch is blocked (sys.modules["torch"] = None)
        return False
    return torch.cuda.is_available()


def pick_engine(engine: str = "auto", device=None) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if engine != "auto":
        return engine
    if device is not None:
        return "torch" if str(device).startswith("cuda") else "onnx"
    return "torch" if cuda_usable() else "onnx"


def resolve(store: ModelStore, vid: str | None) -> str:
    vid = vid or store.serving()
    if vid is None:
        raise StoreError(f"no version is serving in {store.root}")
    return vid


def load_onnx(
    store: ModelStore,
    vid: str | None = None,
    backbone: OrtBackbone | None = None,
    threads: int | None = None,
    partners: list | None = None,
) -> Classifier:
    """A version served by ONNX Runtime, torch-free. A given `backbone` (OrtBackbone), and for a
    version over several backbones the given `partners`, is reused when it runs the same graph
    file, so head versions of one backbone share one session."""
    vid = resolve(store, vid)
    m = store.manifest(vid)
    served: OrtBackbone | PairBackbone = _session(store, vid, m, [backbone], threads, None)
    more = [_session(store, vid, record, partners or [], threads, i) for i, record in enumerate(partners_of(m))]
    if more:  # an ensemble or a head over two backbones (params `second_model`)
        served = PairBackbone(served, *more)
    weight, bias = store.head(vid)
    return Classifier(served, weight, bias, m["labels"], mode=m["mode"], version=vid)


def _session(store: ModelStore, vid: str, record: dict, given: list, threads, partner: int | None) -> OrtBackbone:
    """One of `given` when it runs the graph `record` (a manifest, or one of its partners) names,
    else a new session."""
    path = store.onnx_path(vid, verify=False, partner=partner)
    for session in given:
        if session is not None and session.path == path and session.id == record["backbone_id"]:
            return session
    store.onnx_path(vid, verify=True, partner=partner)  # a new session: check the file is the one recorded
    return OrtBackbone(path, record["backbone"], record["backbone_id"], threads=threads)


def load_classifier(
    store: ModelStore,
    vid: str | None = None,
    engine: str = "auto",
    device=None,
    backbone=None,
    partners: list | None = None,
) -> Classifier:
    """Load `vid` (default: the serving version) with the engine asked for (see module doc).
    `backbone` (and `partners`, the others of a two-backbone head): loaded backbones of the same
    engine to reuse for head versions."""
    vid = resolve(store, vid)
    chosen = pick_engine(engine, device)
    if chosen == "onnx" and engine == "auto" and not store.manifest(vid).get("onnx"):
        chosen = "torch"  # an old version without a graph: PyTorch can still serve it
    if chosen == "onnx":
        return load_onnx(
            store,
            vid,
            backbone if isinstance(backbone, OrtBackbone) else None,
            partners=[p for p in partners or [] if isinstance(p, OrtBackbone)],
        )
    clf = store.load(vid, backbone=None if isinstance(backbone, OrtBackbone) else backbone)
    if device is not None and str(clf.backbone.device) != str(device):
        import torch

        from .torchload import torch_parts

        for part in torch_parts(clf):
            part.device = torch.device(device)
            part.module.to(part.device)
    return clf
