"""`tasveer import --skip-duplicates`: which photos of an upload are exact or near duplicates of a
photo the project holds, or of an earlier photo of the same upload, before anything is uploaded.

The importer sends the upload's files in parts to `POST /projects/<id>/duplicates/check` under one
upload id. Each part is hashed, embedded (the serving version's backbone, or the pretrained one
before the first training; the embedding cache keeps them, so the import's own prediction reuses
them) and its thumbnails made; a `DuplicateFinder` per upload (training/duplicates.py, the same
rule and thresholds as the project's duplicate groups) holds the upload's photos so far plus the
project's photos that are candidates of any of them (each one's MAX_CANDIDATES most similar at
cosine >= CANDIDATE, or the same bytes), with their thumbnails from the image cache. A photo is a
duplicate when its group holds a task (the earliest is named) or an earlier file of the upload.

An upload's finder lives in the Backend for IDLE seconds after its last part, at most UPLOADS at a
time (the oldest goes first): a lost one costs only the cross-part check of one upload.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from backend.errors import RequestError
from backend.writeback.taskindex import TaskIndex
from training.duplicates import CANDIDATE, MAX_CANDIDATES, DuplicateFinder
from training.images import ImageError
from training.layout import thumbnail
from training.neighbours import normalise, pairs_above, strongest_per_row

IDLE = 1800.0  # seconds an upload's finder is kept after its last part
UPLOADS = 16  # uploads checked at once, at most
MAX_FILES = 64  # files per part


@dataclass
class Upload:
    finder: DuplicateFinder | None = None
    names: list[str] = field(default_factory=list)  # the upload's files so far, in order
    tasks: set[int] = field(default_factory=set)  # project tasks added to the finder
    used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class UploadChecks:
    def __init__(self, service):
        self.service = service
        self._lock = threading.Lock()
        self._uploads: OrderedDict[tuple[str, str], Upload] = OrderedDict()

    def check(self, pid: str, upload_id: str | None, files: list[tuple[str, bytes]]) -> dict:
        """{"upload", "files": [{"index", "name", "duplicate_of", "exact", "error"}]} for one part."""
        if not files:
            raise RequestError("no files to check", status=400)
        if len(files) > MAX_FILES:
            raise RequestError(f"at most {MAX_FILES} files per check (got {len(files)}); send the rest in parts")
        upload_id = upload_id or uuid.uuid4().hex
        if not (0 < len(upload_id) <= 64 and all(c.isalnum() or c in "-_" for c in upload_id)):
            raise RequestError("upload must be 1-64 letters, digits, '-' or '_'")
        upload = self._upload(pid, upload_id)
        with upload.lock:
            answers = self._check_part(pid, upload, files)
        return {"project": pid, "upload": upload_id, "files": answers}

    def _upload(self, pid: str, upload_id: str) -> Upload:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, u in self._uploads.items() if now - u.used > IDLE]:
                del self._uploads[key]
            upload = self._uploads.pop((pid, upload_id), None) or Upload()
            upload.used = now
            self._uploads[(pid, upload_id)] = upload
            while len(self._uploads) > UPLOADS:
                self._uploads.popitem(last=False)
        return upload

    def _check_part(self, pid: str, upload: Upload, files: list[tuple[str, bytes]]) -> list[dict]:
        snap = self.service.snapshots.get(pid, labels=False)
        vectors, thumbs, errors = self._embed(pid, snap.version, files)
        if upload.finder is None:
            upload.finder = DuplicateFinder(vectors.shape[1])
        hashes = [hashlib.sha256(data).hexdigest() for _, data in files]
        self._add_candidates(pid, upload, snap, vectors, hashes)
        start = len(upload.names)
        upload.names += [name for name, _ in files]
        ids = [("file", start + k) for k in range(len(files))]
        upload.finder.add(ids, vectors, hashes, thumbs)
        answers = []
        for k, (name, _) in enumerate(files):
            answer = {"index": start + k, "name": name, "duplicate_of": None, "exact": False, "error": errors.get(k)}
            group = upload.finder.group_of(ids[k])
            if group is not None:
                earlier = [m for m in group.ids if m[0] == "task"] or [m for m in group.ids if m[1] < start + k]
                if earlier:
                    kind, at = earlier[0]
                    answer["duplicate_of"] = {"task": at} if kind == "task" else {"file": at, "name": upload.names[at]}
                    answer["exact"] = group.exact
            answers.append(answer)
        return answers

    def _embed(self, pid: str, version, files) -> tuple[np.ndarray, list, dict[int, str]]:
        """Unit vectors (NaN rows where unreadable), thumbnails (None there) and the errors by position."""
        backbone = self._backbone(pid)
        bad: dict[int, str] = {}
        raw = backbone.embed(
            [data for _, data in files], cache=self.service.embeddings, names=[n for n, _ in files], errors=bad
        )
        vectors = normalise(np.asarray(raw, dtype=np.float32))
        thumbs = []
        for k, (name, data) in enumerate(files):
            try:
                thumbs.append(None if k in bad else thumbnail(data, name))
            except ImageError as exc:
                bad[k] = str(exc)
                thumbs.append(None)
        for k in bad:
            vectors[k] = np.nan
        return vectors, thumbs, bad

    def _backbone(self, pid: str):
        state = self.service.projects.state(pid)
        return self.service.serving.embedding_backbone(pid, state.params)

    def _add_candidates(self, pid: str, upload: Upload, snap, vectors: np.ndarray, hashes: list[str]) -> None:
        """The project's photos that may be duplicates of this part: near by embedding, or the same
        bytes (also tasks whose embedding is not cached), each added once per upload."""
        rows: set[int] = set()
        usable = np.isfinite(vectors).all(axis=1)
        if len(snap) and usable.any():
            found = np.array(pairs_above(vectors[usable], snap.vectors, CANDIDATE)).reshape(-1, 3)
            rows = {int(c) for c in strongest_per_row(found, MAX_CANDIDATES)[:, 1]}
        wanted = set(hashes)
        same = [t for t in TaskIndex(self.service.projects.root / str(pid)).tasks() if t.digest in wanted]
        by_task = {int(snap.task_ids[r]): r for r in rows}
        new = sorted((set(by_task) | {t.id for t in same}) - upload.tasks)
        if not new:
            return
        digest_of = {t.id: t.digest for t in same}
        digest_of.update({int(snap.task_ids[r]): snap.digests[r] for r in rows})
        dim = vectors.shape[1]
        vecs = np.stack([snap.vectors[by_task[t]] if t in by_task else np.full(dim, np.nan, np.float32) for t in new])
        thumbs = [self._thumb(digest_of.get(t)) for t in new]
        assert upload.finder is not None  # made by _check_part before
        upload.finder.add([("task", t) for t in new], vecs, [digest_of.get(t) for t in new], thumbs)
        upload.tasks.update(new)

    def _thumb(self, digest: str | None):
        data = self.service.fetcher.cache.read(digest) if digest else None
        if data is None:
            return None
        try:
            return thumbnail(data, digest or "image")
        except ImageError:
            return None
