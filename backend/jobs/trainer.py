"""The training job of one project: Label Studio's annotations in, a published version out.

Runs on the JobRunner (runner.py), never inside a request. It lists the project's annotated tasks
from Label Studio when it *starts* (so a pending job covers the newest annotation), fetches the
images (disk cache), calls `training.train.fit`, and publishes atomically. A job whose data,
parameters and labels equal the serving version's is skipped; a failed job publishes nothing and
the previous version keeps serving.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from backend.fetch import FetchError
from backend.jobs.counter import training_asked_at
from backend.jobs.promotion import decide
from backend.jobs.recipe import ACCURATE, choose
from backend.jobs.runner import Job, SkipJob
from backend.jobs.unlabeled import unlabeled_features
from backend.locks import training_lock
from backend.writeback.labelchecks import out_of_fold
from backend.writeback.taskindex import TaskIndex
from lsclient.tally import counting
from training.embedder import blob_key
from training.ensemble import head_params
from training.foldheads import FoldHeads
from training.head import labels_short_of_cv
from training.params import training_part
from training.store import data_fingerprint

if TYPE_CHECKING:
    from backend.writeback.refreshlane import RefreshLane
    from lsclient.client import LabelStudioClient
    from lsproto.config import LabelConfig
    from training.fitjob import FitResult
    from training.params import TrainParams

log = logging.getLogger(__name__)
FOLDS_FILE = "folds.npz"  # the head's cross-validation folds, kept across trainings (training/foldheads.py)


@dataclass(frozen=True)
class Labelled:
    """A project's annotated examples whose image downloaded, and what the training needs of its set-up."""

    explicit_params: dict | None  # the project's own training parameters (what /setup or PUT params said)
    cfg: LabelConfig  # the labeling config
    api: LabelStudioClient  # the project's Label Studio client
    used: list  # the examples trained on (their image downloaded)
    blobs: list  # their image bytes
    labels: list  # their labels
    notes: list  # why other annotated tasks were left out
    fingerprint: str  # the digest of the images and labels (training.store.data_fingerprint)


@dataclass(frozen=True)
class Plan:
    """What this job trains: the recipe's parameters, and the version it would replace."""

    params: TrainParams
    recipe: str  # "project" or recipe.ACCURATE
    recipe_reason: str
    parent: str | None  # the serving version, if any


@dataclass(frozen=True)
class Fitted:
    result: FitResult
    unlabeled: int  # how many unlabeled tasks the semi-supervised head saw
    progress: dict  # the training's last epoch/step report


@dataclass(frozen=True)
class Promotion:
    serve: bool  # the new version serves (else it is kept as a candidate)
    why: str


