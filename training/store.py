"""Versioned model store.

    ROOT/versions/<vid>/manifest.json       what the version is (labels, backbone, params, metrics...)
    ROOT/versions/<vid>/weights.safetensors head (and, for finetune, backbone) tensors
    ROOT/versions/<vid>/confusion.png       confusion matrix of its evaluation (may be drawn later)
    ROOT/versions/<vid>/features.onnx       a finetuned version's network as ONNX (features only)
    ROOT/backbones/<backbone id>-<size>.onnx a pretrained backbone as ONNX, shared by head versions
    ROOT/SERVING                            {"version": vid}: the version to serve

Every version's manifest names the ONNX graph that serves it: "onnx": {"path": relative to ROOT,
"sha256", "input", "output"}; the head is in weights.safetensors ("head.weight", "head.bias").

A version is written completely under ROOT/.tmp, then renamed into versions/ in one step, and only
then does SERVING move to it (itself replaced atomically). A crash at any point leaves either no new
version or a complete one; a half-written directory is never listed or served.

Reading (manifests, SERVING, the head as numpy, the ONNX path) imports no torch: torch, the
exporter and the PyTorch classes are imported inside publish() and load() only.

Shared by several machines: `ModelStore(cache_dir, remote=S3Objects("s3://bucket/prefix"))` keeps
the same layout in a bucket, with the same guarantee (training/storebucket.py: claim the id, the
manifest uploaded last); ROOT is then this machine's copy of the versions it has read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import write_json_atomic

if TYPE_CHECKING:
    from .backbones import Backbone
    from .classifier import Classifier
    from .objectstore import S3Objects

MANIFEST, WEIGHTS, CONFUSION, SERVING = "manifest.json", "weights.safetensors", "confusion.png", "SERVING"
FEATURES_ONNX = "features.onnx"


log = logging.getLogger(__name__)


class StoreError(LookupError):
    pass


def data_fingerprint(hashes: list[str], labels: list[str]) -> str:
    """Identity of a training set: the same (image, label) pairs in any order give the same value."""
    digest = hashlib.sha256()
    for pair in sorted(zip(hashes, labels)):
        digest.update(f"{pair[0]}\t{pair[1]}\n".encode())
    return digest.hexdigest()[:16]


def partners(manifest: dict) -> list[dict]:
    """The backbones after the first of a version over several (an ensemble, a two-backbone head),
    in head.weight's column order: {"backbone": spec, "backbone_id", "onnx"} each. Versions
    published before "partners" have one "partner"."""
    if "partners" in manifest:
        return list(manifest["partners"] or [])
    return [manifest["partner"]] if manifest.get("partner") else []


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    def __init__(self, root: str | Path, remote: S3Objects | None = None, poll: float = 1.0):
        self.root = Path(root)
        self.remote = remote  # None: ROOT is the store
        self.bucket = None
        if remote is not None:  # imported only here: the laptop default never loads it
            from .storebucket import StoreBucket

            self.bucket = StoreBucket(remote, self.root, poll)
        (self.root / "versions").mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        return self.remote.url if self.remote is not None else str(self.root)

    # -- reading -----------------------------------------------------------------------------
    def version_dir(self, vid: str) -> Path:
        if not vid or "/" in vid or vid.startswith("."):
            raise StoreError(f"bad version id {vid!r}")
        return self.root / "versions" / vid

    def manifest(self, vid: str) -> dict:
        path = self.version_dir(vid) / MANIFEST
        if path.exists():
            return json.loads(path.read_text())
        manifest = self.bucket.manifest(vid) if self.bucket is not None else None
        if manifest is None:
            raise StoreError(f"no version {vid!r} in {self.location}")
        return manifest

    def versions(self) -> list[dict]:
        """Manifests of every complete version, oldest first."""
        if self.bucket is not None:
            found = [(key, lambda vid=vid: self.manifest(vid)) for key, vid in self.bucket.listed()]
        else:
            found = [(d, lambda d=d: json.loads((d / MANIFEST).read_text())) for d in (self.root / "versions").iterdir()
                     if (d / MANIFEST).exists() and (d / WEIGHTS).exists()]
        out = []
        for where, read in found:
            try:
                manifest = read()
                manifest["created_at"], manifest["version"]  # noqa: B018 - both must be there
            except (OSError, ValueError, KeyError, TypeError) as exc:  # corrupt: skipped, said once per read
                log.error("%s: version skipped, its manifest is unreadable (%s)", where, exc)
                continue
            out.append(manifest)
        return sorted(out, key=lambda m: (m["created_at"], m["version"]))

    def serving(self) -> str | None:
        if self.bucket is not None:
            return self.bucket.serving()
        path = self.root / SERVING
        if not path.exists():
            return None
        vid = json.loads(path.read_text()).get("version")
        return vid if vid and (self.version_dir(vid) / MANIFEST).exists() else None

    def serving_stamp(self) -> tuple | None:
        """Changes whenever SERVING is replaced (new inode, time, size): a cheap check for 'is there
        a new version?' without reading the file. None while nothing serves. In a bucket: the
        object's ETag and time, asked at most every `poll` seconds."""
        if self.bucket is not None:
            return self.bucket.serving_stamp()
        try:
            st = (self.root / SERVING).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def head(self, vid: str) -> tuple[np.ndarray, np.ndarray]:
        """The version's linear head (W (C, F), b (C,)) as float32 numpy, without torch."""
        from safetensors import safe_open

        with safe_open(str(self.fetch(vid) / WEIGHTS), framework="numpy") as fh:
            return (fh.get_tensor("head.weight").astype(np.float32),
                    fh.get_tensor("head.bias").astype(np.float32))

    def onnx_path(self, vid: str, verify: bool = True, partner: int | None = None) -> Path:
        """The ONNX graph that serves `vid` (StoreError if it has none, or if the file's sha256
        is not the one its manifest recorded); `partner`: the graph of `partners(manifest)[partner]`."""
        self.fetch(vid)
        m = self.manifest(vid)
        record = partners(m)[partner].get("onnx") if partner is not None else m.get("onnx")
        if not record:
            why = m.get("onnx_error", "published before ONNX export")
            raise StoreError(f"version {vid!r} has no ONNX graph ({why}); serve it with engine='torch'")
        path = self.root / record["path"]
        if not path.exists():
            raise StoreError(f"{path}: ONNX graph of version {vid!r} is missing")
        if verify and file_sha256(path) != record["sha256"]:
            raise StoreError(f"{path}: sha256 differs from the one version {vid!r} recorded")
        return path

    def fetch(self, vid: str) -> Path:
        """The version's directory on this machine: from a bucket, copied once and completely
        (into a temp dir, renamed into place), with the shared ONNX graph it names."""
        folder = self.version_dir(vid)
        if self.bucket is not None and not (folder / MANIFEST).exists():
            self.bucket.fetch(vid, folder, self.manifest(vid))
        return folder

    # -- writing -----------------------------------------------------------------------------
    def _next_id(self) -> str:
        names = [d.name for d in (self.root / "versions").iterdir()]
        if self.bucket is not None:
            names += self.bucket.taken_ids()
        numbers = [int(n[1:]) for n in names if n.startswith("v") and n[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1:04d}"

    def publish(self, result, *, params, parent: str | None = None, data_fingerprint: str = "",
                extra: dict | None = None, serve: bool = True, plot: bool = True) -> str:
        """Write a FitResult as a new version and (by default) make it the serving one.
        `plot=False` skips drawing confusion.png (~0.3 s) for callers that draw it on demand."""
        import torch
        from safetensors.torch import save_file

        from .metrics import plot_confusion
        from .onnx_export import ensure_backbone_onnx, export_features
        from .ort import INPUT, OUTPUT

        clf: Classifier = result.classifier
        net, *others = getattr(clf.backbone, "parts", (clf.backbone,))  # a pair.PairBackbone: more than one
        tmp = self.root / ".tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        try:
            tensors = {"head.weight": torch.from_numpy(clf.weight), "head.bias": torch.from_numpy(clf.bias)}
            with_backbone = clf.mode == "finetune"
            if with_backbone:
                for key, value in net.module.state_dict().items():
                    tensors[f"backbone.{key}"] = value.detach().cpu().contiguous()
            save_file(tensors, str(tmp / WEIGHTS))
            # the ONNX graph that serves this version: its own network, or its backbone's shared one.
            # A network the exporter cannot handle still publishes (PyTorch serves it), and says why.
            onnx, records, onnx_error = None, [None] * len(others), None
            try:
                if with_backbone:
                    onnx_file = export_features(net.module, net.image_size, tmp / FEATURES_ONNX)
                else:
                    onnx_file = ensure_backbone_onnx(self.root, net)
                graphs = [onnx_file] + [ensure_backbone_onnx(self.root, other) for other in others]
                onnx, *records = [{"path": f.relative_to(self.root).as_posix(), "sha256": file_sha256(f),
                                   "input": INPUT, "output": OUTPUT} for f in graphs]
            except Exception as exc:  # noqa: BLE001 - any exporter failure
                onnx_error = f"ONNX export failed: {type(exc).__name__}: {exc}"
                warnings.warn(onnx_error, stacklevel=2)
            if plot and result.metrics.get("confusion_matrix"):
                plot_confusion(result.metrics, tmp / CONFUSION)
            manifest = {
                "labels": clf.labels, "mode": clf.mode, "backbone": net.spec(),
                "backbone_id": net.id, "image_size": net.image_size,
                "contains_backbone": with_backbone, "params": params.to_dict(),
                "metrics": result.metrics, "metrics_source": result.metrics_source,
                "metrics_note": getattr(result, "metrics_note", ""),
                "n_train": result.n_train, "n_eval": result.n_eval,
                "train_seconds": round(result.seconds, 3), "skipped": result.skipped,
                "data_fingerprint": data_fingerprint, "parent": parent, "extra": extra or {},
                "onnx": onnx,
            }
            if others:  # their features follow the first network's (head.weight's columns)
                manifest["partners"] = [{"backbone": o.spec(), "backbone_id": o.id, "onnx": onnx and r}
                                        for o, r in zip(others, records)]
            if onnx_error:
                manifest["onnx_error"] = onnx_error
            for _ in range(100):
                vid = self._next_id()
                manifest.update(version=vid, created_at=datetime.now(timezone.utc).isoformat())
                if onnx and with_backbone:
                    onnx["path"] = f"versions/{vid}/{FEATURES_ONNX}"
                if self.bucket is not None:
                    if self.bucket.publish(tmp, vid, manifest, self.version_dir(vid)):
                        break
                    continue
                write_json_atomic(tmp / MANIFEST, manifest)
                try:
                    os.rename(tmp, self.version_dir(vid))  # atomic; fails if vid exists
                    break
                except OSError:
                    time.sleep(0.01)  # another publisher took this id
            else:
                raise StoreError("could not allocate a version id")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        clf.version = vid
        if serve:
            self.rollback(vid)
        return vid

    def rollback(self, vid: str) -> None:
        """Serve `vid` (any complete version, older or newer)."""
        self.manifest(vid)
        if self.bucket is not None:
            self.bucket.serve(vid)
            return
        write_json_atomic(self.root / SERVING, {"version": vid})

    # -- loading -----------------------------------------------------------------------------
    def load(self, vid: str | None = None, backbone: Backbone | None = None) -> Classifier:
        """Load a version (default: the serving one) for PyTorch (torchload.load_torch). For head-mode
        versions a loaded `backbone` (or pair) with the same id is reused, so a new version costs no
        network rebuild. (serving.load_classifier picks ONNX Runtime or PyTorch.)"""
        from .torchload import load_torch

        return load_torch(self, vid or self.serving(), backbone)
