"""`Backend`: the parts of the ML backend, built once per process and held by the app.

    projects/<id>/state.json        what /setup said (hostname, token, labeling config, params)
    projects/<id>/models/           the project's training.store.ModelStore (versions + serving pointer)
    projects/<id>/TRAINING_OWED     a training was asked for and has not finished: run again on start
    projects/<id>/train.lock        held (flock) while a training runs: one at a time, across processes
    projects/<id>/API_KEY.json      the hash of the project's API key for /classify (projects/apikeys.py)
    cache/embeddings.sqlite         one embedding cache shared by all projects (training.cache)
    cache/blobs/, cache/urls.sqlite downloaded image bytes, content-addressed (blobcache.BlobCache)
    cache/exports/<id>/             versions' export zips, built on first download (inference/exportzip.py)

| part | module | job |
| --- | --- | --- |
| `projects` | projects/registry.py | labeling config, params and connection per project |
| `serving` | inference/models.py | stores, shared backbones, the loaded serving version |
| `predictor` | inference/predictor.py | `/predict` |
| `production`, `classifier` | inference/production.py, classify.py | the version applications get, `/classify` |
| `api_keys`, `exports` | projects/apikeys.py, inference/exportzip.py | `/classify` API keys; versions' export zips |
| `trainer` + `jobs` | jobs/trainer.py, jobs/runner.py | the training job, run in the background, coalesced (below) |
| `refresher` | writeback/refresh.py | after a publish or rollback: every task's prediction in Label Studio current |
| `writer` | writeback/newtasks.py | predictions of new tasks written back to Label Studio |
| `curator` | collection/curator.py | duplicate groups and unusual photos, updated by the two write-backs |

Trainings run in this process's threads; in a child process each with `TASVEER_TRAIN_IN=process`
(jobs/childtrainer.py, workers/trainchild.py); on RQ workers with `REDIS_URL` (jobs/redisrunner.py,
workers/rqtask.py, workers/rqworker.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from backend.blobcache import BlobCache
from backend.collection.curator import give_way
from backend.collection.layouts import Layouts
from backend.collection.snapshot import Snapshots
from backend.collection.uploadcheck import UploadChecks
from backend.errors import RequestError
from backend.fetch import ImageFetcher
from backend.inference.classify import Classify
from backend.inference.exportzip import Exports
from backend.inference.models import Serving
from backend.inference.predictor import Predictor
from backend.inference.production import Production
from backend.jobs.counter import TRAINING_OWED, AnnotationCounter
from backend.jobs.runner import Job, JobRunner, JobTrainer, Runner
from backend.projects.apikeys import ApiKeys
from backend.projects.registry import Projects
from backend.settings import Settings
from backend.writeback.newtasks import PredictionWriter
from backend.writeback.opentasks import OpenTasks
from backend.writeback.refresh import Refresher
from backend.writeback.refreshlane import RefreshLane
from training.atomic import write_json_atomic
from training.cache import EmbeddingCache
from training.params import SERVING_ONLY

log = logging.getLogger(__name__)


class Backend:
    def __init__(self, settings: Settings, resume: bool = True, refresh_beside: bool = False):
        self.settings = settings
        data_dir = settings.data_dir
        self.projects = Projects(settings)
        self.serving = Serving(
            self.projects.root, engine=settings.engine, store=settings.store, cache_dir=data_dir / "cache" / "store"
        )
        self.embeddings = EmbeddingCache(data_dir / "cache")
        self.fetcher = ImageFetcher(
            BlobCache(data_dir / "cache"),
            max_bytes=settings.max_image_bytes,
            timeout=settings.fetch_timeout,
            workers=settings.fetch_workers,
            allowed_hosts=settings.allowed_hosts,
            media_dir=settings.ls_media_dir,
        )
        self.predictor = Predictor(self.projects, self.serving, self.fetcher, self.embeddings)
        # applications: the production version (apart from the serving one), their keys, downloads
        self.production = Production(self.serving)
        self.classifier = Classify(self.production, self.fetcher, self.projects, self.embeddings)
        self.api_keys = ApiKeys(self.projects.root)
        self.exports = Exports(self.serving, data_dir / "cache" / "exports")
        self.refresher = Refresher(self.projects, self.serving, self.fetcher, self.embeddings)
        self.curator = self.refresher.curator  # duplicate groups, unusual photos (backend/collection/curator.py)
        self.snapshots = Snapshots(self)  # the collection's vectors, labels, predictions (backend/collection/)
        self.layouts = Layouts()  # the embedding map's t-SNE, computed in the background
        self.upload_checks = UploadChecks(self)  # tasveer import --skip-duplicates
        self.trainer: JobTrainer | None  # None: RQ workers train
        self.lane: RefreshLane | None = None  # refreshes beside the trainings (serving process, thread mode)
        self.jobs: Runner
        if settings.redis_url:  # RQ workers train (rqworker.py); torch stays out of this process
            from backend.jobs.redisrunner import RQJobRunner

            self.trainer = None
            runner = RQJobRunner(settings.redis_url, prefix=settings.queue_prefix, setup_of=self._setup_of)
            self.jobs = runner
            # the webhooks reach an API replica, the refreshes run on workers: the open tasks in Redis
            self.refresher.open = OpenTasks(self.projects.root, redis=runner.conn, prefix=settings.queue_prefix)
        elif settings.train_in == "process":  # torch stays out of this process
            from backend.jobs.childtrainer import ProcessTrainer

            self.trainer = ProcessTrainer(settings)
        else:
            from backend.jobs.trainer import Trainer

            self.trainer = Trainer(self.projects, self.serving, self.fetcher, self.embeddings, self.refresher)
            if refresh_beside:  # the serving process: the head is written beside the next training
                self.trainer.lane = self.lane = RefreshLane(self.refresher)
        if self.trainer is not None:  # in-process runner; a training asked for is recorded on disk
            self.jobs = JobRunner(
                self.trainer.run,
                on_submit=self._owe_training,
                on_idle=self._paid_training,
                min_interval=settings.train_min_interval,
            )
        self.counter = AnnotationCounter(self.projects.root)  # retrain_every
        self.writer = PredictionWriter(
            self.projects,
            self.predictor,
            self.refresher,
            embed_cold=settings.train_in == "thread" and not settings.redis_url,
        )
        self.refresher.after_refresh = self.writer.collection  # queued on the collection thread
        self.curator.pause = lambda: give_way(self._correcting)  # its catch-up leaves corrections the cores
        if resume and self.trainer is not None:  # (RQ keeps its queue in Redis)
            self.resume_trainings()

    def _correcting(self) -> bool:
        """Whether a training runs or waits, or a version's refresh is written, in this process."""
        return self.jobs.busy() or (self.lane is not None and self.lane.active())

    def _setup_of(self, pid: str) -> dict | None:
        """What /setup said of a project, handed to the worker that trains it."""
        state = self.projects.state(pid)
        return state.to_dict() if state else None

    # -- a training asked for survives a crash: TRAINING_OWED is on disk until it has run ----------------
    def _owed(self, pid: str) -> Path:
        return self.projects.root / pid / TRAINING_OWED

    def _owe_training(self, pid: str, reason: str) -> None:
        try:
            write_json_atomic(self._owed(pid), {"reason": reason, "at": time.time()}, fsync=False)
        except OSError as exc:
            log.error("project %s: cannot record the training asked for (%s)", pid, exc)

    def _paid_training(self, pid: str) -> None:
        self._owed(pid).unlink(missing_ok=True)

    def resume_trainings(self) -> list[str]:
        """Run again the trainings a previous process was asked for and did not finish (it was
        killed, or stopped with a job waiting). Label Studio holds the annotations, so the
        training simply reads them again."""
        owed = [pid for pid in self.projects.ids() if self._owed(pid).exists()]
        for pid in owed:
            log.warning(
                "project %s: a training was asked for and not finished before the backend stopped; running it again",
                pid,
            )
            self.jobs.submit(pid, "resumed after a restart")
        return owed

    def setup(self, project, schema, hostname=None, access_token=None, extra_params=None) -> str:
        """Remember what /setup says; return the serving model_version."""
        before = self._serving_params(project)
        pid, retired = self.projects.setup(project, schema, hostname, access_token, extra_params)
        if retired:
            self.serving.forget(pid)
            self.production.forget(pid)
        self._refresh_if_changed(pid, before)
        return self.serving.model_version(pid)

    def set_params(self, pid: str, values) -> dict:
        """Replace the project's parameters (projects.set_params); a change of the auto-accept ones
        re-judges the project's tasks with the serving version in the background."""
        before = self._serving_params(pid)
        explicit = self.projects.set_params(pid, values)
        self._refresh_if_changed(pid, before)
        return explicit

    def _serving_params(self, project) -> dict | None:
        from lsproto.project import ProjectIdError, parse_project

        try:
            state = self.projects.state(parse_project(project)[0])
        except ProjectIdError:
            return None
        return {k: (state.params or {}).get(k) for k in SERVING_ONLY} if state else None

    def _refresh_if_changed(self, pid: str, before: dict | None) -> None:
        if self._serving_params(pid) != before and self.serving.serving_version(pid) is not None:
            self.writer.refresh(pid)

    def ensure_project(self, pid: str, label_config: str | None) -> bool:
        """True when the project is set up. One the backend has not seen (no /setup since its data
        dir was made) is set up from `label_config`, if the environment names a Label Studio."""
        if self.projects.state(pid) is not None:
            return True
        settings = self.settings
        if label_config and settings.label_studio_url and settings.label_studio_api_key:
            try:
                self.setup(pid, label_config)
                return True
            except RequestError as exc:
                log.warning("project %s: cannot set up: %s", pid, exc)
        return False

    def train(self, pid: str, reason: str, label_config: str | None = None) -> Job:
        """Schedule a training of a project (RequestError 409 when it is not set up)."""
        if not self.ensure_project(pid, label_config):
            raise RequestError(f"project {pid} is not set up (no /setup yet)", status=409)
        self.counter.reset(pid)
        return self.jobs.submit(pid, reason)

    def rollback(self, pid: str, vid: str) -> str:
        """Serve `vid`; Label Studio gets its predictions and model_version in the background."""
        self.serving.rollback(pid, vid)
        if self.projects.state(pid) is not None:
            self.writer.refresh(pid)
        return vid

    def training_status(self, project: str) -> dict:
        """{"running", "pending"}: the job runner's, and while no training runs, the refresh a
        published training handed to the lane (refreshlane.py) counts as running."""
        status = self.jobs.status(project)
        if status["running"] is None and self.lane is not None:
            status["running"] = self.lane.busy(project)
        return status

    def wait_idle(self, project: str, timeout: float = 60.0) -> bool:
        """Block until the project's trainings and the refreshes they handed over are done."""
        deadline = time.monotonic() + timeout
        if not self.jobs.wait_idle(project, timeout):
            return False
        return self.lane is None or self.lane.wait_idle(project, max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.jobs.shutdown()
        if self.lane is not None:
            self.lane.close()
        self.writer.close()
        self.layouts.close()
        self.fetcher.close()
