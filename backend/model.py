"""`TasveerModel`: everything the Label Studio ML backend does, behind thin HTTP routes.

Layout under the data dir:
    projects/<id>/state.json        what /setup said (hostname, token, labeling config, params)
    projects/<id>/models/           the project's training.store.ModelStore (versions + serving pointer)
    cache/embeddings.sqlite         one embedding cache shared by all projects (training.cache)
    cache/blobs/, cache/urls.sqlite downloaded image bytes, content-addressed (backend.fetch)

Cold start: before a project's first training there is no model. `/predict` then answers every
task with the *first* label of the labeling config, score 1/C (C = number of labels: a uniform
guess, deliberately low so uncertainty sampling treats every task alike) and model_version
"INITIAL". No image is downloaded for a cold-start answer.

Serving: the newest good version is the store's serving pointer. Every predict checks it (one
small file read) and loads a new version only when the pointer moved; head-mode versions share
the already loaded backbone, so a new version costs a linear head, not a network rebuild.
A backend restart serves whatever the pointer names; nothing is retrained.

Training never runs inside a request: webhooks schedule a job on the `JobRunner` (see jobs.py for
coalescing) and answer at once. A job pulls the project's current annotations from Label Studio,
fetches the images (disk cache), calls `training.train.fit`, and publishes atomically. A failed
job publishes nothing; the previous version keeps serving.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from training.cache import EmbeddingCache
from training.images import content_hash
from training.params import ParamError, TrainParams
from training.store import CONFUSION, ModelStore, data_fingerprint  # torch: imported at start-up, not in /setup
from training.train import backbone_for, fit

from .auth import LSAuth
from .fetch import BlobCache, FetchError, ImageFetcher
from .jobs import Job, JobRunner, SkipJob
from .labelconfig import LabelConfig, LabelConfigError, parse_label_config
from .lsapi import LabelStudioAPI
from .settings import Settings
from .state import ProjectIdError, ProjectState, StateStore, parse_project

log = logging.getLogger(__name__)

INITIAL_VERSION = "INITIAL"
PREDICT_CHUNK = 32  # images per decode + forward pass in /predict
TRAIN_ACTIONS = {
    "ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED",
    "ANNOTATION_DELETED", "ANNOTATIONS_DELETED", "TASKS_DELETED", "START_TRAINING",
}


class RequestError(ValueError):
    """Bad input from the caller (-> HTTP 4xx). `status` is the HTTP code to answer."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class NotFound(RequestError):
    def __init__(self, message: str):
        super().__init__(message, status=404)


def parse_extra_params(extra) -> dict:
    """LS `extra_params` (null, a JSON object, or a JSON string of one) -> validated params dict."""
    if extra is None or extra == "" or extra == {}:
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError as exc:
            raise ParamError(f"extra_params is not valid JSON ({exc})") from None
    if not isinstance(extra, dict):
        raise ParamError(f"extra_params must be a JSON object of training parameters; got {type(extra).__name__}")
    if not extra:
        return {}
    params = TrainParams.from_dict(extra)
    check_model_name(params.model)
    return params.to_dict()


def check_model_name(name: str) -> None:
    """Refuse a model name no backbone builder knows, at /setup rather than at the first training."""
    from training.backbones import check_model_name as check

    try:
        check(name)
    except ValueError as exc:
        raise ParamError(str(exc)) from None


