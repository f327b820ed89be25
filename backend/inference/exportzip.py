"""`GET /projects/<id>/versions/<vid>/export`: a version as one zip to download (model.onnx,
labels.json, MODEL_CARD.md, written by `training.exportgraph.export_version`).

Each zip is built once and kept under `<data dir>/cache/exports/<project>/<vid>-<manifest hash>.zip`
(the hash: a project recreated in Label Studio starts its versions at v0001 again), written beside
its final name and renamed into place, so a download never gets half a zip.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from backend.errors import RequestError
from backend.inference.memo import Memo
from backend.inference.models import Serving
from training.store import StoreError


class Exports:
    def __init__(self, serving: Serving, cache_dir: Path):
        self.serving = serving
        self.cache_dir = Path(cache_dir)
        self._built = Memo(limit=64)  # one build at a time per zip

    def zip_path(self, pid: str, vid: str) -> Path:
        """The version's zip, built on first request (NotFound for an unknown version; RequestError
        409 when it cannot be exported, e.g. it has no ONNX graph)."""
        manifest = self.serving.manifest(pid, vid)
        stamp = hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()[:12]
        target = self.cache_dir / pid / f"{vid}-{stamp}.zip"
        path = self._built.get(target, lambda: self._build(pid, vid, target))
        if not path.exists():  # the cache was cleared meanwhile
            self._built.drop(lambda key: key == target)
            path = self._built.get(target, lambda: self._build(pid, vid, target))
        return path

    def _build(self, pid: str, vid: str, target: Path) -> Path:
        if target.exists():
            return target
        from training.exportgraph import ExportError, export_version  # onnx graph surgery: only here

        store = self.serving.store(pid)
        assert store is not None  # it has this version
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{vid}."))
        try:
            try:
                export_version(store, vid, work / "export")
            except (StoreError, ExportError) as exc:
                raise RequestError(f"model version {vid} cannot be exported: {exc}", status=409) from None
            part = work / "export.zip"
            with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for file in sorted((work / "export").iterdir()):
                    if file.is_file():
                        zf.write(file, arcname=file.name)
            os.replace(part, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target
