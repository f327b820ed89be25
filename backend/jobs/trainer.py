"""The training job of one project: Label Studio's annotations in, a published version out.

Runs on the JobRunner (jobs.py), never inside a request. It lists the project's annotated tasks
from Label Studio when it *starts* (so a pending job covers the newest annotation), fetches the
images (disk cache), calls `training.train.fit`, and publishes atomically. A job whose data,
parameters and labels equal the serving version's is skipped; a failed job publishes nothing and
the previous version keeps serving.
"""
from __future__ import annotations

import fcntl
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from training.embedder import blob_key
from training.ensemble import head_params
from training.head import labels_short_of_cv
from training.params import training_part
from training.store import data_fingerprint
from training.train import fit

from backend.fetch import FetchError
from backend.jobs.promotion import decide
from backend.jobs.recipe import ACCURATE, choose
from backend.jobs.runner import Job, SkipJob

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, projects, serving, fetcher, embeddings, refresher):
        self.projects = projects
        self.serving = serving
        self.fetcher = fetcher
        self.embeddings = embeddings
        self.refresher = refresher

    def run(self, pid: str, job: Job) -> dict:
        # one training of a project at a time, even across processes (a restarted backend while the
        # worker of a killed one still runs, two workers): the second waits, then reads Label Studio
        # afresh, so versions are published in the order of the data they saw
        with project_lock(self.projects.root / pid / "train.lock"):
            return self._run(pid, job)

    def _run(self, pid: str, job: Job) -> dict:
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
        fetched = self.fetcher.fetch_many([(f"task {e.task_id}", e.image) for e in examples],
                                          hostname=api.base_url, auth=api.auth, project=pid)
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
        store = self.serving.store(pid)
        params, recipe, why_recipe = choose(state.params, job.reason, store, len(labels))
        if recipe == ACCURATE:
            log.info("project %s: training the accurate preset (%s)", pid, why_recipe)
            job.report(phase="training the accurate preset")
        parent = store.serving()
        if parent is not None:
            last = store.manifest(parent)
            if (last.get("data_fingerprint") == fingerprint and training_part(last.get("params")) == training_part(params.to_dict())
                    and list(last.get("labels") or []) == list(cfg.labels)):
                raise SkipJob(f"project {pid}: annotations unchanged since version {parent}")

        backbone = self.serving.backbone(params) if params.mode == "head" else None
        # an ensemble's head backbone is the default head's: shared with head-mode trainings
        partner = self.serving.backbone(head_params(params)) if params.mode == "finetune" and params.ensemble_head else None
        trained = {}  # the training's last progress report, kept in the job's result

        def report(**fields):
            trained.update(fields)
            job.report(**fields)

        unlabeled = None
        # fit() trains the supervised head while some label is short of k-fold cross-validation
        # (leave-one-out): then the unlabeled tasks are not listed from Label Studio at all
        names = list(cfg.labels)
        short = labels_short_of_cv(np.array([names.index(x) for x in labels if x in names], dtype=int), names)
        if backbone is not None and params.unlabeled and not short:
            job.report(phase="reading unlabeled tasks")
            unlabeled = self.unlabeled_features(pid, api, cfg, backbone, params.unlabeled, params.seed)
        result = fit(blobs, labels, list(cfg.labels), params, cache=self.embeddings, backbone=backbone,
                     names=[f"task {e.task_id}" for e in used], report=report, unlabeled_features=unlabeled,
                     partner_backbone=partner)
        extra = {
            "unlabeled": 0 if unlabeled is None else len(unlabeled),
            "project": pid, "trigger": job.reason, "requests": job.requests, "job": job.id,
            "tasks": [e.task_id for e in used], "annotations": [e.annotation_id for e in used],
            "skipped": notes + [f"{k}: {v}" for k, v in result.skipped.items()],
            "metrics_source": result.metrics_source,
            "oof": out_of_fold(result, used), "recipe": recipe, "recipe_reason": why_recipe,
        }
        job.report(phase="comparing with the serving version")
        _, serving_clf = self.serving.classifier(pid) if parent else (None, None)
        serve, why = decide(store.manifest(parent) if parent else None, serving_clf, result, used, blobs,
                            self.embeddings, params.promotion_margin, params.to_dict())
        extra["promotion"] = why
        # confusion.png is drawn on demand (Serving.confusion_png): publishing stays fast
        job.report(phase="publishing")
        vid = store.publish(result, params=params, parent=parent, data_fingerprint=fingerprint, extra=extra,
                            plot=False, serve=serve)
        log.info("project %s: published %s (%d examples, %.1f s): %s", pid, vid, len(blobs), result.seconds, why)
        trained.pop("phase", None)
        answer = {"version": vid, "n_train": result.n_train, "serving": serve, "promotion": why, "recipe": recipe,
                  "trained": {k: v for k, v in trained.items() if k in ("epoch", "epochs", "step", "steps")},
                  "metrics": {k: result.metrics.get(k) for k in ("accuracy", "macro_f1", "n")}}
        if not serve:
            return answer
        job.report(phase="writing predictions to Label Studio")
        try:  # the version is published either way; Label Studio's copy catches up on the next one
            answer["refresh"] = self.refresher.refresh(pid)
        except Exception as exc:
            log.exception("project %s: writing the predictions of %s to Label Studio failed", pid, vid)
            answer["refresh_error"] = f"{type(exc).__name__}: {exc}"
        return answer


    def unlabeled_features(self, pid: str, api, cfg, backbone, limit: int, seed: int = 0):
        """Embeddings of up to `limit` of the project's unlabeled tasks (a seeded random choice when
        there are more), for the semi-supervised head (training/semi.py). Only tasks whose image is
        in the image cache and whose embedding by `backbone` is in the embedding cache count, i.e.
        tasks already predicted (every task is, after each publish and before the first training):
        nothing is downloaded or embedded here. None when there are none."""
        digests = []
        for task in api.iter_tasks(int(pid), unlabeled_only=True):
            raw = (task.get("data") or {}).get(cfg.data_key)
            if not isinstance(raw, str):
                continue
            try:
                digest = self.fetcher.cache.digest(self.fetcher.resolve(raw, api.base_url, project=pid))
            except FetchError:
                continue
            if digest:
                digests.append(digest)
            if len(digests) >= 4 * limit:  # enough candidates to choose from
                break
        parts = getattr(backbone, "parts", (backbone,))  # a pair (`second_model`): both embeddings, side by side
        found = [self.embeddings.get_many(digests, part.id, part.preprocessing.image_size) if digests else {}
                 for part in parts]
        rows = [np.concatenate([f[d] for f in found]) for d in dict.fromkeys(digests) if all(d in f for f in found)]
        if not rows:
            return None
        if len(rows) > limit:
            pick = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
            rows = [rows[i] for i in pick]
        return np.stack(rows)


@contextmanager
def project_lock(path: Path):
    """An exclusive flock on `path` for the block; the OS drops it when the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def out_of_fold(result, used) -> dict:
    """The out-of-fold probabilities of the tasks trained on, for label checks (see refresh.py)."""
    if result.oof_proba is None:
        return {}
    kept = [used[i] for i in result.kept]
    return {"tasks": [e.task_id for e in kept], "labels": [e.label for e in kept],
            "proba": [[round(float(p), 5) for p in row] for row in result.oof_proba]}