class TasveerModel:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.states = StateStore(self.data_dir / "projects")
        self.embeddings = EmbeddingCache(self.data_dir / "cache")
        self.fetcher = ImageFetcher(
            BlobCache(self.data_dir / "cache"),
            max_bytes=settings.max_image_bytes,
            timeout=settings.fetch_timeout,
            workers=settings.fetch_workers,
            allowed_hosts=settings.allowed_hosts,
            media_dir=settings.ls_media_dir,
        )
        self.jobs = JobRunner(self._train_job)
        self._bg = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasks-created")
        self.background: deque[dict] = deque(maxlen=100)  # TASKS_CREATED prediction runs
        self._lock = threading.RLock()
        self._stores: dict[str, object] = {}
        self._backbones: dict[tuple, object] = {}
        self._loaded: dict[str, tuple] = {}  # project -> (vid, Classifier, SERVING file stamp)
        self._auths: dict[tuple, LSAuth] = {}
        self._configs: OrderedDict[str, LabelConfig] = OrderedDict()

    def close(self) -> None:
        self.jobs.shutdown()
        self._bg.shutdown(wait=True, cancel_futures=True)
        self.fetcher.close()

    # -- small helpers ---------------------------------------------------------------------------
    def config(self, xml: str) -> LabelConfig:
        with self._lock:
            if xml in self._configs:
                self._configs.move_to_end(xml)
                return self._configs[xml]
        parsed = parse_label_config(xml)
        with self._lock:
            self._configs[xml] = parsed
            while len(self._configs) > 32:
                self._configs.popitem(last=False)
        return parsed

    def auth(self, hostname: str | None, token: str | None) -> LSAuth:
        key = (hostname, token)
        with self._lock:
            if key not in self._auths:
                self._auths[key] = LSAuth(hostname or "", token)
            return self._auths[key]

    def connection(self, state: ProjectState | None) -> tuple[str | None, str | None]:
        hostname = (state.hostname if state else None) or self.settings.label_studio_url
        token = (state.token if state else None) or self.settings.label_studio_api_key
        return (hostname.rstrip("/") if hostname else None), token

    def store(self, project: str, create: bool = True):
        """The project's ModelStore; with create=False, None when the project has none yet (so
        asking about an unknown project leaves nothing behind on disk)."""
        with self._lock:
            if project not in self._stores:
                root = self.states.project_dir(project) / "models"
                if not create and not root.is_dir():
                    return None
                self._stores[project] = ModelStore(root)
            return self._stores[project]

    def backbone(self, params: TrainParams):
        """The shared backbone for params (built once per process)."""
        key = (params.model, params.pretrained, params.image_size, params.filters, params.kernel_size, params.depth)
        with self._lock:
            if key not in self._backbones:
                self._backbones[key] = backbone_for(params)
            return self._backbones[key]

    def project_ids(self) -> list[str]:
        return self.states.projects()

    # -- /setup ------------------------------------------------------------------------------------
    def setup(self, project, schema, hostname=None, access_token=None, extra_params=None) -> str:
        """Validate and remember the project's config; return the serving model_version."""
        try:
            pid, created = parse_project(project)
        except ProjectIdError as exc:
            raise RequestError(str(exc)) from None
        try:
            self.config(schema)
        except LabelConfigError as exc:
            raise RequestError(f"labeling config not supported: {exc}") from None
        try:
            params = parse_extra_params(extra_params)
        except ParamError as exc:
            raise RequestError(f"bad extra_params: {exc}") from None
        if hostname is not None and not isinstance(hostname, str):
            raise RequestError("hostname must be a string")
        if access_token is not None and not isinstance(access_token, str):
            raise RequestError("access_token must be a string")
        with self._lock:
            state = self.states.load(pid)
            if state is not None and created and state.created and state.created != created:
                log.warning("project %s was recreated (%s -> %s): starting it fresh", pid, state.created, created)
                self.states.retire(pid, state.created)
                self._stores.pop(pid, None)
                self._loaded.pop(pid, None)
                state = None
            new = ProjectState(
                project=pid,
                created=created or (state.created if state else None),
                hostname=(hostname.rstrip("/") if hostname else None) or (state.hostname if state else None),
                token=access_token or (state.token if state else None),
                label_config=schema,
                params=params,
            )
            if state is None or {**state.to_dict(), "updated_at": 0} != {**new.to_dict(), "updated_at": 0}:
                self.states.save(new)
        return self.model_version(pid)

    def model_version(self, project: str) -> str:
        store = self.store(project, create=False)
        return (store.serving() if store else None) or INITIAL_VERSION

    # -- serving -----------------------------------------------------------------------------------
    def serving_classifier(self, project: str):
        """(vid, Classifier) of the project's serving version, or (None, None) before training."""
        store = self.store(project, create=False)
        if store is None:
            return None, None
        try:  # cheap check: the pointer file is replaced (new inode / mtime) on every publish/rollback
            st = (store.root / "SERVING").stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None, None
        loaded = self._loaded.get(project)
        if loaded and loaded[2] == stamp:
            return loaded[0], loaded[1]
        vid = store.serving()
        if vid is None:
            return None, None
        with self._lock:
            loaded = self._loaded.get(project)
            if loaded and loaded[0] == vid:
                self._loaded[project] = (vid, loaded[1], stamp)
                return vid, loaded[1]
            manifest = store.manifest(vid)
            backbone = None
            if not manifest.get("contains_backbone"):
                try:
                    backbone = self.backbone(TrainParams.from_dict(manifest.get("params") or {}))
                except (ParamError, TypeError):
                    backbone = None
            classifier = store.load(vid, backbone=backbone)
            self._loaded[project] = (vid, classifier, stamp)
            log.info("project %s: serving model version %s", project, vid)
            return vid, classifier

    # -- /predict ----------------------------------------------------------------------------------
    def predict(self, tasks: list[dict], context=None, *, project=None, label_config: str | None = None) -> list[dict]:
        """One result per task, in task order (see module docstring for the cold start)."""
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise RequestError("tasks must be a list of task objects")
        pid = None
        if project is not None:
            try:
                pid, _ = parse_project(project)
            except ProjectIdError as exc:
                raise RequestError(str(exc)) from None
        elif tasks and isinstance(tasks[0].get("project"), int):
            pid = str(tasks[0]["project"])
        state = self.states.load(pid) if pid else None
        xml = label_config or (state.label_config if state else None)
        if not xml:
            raise RequestError("no labeling config: send label_config or call /setup first")
        try:
            cfg = self.config(xml)
        except LabelConfigError as exc:
            raise RequestError(f"labeling config not supported: {exc}") from None
        if not tasks:
            return []

        vid, classifier = self.serving_classifier(pid) if pid else (None, None)
        columns = []
        if classifier is not None:
            columns = [(label, classifier.labels.index(label)) for label in cfg.labels if label in classifier.labels]
        if classifier is None or not columns:
            return [self._cold(cfg) for _ in tasks]

        names = [f"task {t.get('id', '?')}" for t in tasks]
        results: list[dict | None] = [None] * len(tasks)
        todo = []  # (index, url)
        for i, task in enumerate(tasks):
            url = (task.get("data") or {}).get(cfg.data_key) if isinstance(task.get("data"), dict) else None
            if not isinstance(url, str) or not url:
                results[i] = self._error(vid, f"{names[i]}: no image URL in data[{cfg.data_key!r}]")
            else:
                todo.append((i, url))
        hostname, token = self.connection(state)
        auth = self.auth(hostname, token) if hostname else None
        cols = [c for _, c in columns]

        def download(chunk):
            return self.fetcher.fetch_many([(names[i], url) for i, url in chunk], hostname=hostname, auth=auth)

        # Downloads of the next chunk overlap the network's work on this one (one decode + forward
        # pass per chunk, never per task): the CPU is not left idle while Label Studio serves files.
        chunks = [todo[k : k + PREDICT_CHUNK] for k in range(0, len(todo), PREDICT_CHUNK)]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as prefetch:
            pending = prefetch.submit(download, chunks[0]) if chunks else None
            for k, chunk in enumerate(chunks):
                fetched = pending.result()
                if k + 1 < len(chunks):
                    pending = prefetch.submit(download, chunks[k + 1])
                good = []
                for (i, url), got in zip(chunk, fetched):
                    if isinstance(got, FetchError):
                        results[i] = self._error(vid, str(got))
                    else:
                        good.append((i, got))
                if not good:
                    continue
                errors: dict[int, str] = {}
                proba = classifier.predict_proba(
                    [blob for _, blob in good], cache=self.embeddings,
                    names=[names[i] for i, _ in good], errors=errors,
                )
                for row, (i, _) in enumerate(good):
                    if row in errors or not np.all(np.isfinite(proba[row, cols])):
                        results[i] = self._error(vid, errors.get(row, f"{names[i]}: prediction failed"))
                        continue
                    sub = proba[row, cols]
                    best = int(np.argmax(sub))
                    results[i] = self._result(cfg, columns[best][0], float(sub[best]), vid)
        return results

    @staticmethod
    def _result(cfg: LabelConfig, label: str, score: float, vid: str) -> dict:
        return {
            "result": [{
                "from_name": cfg.from_name, "to_name": cfg.to_name, "type": "choices",
                "value": {"choices": [label]},
            }],
            "score": min(1.0, max(0.0, score)),
            "model_version": vid,
        }

    def _cold(self, cfg: LabelConfig) -> dict:
        return self._result(cfg, cfg.labels[0], 1.0 / len(cfg.labels), INITIAL_VERSION)

    @staticmethod
    def _error(vid: str, message: str) -> dict:
        return {"result": [], "score": 0.0, "model_version": vid, "error": message}

    # -- /webhook ----------------------------------------------------------------------------------
    def fit(self, event: str, data: dict) -> dict:
        """Handle a webhook: schedule training or background prediction; never block on either."""
        project = data.get("project")
        if project is None and isinstance(data.get("annotation"), dict):
            project = data["annotation"].get("project")
        try:
            pid, created = parse_project(project)
        except ProjectIdError:
            raise RequestError(f"{event}: webhook has no project id") from None
        if event in TRAIN_ACTIONS:
            if not self._ensure_state(pid, created, data):
                return {"status": "ignored", "reason": f"project {pid} is not set up (no /setup yet)"}
            job = self.jobs.submit(pid, event)
            return {"status": "scheduled", "job": job.id, "job_state": job.state, "coalesced": job.requests}
        if event == "TASKS_CREATED":
            tasks = data.get("tasks")
            if not isinstance(tasks, list):
                raise RequestError("TASKS_CREATED: tasks must be a list")
            if not self._ensure_state(pid, created, data):
                return {"status": "ignored", "reason": f"project {pid} is not set up (no /setup yet)"}
            record = {"project": pid, "tasks": len(tasks), "state": "queued", "submitted_at": time.time()}
            self.background.append(record)
            self._bg.submit(self._predict_new_tasks, pid, tasks, record)
            return {"status": "scheduled", "predict_tasks": len(tasks)}
        return {"status": "ignored", "reason": f"action {event} needs no work"}

    def _ensure_state(self, pid: str, created: str | None, data: dict) -> bool:
        if self.states.load(pid) is not None:
            return True
        project = data.get("project") if isinstance(data.get("project"), dict) else {}
        xml = project.get("label_config")
        if xml and self.settings.label_studio_url and self.settings.label_studio_api_key:
            try:  # the fallback connection from the environment
                self.setup(pid, xml)
                return True
            except RequestError as exc:
                log.warning("project %s: cannot set up from webhook: %s", pid, exc)
        return False

    def _predict_new_tasks(self, pid: str, tasks: list[dict], record: dict) -> None:
        record["state"] = "running"
        try:
            state = self.states.load(pid)
            results = self.predict(tasks, project=pid, label_config=state.label_config if state else None)
            predictions = [
                {"task": t["id"], "result": r["result"], "score": r["score"], "model_version": r["model_version"]}
                for t, r in zip(tasks, results)
                if r.get("result") and isinstance(t.get("id"), int)
            ]
            hostname, token = self.connection(state)
            created = LabelStudioAPI(self.auth(hostname, token)).import_predictions(int(pid), predictions)
            record.update(state="done", written=created, errors=sum(1 for r in results if "error" in r))
        except Exception as exc:
            log.error("project %s: predicting %d new task(s) failed: %s", pid, len(tasks), exc)
            record.update(state="failed", error=f"{type(exc).__name__}: {exc}")
        record["finished_at"] = time.time()

    # -- training job --------------------------------------------------------------------------------
    def _train_job(self, pid: str, job: Job) -> dict:
        state = self.states.load(pid)
        if state is None or not state.label_config:
            raise SkipJob(f"project {pid} is not set up")
        cfg = self.config(state.label_config)
        params = TrainParams.from_dict(state.params or None)
        hostname, token = self.connection(state)
        if not hostname:
            raise RuntimeError(f"project {pid}: no Label Studio hostname (set LABEL_STUDIO_URL)")
        auth = self.auth(hostname, token)
        examples, notes = LabelStudioAPI(auth).annotated_examples(int(pid), cfg)
        if not examples:
            raise SkipJob(f"project {pid}: no usable annotations yet")
        fetched = self.fetcher.fetch_many(
            [(f"task {e.task_id}", e.image) for e in examples], hostname=hostname, auth=auth
        )
        blobs, labels, names, used = [], [], [], []
        for example, got in zip(examples, fetched):
            if isinstance(got, FetchError):
                notes.append(str(got))
                continue
            blobs.append(got)
            labels.append(example.label)
            names.append(f"task {example.task_id}")
            used.append(example)
        if len(set(labels)) < 2:
            raise SkipJob(f"project {pid}: need annotated images of at least 2 labels (have {sorted(set(labels))})")

        fingerprint = data_fingerprint([content_hash(b) for b in blobs], labels)
        store = self.store(pid)
        parent = store.serving()
        if parent is not None:
            last = store.manifest(parent)
            if (last.get("data_fingerprint") == fingerprint and last.get("params") == params.to_dict()
                    and list(last.get("labels") or []) == list(cfg.labels)):
                raise SkipJob(f"project {pid}: annotations unchanged since version {parent}")

        backbone = self.backbone(params) if params.mode == "head" else None
        result = fit(blobs, labels, list(cfg.labels), params, cache=self.embeddings, backbone=backbone, names=names)
        extra = {
            "project": pid,
            "trigger": job.reason,
            "requests": job.requests,
            "job": job.id,
            "tasks": [e.task_id for e in used],
            "annotations": [e.annotation_id for e in used],
            "skipped": notes + [f"{k}: {v}" for k, v in (getattr(result, "skipped", None) or {}).items()],
            "metrics_source": getattr(result, "metrics_source", None),
        }
        # confusion.png is drawn on demand (confusion_png): publishing stays fast
        vid = store.publish(result, params=params, parent=parent, data_fingerprint=fingerprint, extra=extra,
                            plot=False)
        log.info("project %s: published %s (%d examples, %.1f s)", pid, vid, len(blobs), result.seconds)
        return {"version": vid, "n_train": result.n_train, "metrics": {
            k: result.metrics.get(k) for k in ("accuracy", "macro_f1", "n")}}

    # -- versions, metrics, rollback ---------------------------------------------------------------------
    def versions(self, project: str) -> list[dict]:
        store = self.store(project, create=False)
        return store.versions() if store else []

    def rollback(self, project, vid) -> str:
        try:
            pid, _ = parse_project(project)
        except ProjectIdError as exc:
            raise RequestError(str(exc)) from None
        if not isinstance(vid, str) or not vid:
            raise RequestError('body must be {"version": "<model version>"}')
        known = {m.get("version") for m in self.versions(pid)}
        if vid not in known:
            raise NotFound(f"project {pid} has no model version {vid!r}")
        self.store(pid).rollback(vid)
        log.info("project %s: rolled back to %s", pid, vid)
        return vid

    def confusion_png(self, project: str, vid: str) -> Path:
        from training.metrics import plot_confusion

        store = self.store(project)
        known = {m.get("version"): m for m in self.versions(project)}
        if vid not in known:
            raise NotFound(f"project {project} has no model version {vid!r}")
        path = Path(store.version_dir(vid)) / CONFUSION
        if not path.exists():
            metrics = known[vid].get("metrics") or {}
            if not metrics.get("confusion_matrix"):
                raise NotFound(f"model version {vid} has no evaluation metrics")
            plot_confusion(metrics, path, title=vid)
        return path
