"""Which model version serves each project, loaded once and swapped when the pointer moves.

Each project has a `training.store.ModelStore` under `projects/<id>/models/`. Every request looks
at the store's SERVING pointer (a stat, no read, while it is unchanged) and loads a version only
when the pointer moved; head-mode versions share one loaded backbone (one ONNX Runtime session per
backbone graph, or one PyTorch network), so a new version costs a linear head, not a network
rebuild. A restart serves whatever the pointer names. Nothing here holds a lock while a network is
built or read from disk (see memo.Memo).

The engine (`TASVEER_ENGINE`): ONNX Runtime on CPU, PyTorch on a CUDA GPU (`auto`), or either by
name. Every version carries its ONNX graph (training/store.py); one that has none is served by
PyTorch. With `onnx` this module imports no torch.

Where the stores are (`TASVEER_STORE`): under each project's directory (default), `<dir>/<id>/`
(a directory several machines share), or `s3://bucket/prefix/<id>/`, whose versions are read into
`cache_dir/<id>/` once each (training/objectstore.py).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from pathlib import Path
from typing import Literal, TypeVar, overload

from backend.errors import NotFound
from backend.inference.memo import Memo
from training.objectstore import S3Objects, is_remote
from training.params import ParamError, TrainParams
from training.serving import load_classifier, pick_engine
from training.store import CONFUSION, ModelStore, partners

log = logging.getLogger(__name__)

INITIAL_VERSION = "INITIAL"  # the model_version of cold-start answers, before any training
T = TypeVar("T")


def _as_is(value: T) -> T:
    """`value` itself: the build of a Memo entry for something already built."""
    return value


class Serving:
    def __init__(
        self, projects_root: Path, engine: str = "auto", store: str | None = None, cache_dir: Path | None = None
    ):
        self.root = Path(projects_root)
        self.location = store
        self.cache_dir = Path(cache_dir) if cache_dir else self.root.parent / "cache" / "store"
        self._bucket = S3Objects(store) if store is not None and is_remote(store) else None
        self.engine = pick_engine(engine)
        self._lock = threading.Lock()
        self._stores: dict[str, ModelStore] = {}
        self._pointers: dict[str, tuple] = {}  # project -> (SERVING stamp, version id)
        self._backbones = Memo(limit=4)
        self._classifiers = Memo(limit=32)  # (project, version) -> Classifier

    @overload
    def store(self, project: str, create: Literal[True] = True) -> ModelStore: ...
    @overload
    def store(self, project: str, create: bool) -> ModelStore | None: ...

    def store(self, project: str, create: bool = True) -> ModelStore | None:
        """The project's ModelStore; with create=False, None when it has none yet (so asking about
        an unknown project leaves nothing behind on disk)."""
        with self._lock:
            if project not in self._stores:
                if self._bucket is not None:
                    self._stores[project] = ModelStore(self.cache_dir / project, remote=self._bucket.child(project))
                    return self._stores[project]
                root = Path(self.location) / project if self.location else self.root / project / "models"
                if not create and not root.is_dir():
                    return None
                self._stores[project] = ModelStore(root)
            return self._stores[project]

    def forget(self, project: str) -> None:
        """Drop what is loaded for a project (its directory was moved aside)."""
        with self._lock:
            self._stores.pop(project, None)
            self._pointers.pop(project, None)
        self._classifiers.drop(lambda key: key[0] == project)

    def backbone(self, params: TrainParams):
        """The shared PyTorch backbone for `params` (training, cold-start embeddings), built once."""
        from training.train import backbone_for  # torch: only where a network is trained

        if params.second_model is not None:  # two shared networks, each also usable alone
            from training.pair import PairBackbone

            return PairBackbone(
                self.backbone(dataclasses.replace(params, second_model=None)),
                self.backbone(TrainParams(model=params.second_model, tta=params.tta)),
            )
        key = (
            params.model,
            params.pretrained,
            params.image_size,
            params.filters,
            params.kernel_size,
            params.depth,
            params.tta,
        )
        return self._backbones.get(key, lambda: backbone_for(params))

    def embedding_backbone(self, project: str, params: dict | None):
        """The backbone that embeds the project's photos: the serving version's (a fine-tuned
        version embeds with its own network), else the pretrained one of the project's `params`."""
        _, classifier = self.classifier(project)
        if classifier is not None:
            return classifier.backbone
        return self.backbone(TrainParams.from_dict(params or None))

    def serving_version(self, project: str) -> str | None:
        store = self.store(project, create=False)
        stamp = store.serving_stamp() if store is not None else None
        if store is None or stamp is None:
            return None
        with self._lock:
            known = self._pointers.get(project)
        if known and known[0] == stamp:
            return known[1]
        try:
            vid = store.serving()
        except (OSError, ValueError, AttributeError) as exc:  # a corrupt SERVING pointer
            log.error(
                "project %s: the serving pointer is unreadable (%s); serving the newest good version", project, exc
            )
            vid = self._newest_good(project, store, bad=None)
        with self._lock:
            self._pointers[project] = (stamp, vid)
        return vid

    def model_version(self, project: str) -> str:
        return self.serving_version(project) or INITIAL_VERSION

    def classifier(self, project: str):
        """(version id, Classifier) serving the project, or (None, None) before its first training."""
        vid = self.serving_version(project)
        if vid is None:
            return None, None
        store = self.store(project)
        try:
            return vid, self._classifiers.get((project, vid), lambda: self._load(project, store, vid))
        except Exception as exc:  # noqa: BLE001 - a corrupt manifest or weights file: fall back, say why
            log.error(
                "project %s: model version %s cannot be loaded (%s: %s); it is skipped",
                project,
                vid,
                type(exc).__name__,
                exc,
            )
            good = self._newest_good(project, store, bad=vid)
            with self._lock:  # until the pointer moves again, requests go straight to the good one
                known = self._pointers.get(project)
                if known and known[1] == vid:
                    self._pointers[project] = (known[0], good)
            if good is None:
                return None, None
            return good, self._classifiers.get((project, good), lambda: self._load(project, store, good))

    def _newest_good(self, project: str, store: ModelStore, bad: str | None) -> str | None:
        """The newest version published before `bad` that loads, else the newest other one that does
        (a candidate that was never promoted comes last); None when none loads."""
        manifests = [m for m in reversed(store.versions()) if m["version"] != bad]
        order = [m["version"] for m in manifests if bad is not None and m["version"] < bad]
        order += [m["version"] for m in manifests if m["version"] not in order]
        for vid in order:
            try:
                self._classifiers.get((project, vid), functools.partial(self._load, project, store, vid))
            except Exception as exc:  # noqa: BLE001
                log.error(
                    "project %s: model version %s cannot be loaded either (%s: %s)",
                    project,
                    vid,
                    type(exc).__name__,
                    exc,
                )
                continue
            log.warning("project %s: serving %s instead", project, vid)
            return vid
        return None

    def _load(self, project: str, store: ModelStore, vid: str):
        manifest = store.manifest(vid)
        shared = not manifest.get("contains_backbone")
        if self.engine == "onnx" and manifest.get("onnx"):
            # one session per graph and feature kind (with or without flip averaging); a head over
            # two backbones (`second_model`) shares both
            records = [manifest, *partners(manifest)]
            keys = (
                [("onnx", str(store.root / r["onnx"]["path"]), r.get("backbone_id")) for r in records]
                if shared and all(r.get("onnx") for r in records)
                else []
            )
            reuse = [self._backbones.peek(key) for key in keys]
            classifier = load_classifier(
                store, vid, engine="onnx", backbone=reuse[0] if reuse else None, partners=reuse[1:]
            )
            parts = getattr(classifier.backbone, "parts", (classifier.backbone,))
            for key, part in zip(keys, parts):  # later head versions reuse the sessions
                self._backbones.get(key, functools.partial(_as_is, part))
        else:
            backbone = None
            if shared:
                try:
                    backbone = self.backbone(TrainParams.from_dict(manifest.get("params") or {}))
                except (ParamError, TypeError):
                    backbone = None  # load builds the one the manifest names
            classifier = load_classifier(store, vid, engine="torch", backbone=backbone)
        log.info(
            "project %s: serving model version %s with %s",
            project,
            vid,
            "ONNX Runtime" if getattr(classifier.backbone, "engine", "") == "onnx" else "PyTorch",
        )
        return classifier

    # -- versions ------------------------------------------------------------------------------------
    def versions(self, project: str) -> list[dict]:
        store = self.store(project, create=False)
        return store.versions() if store else []

    def manifest(self, project: str, vid) -> dict:
        for manifest in self.versions(project):
            if manifest.get("version") == vid:
                return manifest
        raise NotFound(f"project {project} has no model version {vid!r}")

    def rollback(self, project: str, vid: str) -> str:
        self.manifest(project, vid)
        self.store(project).rollback(vid)
        log.info("project %s: serving %s by request", project, vid)
        return vid

    def confusion_png(self, project: str, vid: str) -> Path:
        """The version's confusion-matrix PNG, drawn on first request."""
        from training.metrics import plot_confusion

        manifest = self.manifest(project, vid)  # NotFound before anything is created
        path = Path(self.store(project).fetch(vid)) / CONFUSION
        if not path.exists():
            metrics = manifest.get("metrics") or {}
            if not metrics.get("confusion_matrix"):
                raise NotFound(f"model version {vid} has no evaluation metrics")
            plot_confusion(metrics, path, title=vid)
        return path
