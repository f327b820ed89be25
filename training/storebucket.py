"""The bucket side of a model store that several machines share (`ModelStore(root, remote=...)`).

The bucket keeps the same layout as a store directory (training/storeformat.py), over the whole-object
calls of training/objectstore.py. There is no rename in S3, so a publisher first claims the id
(`versions/<vid>/.claim`, a conditional put: one winner), uploads the files, the manifest LAST, and
only then replaces SERVING. A version is listed and served only when its manifest is there, so an
upload cut off half-way is never seen. Readers copy a version (and its shared ONNX graph) into the
local directory once, complete (temp dir + rename), and read it there; SERVING (and PRODUCTION,
the version applications get, with its history beside it) is polled with a HEAD at most once every
`poll` seconds, so every replica agrees within that time.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from .objectstore import ObjectExists, S3Objects
from .storeformat import MANIFEST, SERVING, served_version, serving_record, shared_graphs, write_manifest

CLAIM = ".claim"


class StoreBucket:
    def __init__(self, objects: S3Objects, root: Path, poll: float = 1.0):
        self.objects = objects
        self.root = Path(root)  # this machine's copy
        self.poll = poll
        self._stamps: dict[str, tuple] = {}  # pointer (SERVING, PRODUCTION) -> (when last asked, its stamp)

    # -- reading -----------------------------------------------------------------------------
    def manifest(self, vid: str) -> dict | None:
        raw = self.objects.get(f"versions/{vid}/{MANIFEST}")
        return None if raw is None else json.loads(raw)

    def listed(self) -> list[tuple[str, str]]:
        """(manifest key, version id) of every complete version in the bucket."""
        return [
            (key, key.split("/")[1])
            for key in self.objects.list("versions/")
            if key.count("/") == 2 and key.endswith("/" + MANIFEST)
        ]

    def serving(self) -> str | None:
        vid = served_version(self.objects.get(SERVING))
        return vid if vid and self.objects.exists(f"versions/{vid}/{MANIFEST}") else None

    def serving_stamp(self) -> tuple | None:
        return self.stamp(SERVING)

    def stamp(self, name: str) -> tuple | None:
        """A pointer object's (SERVING, PRODUCTION) ETag and time, asked at most every `poll` seconds."""
        now = time.monotonic()
        asked, stamp = self._stamps.get(name, (float("-inf"), None))
        if now - asked >= self.poll:
            stamp = self.objects.stamp(name)
            self._stamps[name] = (now, stamp)
        return stamp

    def read(self, name: str) -> bytes | None:
        """A small object at the top of the store (PRODUCTION, PRODUCTION_HISTORY.json), or None."""
        return self.objects.get(name)

    def fetch(self, vid: str, folder: Path, manifest: dict) -> None:
        """Copy version `vid` into `folder` once and completely (a temp dir renamed into place),
        with the shared ONNX graph its manifest names."""
        for path in shared_graphs(manifest):
            if (self.root / path).exists():
                continue
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            try:
                self.objects.download(path, part)
                os.replace(part, target)
            finally:
                part.unlink(missing_ok=True)
        tmp = self.root / ".tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        try:
            for key in self.objects.list(f"versions/{vid}/"):
                name = key.split("/", 2)[2]
                if "/" not in name and name not in (MANIFEST, CLAIM):
                    self.objects.download(key, tmp / name)
            write_manifest(tmp, manifest)
            try:
                os.rename(tmp, folder)
            except OSError:
                pass  # another thread copied it first
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- writing -----------------------------------------------------------------------------
    def taken_ids(self) -> list[str]:
        """Every version id the bucket knows, claimed or complete."""
        return [key.split("/")[1] for key in self.objects.list("versions/") if key.count("/") >= 2]

    def claim(self, vid: str) -> bool:
        """Take a version id in the bucket (one publisher wins; a claim without a manifest is an
        upload that never finished: its id is not used again)."""
        try:
            self.objects.put(f"versions/{vid}/{CLAIM}", b"", only_new=True)
            return True
        except ObjectExists:
            return False

    def publish(self, tmp: Path, vid: str, manifest: dict, folder: Path) -> bool:
        """Upload the version written in `tmp` as `vid`, then keep `tmp` as this machine's copy
        (`folder`). False, with nothing uploaded, when another publisher claimed `vid` first."""
        if not self.claim(vid):
            return False
        write_manifest(tmp, manifest)
        for rel in shared_graphs(manifest):
            if not self.objects.exists(rel):
                self.objects.upload(rel, self.root / rel)
        for path in sorted(tmp.iterdir()):  # files first, the manifest last: it appears complete
            if path.name != MANIFEST:
                self.objects.upload(f"versions/{vid}/{path.name}", path)
        self.objects.upload(f"versions/{vid}/{MANIFEST}", tmp / MANIFEST)
        try:
            os.rename(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        return True

    def serve(self, vid: str) -> None:
        self.write(SERVING, json.dumps(serving_record(vid)).encode())

    def write(self, name: str, data: bytes) -> None:
        """Replace a pointer object whole (every replica sees the old one or the new one)."""
        self.objects.put(name, data)
        self._stamps.pop(name, None)