class Stopwatch:
    """Seconds per step of a job, reported in its result (where a correction's time goes)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def step(self, name: str, work, *args):
        start = time.perf_counter()
        try:
            return work(*args)
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


class Trainer:
    def __init__(self, projects, serving, fetcher, embeddings, refresher):
        self.projects = projects
        self.serving = serving
        self.fetcher = fetcher
        self.embeddings = embeddings
        self.refresher = refresher
        self.lane: RefreshLane | None = None  # set in the serving process (refreshlane.py)

    def run(self, pid: str, job: Job) -> dict:
        # one training of a project at a time, even across processes (backend/locks.py)
        with training_lock(self.projects.root / pid):
            return self._run(pid, job)

    def _run(self, pid: str, job: Job) -> dict:
        clock = Stopwatch()
        with counting() as sent:  # this job's requests, not those of the refresh beside it
            data = clock.step("read", self._read_labelled, pid, job)
            store = self.serving.store(pid)
            plan = self._choose_recipe(pid, job, data, store)
            fitted = clock.step("fit", self._fit, pid, job, data, plan.params)
            promotion = clock.step("compare", self._decide_promotion, pid, job, data, plan, fitted)
            vid = clock.step("publish", self._publish, pid, job, store, data, plan, fitted, promotion)
        answer = {
            "version": vid,
            "n_train": fitted.result.n_train,
            "serving": promotion.serve,
            "promotion": promotion.why,
            "recipe": plan.recipe,
            "trained": fitted.progress,
            "metrics": {k: fitted.result.metrics.get(k) for k in ("accuracy", "macro_f1", "n")},
        }
        answer["ls_requests"] = {"training": sent.sent}
        if promotion.serve and self.lane is not None:  # the head is written beside the next training
            self.lane.submit(pid, vid, self._newer_training(pid, job), answer)
        elif promotion.serve:
            job.report(phase="writing predictions to Label Studio")
            answer.update(clock.step("refresh", self._refresh, pid, vid, job))
        answer["seconds"] = clock.seconds
        return answer

    def _read_labelled(self, pid: str, job: Job) -> Labelled:
        """The project's annotated examples from Label Studio and their images (SkipJob when there is
        nothing to train on: no set-up, no annotations, fewer than 2 labels)."""
        state = self.projects.state(pid)
        if state is None or not state.label_config:
            raise SkipJob(f"project {pid} is not set up")
        cfg = self.projects.config(state.label_config)
        job.report(phase="listing annotations")
        api = self.projects.api(state)
        examples, notes = api.annotated_examples(int(pid), cfg)
        if not examples:
            raise SkipJob(f"project {pid}: no usable annotations yet")
        job.report(phase="downloading images", step=0, steps=len(examples))
        fetched = self.fetcher.fetch_many(
            [(f"task {e.task_id}", e.image) for e in examples], hostname=api.base_url, auth=api.auth, project=pid
        )
        used, blobs = [], []
        for example, got in zip(examples, fetched):
            if isinstance(got, FetchError):
                notes.append(str(got))
            else:
                used.append(example)
                blobs.append(got)
        labels = [e.label for e in used]
        if len(set(labels)) < 2:
            raise SkipJob(f"project {pid}: need annotated images of at least 2 labels (have {sorted(set(labels))})")
        fingerprint = data_fingerprint([blob_key(b) for b in blobs], labels)  # the digest fetched with them
        return Labelled(state.params, cfg, api, used, blobs, labels, notes, fingerprint)

    def _choose_recipe(self, pid: str, job: Job, data: Labelled, store) -> Plan:
        """The parameters this job trains with (recipe.py); SkipJob when the serving version already
        saw the same images, labels and parameters."""
        params, recipe, why = choose(data.explicit_params, job.reason, store, len(data.labels))
        if recipe == ACCURATE:
            log.info("project %s: training the accurate preset (%s)", pid, why)
            job.report(phase="training the accurate preset")
        parent = store.serving()
        if parent is not None:
            last = store.manifest(parent)
            if (
                last.get("data_fingerprint") == data.fingerprint
                and training_part(last.get("params")) == training_part(params.to_dict())
                and list(last.get("labels") or []) == list(data.cfg.labels)
            ):
                self.refresher.resume(pid, self._newer_training(pid, job))  # its refresh may have been cut short
                raise SkipJob(f"project {pid}: annotations unchanged since version {parent}")
        return Plan(params, recipe, why, parent)

    def _fit(self, pid: str, job: Job, data: Labelled, params) -> Fitted:
        """`training.train.fit` on the examples, with the shared backbones and, for the semi-supervised
        head, the unlabeled tasks' cached embeddings."""
        from training.train import fit  # torch, timm, scikit-learn: imported by the first training, not at start

        backbone = self.serving.backbone(params) if params.mode == "head" else None
        # an ensemble's head backbone is the default head's: shared with head-mode trainings
        partner = (
            self.serving.backbone(head_params(params)) if params.mode == "finetune" and params.ensemble_head else None
        )
        trained = {}  # the training's last progress report, kept in the job's result

        def report(**fields):
            trained.update(fields)
            job.report(**fields)

        unlabeled = None
        # fit() trains the supervised head while some label is short of k-fold cross-validation
        # (leave-one-out): then the unlabeled tasks are not listed from Label Studio at all
        names = list(data.cfg.labels)
        short = labels_short_of_cv(np.array([names.index(x) for x in data.labels if x in names], dtype=int), names)
        if backbone is not None and params.unlabeled and not short:
            job.report(phase="reading unlabeled tasks")
            unlabeled = unlabeled_features(
                TaskIndex(self.projects.root / pid),
                data.api,
                int(pid),
                data.cfg.data_key,
                self.embeddings,
                backbone,
                [e.task_id for e in data.used],
                params.unlabeled,
                params.seed,
            )
        result = fit(
            data.blobs,
            data.labels,
            names,
            params,
            cache=self.embeddings,
            backbone=backbone,
            names=[f"task {e.task_id}" for e in data.used],
            report=report,
            unlabeled_features=unlabeled,
            partner_backbone=partner,
            folds=FoldHeads(self.projects.root / pid / FOLDS_FILE) if params.mode == "head" else None,
        )
        progress = {k: v for k, v in trained.items() if k in ("epoch", "epochs", "step", "steps")}
        return Fitted(result, 0 if unlabeled is None else len(unlabeled), progress)

    def _decide_promotion(self, pid: str, job: Job, data: Labelled, plan: Plan, fitted: Fitted) -> Promotion:
        """Whether the new version replaces the serving one (promotion.py)."""
        job.report(phase="comparing with the serving version")
        store, parent = self.serving.store(pid), plan.parent
        _, serving_clf = self.serving.classifier(pid) if parent else (None, None)
        serve, why = decide(
            store.manifest(parent) if parent else None,
            serving_clf,
            fitted.result,
            data.used,
            data.blobs,
            self.embeddings,
            plan.params.promotion_margin,
            plan.params.to_dict(),
        )
        return Promotion(serve, why)

    def _publish(
        self, pid: str, job: Job, store, data: Labelled, plan: Plan, fitted: Fitted, promotion: Promotion
    ) -> str:
        """Publish the version (served or kept as a candidate); its id."""
        result = fitted.result
        extra = {
            "unlabeled": fitted.unlabeled,
            "project": pid,
            "trigger": job.reason,
            "requests": job.requests,
            "job": job.id,
            "tasks": [e.task_id for e in data.used],
            "annotations": [e.annotation_id for e in data.used],
            "skipped": data.notes + [f"{k}: {v}" for k, v in result.skipped.items()],
            "metrics_source": result.metrics_source,
            "oof": out_of_fold(result, data.used),
            "recipe": plan.recipe,
            "recipe_reason": plan.recipe_reason,
            "promotion": promotion.why,
        }
        # confusion.png is drawn on demand (Serving.confusion_png): publishing stays fast
        job.report(phase="publishing")
        vid = store.publish(
            result,
            params=plan.params,
            parent=plan.parent,
            data_fingerprint=data.fingerprint,
            extra=extra,
            plot=False,
            serve=promotion.serve,
        )
        n, took = len(data.blobs), result.seconds
        log.info("project %s: published %s (%d examples, %.1f s): %s", pid, vid, n, took, promotion.why)
        return vid

    def _newer_training(self, pid: str, job: Job):
        """Whether a training was asked for after this job started (its refresh then stops writing)."""
        started = job.started_at or 0.0
        return lambda: training_asked_at(self.projects.root, pid) > started

    def _refresh(self, pid: str, vid: str, job: Job) -> dict:
        """The new serving version's predictions in Label Studio (the head, then the rest until a
        newer training is asked for): {"refresh": ...}, or {"refresh_error": ...} (the version is
        published either way; Label Studio's copy catches up on the next one)."""
        try:
            return {"refresh": self.refresher.refresh(pid, self._newer_training(pid, job), version=vid)}
        except Exception as exc:
            log.exception("project %s: writing the predictions of %s to Label Studio failed", pid, vid)
            return {"refresh_error": f"{type(exc).__name__}: {exc}"}
