"""Versioned model store: the facade over its on-disk format (training/storeformat.py: the layout,
the manifest, SERVING), its writer (training/storepublish.py), its bucket side
(training/storebucket.py) and its PyTorch loader (training/torchload.py). None of them imports this
module back.

Every version's manifest names the ONNX graph that serves it: "onnx": {"path": relative to ROOT,
"sha256", "input", "output"}; the head is in weights.safetensors ("head.weight", "head.bias").

A version is written completely under ROOT/.tmp, then renamed into versions/ in one step, and only
then does SERVING move to it (itself replaced atomically). A crash at any point leaves either no new
version or a complete one; a half-written directory is never listed or served. PRODUCTION (the
version applications get) moves by `deploy` / `rollback_production` only, replaced the same way,
then its history; a crash between loses no entry (PRODUCTION carries its own).

Reading (manifests, SERVING, the head as numpy, the ONNX path) imports no torch: torch, the
exporter and the PyTorch classes are imported inside publish() and load() only.

Shared by several machines: `ModelStore(cache_dir, remote=S3Objects("s3://bucket/prefix"))` keeps
the same layout in a bucket, with the same guarantee (training/storebucket.py: claim the id, the
manifest uploaded last); ROOT is then this machine's copy of the versions it has read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import write_json_atomic
from .storeformat import (  # noqa: F401 - re-exported
    CONFUSION,
    FEATURES_ONNX,
    MANIFEST,
    PRODUCTION,
    PRODUCTION_HISTORY,
    SERVING,
    WEIGHTS,
    StoreError,
    check_version_id,
    data_fingerprint,
    file_sha256,
    history_with,
    is_complete,
    own_graph,
    partners,
    production_entry,
    read_manifest,
    rollback_target,
    serving_record,
    write_manifest,
)
from .storeproduction import ProductionPointer

if TYPE_CHECKING:
    from .backbones import Backbone
    from .classifier import Classifier
    from .objectstore import S3Objects

__all__ = [
    "CONFUSION",
    "FEATURES_ONNX",
    "MANIFEST",
    "SERVING",
    "WEIGHTS",
    "ModelStore",
    "StoreError",
    "data_fingerprint",
    "file_sha256",
    "partners",
]

log = logging.getLogger(__name__)


class ModelStore(ProductionPointer):
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
        return self.root / "versions" / check_version_id(vid)

    def manifest(self, vid: str) -> dict:
        folder = self.version_dir(vid)
        if (folder / MANIFEST).exists():
            return read_manifest(folder)
        manifest = self.bucket.manifest(vid) if self.bucket is not None else None
        if manifest is None:
            raise StoreError(f"no version {vid!r} in {self.location}")
        return manifest

    def versions(self) -> list[dict]:
        """Manifests of every complete version, oldest first."""
        found: list[tuple[str | Path, Callable[[], dict]]]
        if self.bucket is not None:
            found = [(key, partial(self.manifest, vid)) for key, vid in self.bucket.listed()]
        else:
            found = [(d, partial(read_manifest, d)) for d in (self.root / "versions").iterdir() if is_complete(d)]
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
        return self._stamp(SERVING)

    def _stamp(self, name: str) -> tuple | None:
        if self.bucket is not None:
            return self.bucket.stamp(name)
        try:
            st = (self.root / name).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def head(self, vid: str) -> tuple[np.ndarray, np.ndarray]:
        """The version's linear head (W (C, F), b (C,)) as float32 numpy, without torch."""
        from safetensors import safe_open

        with safe_open(str(self.fetch(vid) / WEIGHTS), framework="numpy") as fh:
            return (fh.get_tensor("head.weight").astype(np.float32), fh.get_tensor("head.bias").astype(np.float32))

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

    def publish(
        self,
        result,
        *,
        params,
        parent: str | None = None,
        data_fingerprint: str = "",
        extra: dict | None = None,
        serve: bool = True,
        plot: bool = True,
    ) -> str:
        """Write a FitResult as a new version and (by default) make it the serving one.
        `plot=False` skips drawing confusion.png (~0.3 s) for callers that draw it on demand."""
        from .storepublish import write_version  # torch and the exporter: only where a version is written

        tmp = self.root / ".tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        try:
            manifest = write_version(
                self.root,
                tmp,
                result,
                params=params,
                parent=parent,
                data_fingerprint=data_fingerprint,
                extra=extra,
                plot=plot,
            )
            vid = self._commit(tmp, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        result.classifier.version = vid
        if serve:
            self.rollback(vid)
        return vid

    def _commit(self, tmp: Path, manifest: dict) -> str:
        """Give the version written in `tmp` the next free id and make it a version in one step: a
        rename here, or in a bucket a claimed id and the manifest uploaded last (storebucket.py)."""
        for _ in range(100):
            vid = self._next_id()
            manifest.update(version=vid, created_at=datetime.now(UTC).isoformat())
            if manifest["onnx"] and manifest["contains_backbone"]:
                manifest["onnx"]["path"] = own_graph(vid)
            if self.bucket is not None:
                if self.bucket.publish(tmp, vid, manifest, self.version_dir(vid)):
                    return vid
                continue
            write_manifest(tmp, manifest)
            try:
                os.rename(tmp, self.version_dir(vid))  # atomic; fails if vid exists
                return vid
            except OSError:
                time.sleep(0.01)  # another publisher took this id
        raise StoreError("could not allocate a version id")

    def rollback(self, vid: str) -> None:
        """Serve `vid` (any complete version, older or newer)."""
        self.manifest(vid)
        if self.bucket is not None:
            self.bucket.serve(vid)
            return
        write_json_atomic(self.root / SERVING, serving_record(vid))

    # -- loading -----------------------------------------------------------------------------
    def load(self, vid: str | None = None, backbone: Backbone | None = None) -> Classifier:
        """Load a version (default: the serving one) for PyTorch (torchload.load_torch). For head-mode
        versions a loaded `backbone` (or pair) with the same id is reused, so a new version costs no
        network rebuild. (serving.load_classifier picks ONNX Runtime or PyTorch.)"""
        from .torchload import load_torch

        vid = vid or self.serving()
        if vid is None:
            raise StoreError(f"no version is serving in {self.location}")
        return load_torch(vid, self.manifest(vid), self.fetch(vid), backbone)
