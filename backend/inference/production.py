"""The production version of each project: what applications get from `/projects/<id>/classify` and
`tasveer export`, apart from the serving (labeling) version that moves with every training.

The store's PRODUCTION pointer (training/store.py) says which version it is; it moves only by a
deploy or a production rollback, never by a training or a `/rollback` of the serving version.
Every request looks at the pointer's stamp (a stat, or in a bucket a HEAD at most once per poll
interval) and reads it only when it moved. The model is loaded with ONNX Runtime (no torch) and held
here, apart from `models.Serving`'s: a new labeling version never replaces or evicts it. Head
versions of one backbone share one session.
"""

from __future__ import annotations

import logging
import threading
from functools import partial

from backend.errors import NotFound, RequestError
from backend.inference.memo import Memo
from backend.inference.models import Serving
from training.serving import load_classifier
from training.store import ModelStore, StoreError, partners

log = logging.getLogger(__name__)


def no_production(pid: str) -> RequestError:
    return RequestError(
        f"project {pid} has no production version: deploy one with `tasveer deploy vNNNN "
        f"--project {pid}` (or “deploy to production” on the model page)",
        status=409,
    )


def servable(vid: str, manifest: dict) -> dict:
    """`manifest`, when ONNX Runtime can serve its version; else RequestError 409."""
    if not manifest.get("onnx"):
        why = manifest.get("onnx_error") or "published before ONNX export"
        raise RequestError(
            f"model version {vid} has no ONNX graph ({why}), so /classify cannot serve it; deploy a newer version",
            status=409,
        )
    return manifest


class Production:
    def __init__(self, serving: Serving):
        self.serving = serving  # the project's stores (one ModelStore per project, shared)
        self._lock = threading.Lock()
        self._pointers: dict[str, tuple] = {}  # project -> (PRODUCTION stamp, version id)
        self._sessions = Memo(limit=4)  # (graph path, backbone id) -> OrtBackbone
        self._classifiers = Memo(limit=8)  # (project, version) -> Classifier

    def _store(self, pid: str) -> ModelStore | None:
        return self.serving.store(pid, create=False)

    def version(self, pid: str) -> str | None:
        """The production version of the project, or None (none deployed)."""
        store = self._store(pid)
        stamp = store.production_stamp() if store else None
        if store is None or stamp is None:
            return None
        with self._lock:
            known = self._pointers.get(pid)
        if known and known[0] == stamp:
            return known[1]
        try:
            vid = store.production()
        except (OSError, ValueError, AttributeError) as exc:  # a corrupt pointer: say so, serve nothing else
            log.error("project %s: the PRODUCTION pointer is unreadable (%s)", pid, exc)
            raise RequestError(
                f"project {pid}: the production pointer is unreadable; deploy a version again", status=503
            ) from None
        with self._lock:
            self._pointers[pid] = (stamp, vid)
        if known and known[1] != vid:
            log.info("project %s: production moved from %s to %s", pid, known[1], vid)
        return vid

    def shown(self, pid: str) -> str | None:
        """`version` for display: None also when the pointer is unreadable (the log says why)."""
        try:
            return self.version(pid)
        except RequestError:
            return None

    def classifier(self, pid: str, vid: str | None = None):
        """(version id, Classifier) of the production version, or of `vid` when given; RequestError
        409 when none is deployed, NotFound for an unknown version."""
        vid = vid or self.version(pid)
        if vid is None:
            raise no_production(pid)
        loaded = self._classifiers.peek((pid, vid))
        if loaded is not None:
            return vid, loaded
        store, _ = self._version(pid, vid)
        return vid, self._classifiers.get((pid, vid), lambda: self._load(pid, store, vid))

    def _version(self, pid: str, vid: str) -> tuple[ModelStore, dict]:
        """The project's store and the manifest of `vid` (NotFound when there is no such version)."""
        store = self._store(pid)
        try:
            if store is None:
                raise StoreError(vid)
            return store, store.manifest(vid)
        except StoreError:
            raise NotFound(f"project {pid} has no model version {vid!r}") from None

    def _load(self, pid: str, store: ModelStore, vid: str):
        manifest = servable(vid, store.manifest(vid))
        records = [manifest, *partners(manifest)]
        keys = (
            [(str(store.root / r["onnx"]["path"]), r.get("backbone_id")) for r in records]
            if all(r.get("onnx") for r in records)
            else []
        )
        reuse = [self._sessions.peek(key) for key in keys]
        classifier = load_classifier(
            store, vid, engine="onnx", backbone=reuse[0] if reuse else None, partners=reuse[1:]
        )
        for key, part in zip(keys, getattr(classifier.backbone, "parts", (classifier.backbone,))):
            self._sessions.get(key, partial(_same, part))  # the next head version reuses the session
        log.info("project %s: production model %s loaded (ONNX Runtime)", pid, vid)
        return classifier

    # -- moving the pointer --------------------------------------------------------------------------
    def deploy(self, pid: str, vid: str, *, by: str, via: str) -> dict:
        """Make `vid` the production version; its history entry (NotFound for an unknown version,
        RequestError 409 for one ONNX Runtime cannot serve)."""
        store, manifest = self._version(pid, vid)
        servable(vid, manifest)
        entry = store.deploy(vid, by=by, via=via)
        log.info("project %s: %s deployed to production by %s (%s)", pid, vid, by, via)
        return entry

    def rollback(self, pid: str, *, by: str, via: str) -> dict:
        """Production back to the version before the last deploy; RequestError 409 when there is none."""
        store = self._store(pid)
        try:
            if store is None:
                raise StoreError("no model versions")
            entry = store.rollback_production(by=by, via=via)
        except StoreError as exc:
            raise RequestError(f"project {pid}: cannot roll production back: {exc}", status=409) from None
        log.info("project %s: production rolled back to %s by %s (%s)", pid, entry["version"], by, via)
        return entry

    def history(self, pid: str) -> list[dict]:
        """Every deploy and production rollback, oldest first."""
        store = self._store(pid)
        return store.production_history() if store else []

    def forget(self, pid: str) -> None:
        """Drop what is loaded for a project (its directory was moved aside)."""
        with self._lock:
            self._pointers.pop(pid, None)
        self._classifiers.drop(lambda key: isinstance(key, tuple) and key[0] == pid)


def _same(value):
    return value
