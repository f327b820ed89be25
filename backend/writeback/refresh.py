"""Keep Label Studio's picture of a project current after every publish and rollback.

1. every unlabeled task gets a prediction of the serving version, scored by the project's
   acquisition strategy (backend/scoring.py) and with a `cluster` from k-means over the tasks'
   embeddings, so Label Studio's uncertainty sampling serves the most useful task next and spreads
   the work over clusters instead of serving near-duplicates in a row;
2. every annotated task the version was trained on gets a label check from out-of-fold
   probabilities (lsproto/views.py: score below 0.5 = possible label error, strongest lowest);
3. the project's `model_version` moves to the serving version (score column, sorting and sampling
   count only its predictions);
4. predictions of every other version are deleted: a project keeps one prediction per task, of
   the serving version (a rollback writes the older version's predictions again);
5. auto-accept (autoaccept.py), where a project turns it on: confident tasks become labels by the
   auto-accept user, spot checks are marked, labels the version would no longer give are removed.

Head versions re-predict from cached embeddings (a linear head per task); only images never seen
before are downloaded and embedded.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from lsproto.results import prediction
from lsproto.views import label_check_score
from training.acquisition import clusters as kmeans_clusters
from training.acquisition import standardise
from training.params import TrainParams
from training.labelerrors import label_errors_from_proba

from backend.accept.policy import AutoAccept
from backend.fetch import FetchError
from backend.inference.predictor import strategy
from backend.inference.scoring import label_columns, scored_predictions
from backend.inference.models import INITIAL_VERSION

log = logging.getLogger(__name__)

CHUNK = 256  # images fetched and embedded at a time (bytes are dropped after embedding)


def write_clusters(api, project_id: int, vid: str, rows: list[dict]) -> int:
    clusters = {r["task"]: r["cluster"] for r in rows if "cluster" in r}
    return api.set_clusters(project_id, vid, clusters) if clusters else 0


def medoids_first(features: np.ndarray, groups: np.ndarray) -> list[int]:
    """Row indices in serving order: each cluster's members by distance to its centre (standardised
    features), taken round-robin over the clusters, biggest cluster first."""
    xs = standardise(features)
    queues = []
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        d = ((xs[members] - xs[members].mean(axis=0)) ** 2).sum(axis=1)
        queues.append(list(members[np.argsort(d, kind="stable")]))
    queues.sort(key=len, reverse=True)
    order = []
    for depth in range(max(len(q) for q in queues)):
        order += [int(q[depth]) for q in queues if depth < len(q)]
    return order


def pretrained_features(state) -> bool:
    """Whether the project's backbone has pretrained weights (so its features mean something
    before any training)."""
    try:
        params = TrainParams.from_dict(state.params or None)
    except ValueError:
        return False
    return params.pretrained is not False and params.model != "smallcnn"


def n_clusters(n: int) -> int:
    return max(1, min(20, int(np.sqrt(n / 2))))


class Refresher:
    def __init__(self, projects, serving, fetcher, embeddings):
        self.projects = projects
        self.serving = serving
        self.fetcher = fetcher
        self.embeddings = embeddings
        self.auto = AutoAccept(projects.root)

    def refresh(self, pid: str) -> dict:
        start = time.perf_counter()
        state = self.projects.state(pid)
        vid, classifier = self.serving.classifier(pid)
        if state is None or classifier is None:
            return {"skipped": "no version serves yet"}
        cfg = self.projects.config(state.label_config)
        api = self.projects.api(state)
        tasks = list(api.iter_tasks(int(pid), unlabeled_only=True))
        auto = self.auto.prepare(pid, state, api)
        if auto is not None:  # tasks labeled only by auto-accept are judged again, like unlabeled ones
            tasks += auto.tasks
        rows, errors = self.unlabeled_predictions(state, cfg, vid, classifier, tasks, api)
        accepted = None
        if auto is not None:
            accepted = self.auto.apply(pid, auto, cfg, vid, self.serving.manifest(pid, vid), rows, api)
        checks = self.label_checks(pid, vid, cfg)
        written = api.import_predictions(int(pid), rows + checks)
        removed = []
        if written:  # LS takes a model_version only once predictions of it exist
            api.set_model_version(int(pid), vid)
            write_clusters(api, int(pid), vid, rows)
            removed = [v for v in api.model_versions(int(pid)) if v != vid]
            for old in removed:
                api.delete_model_version(int(pid), old)
        report = {"version": vid, "predicted": len(rows), "checked": len(checks), "written": written,
                  "suspects": sum(1 for r in checks if r["score"] < 0.5), "errors": errors[:20],
                  "removed_versions": removed, "seconds": round(time.perf_counter() - start, 2)}
        if accepted is not None:
            report["auto_accept"] = accepted
        log.info("project %s: refreshed predictions of %s: %s", pid, vid, report)
        return report

    def unlabeled_predictions(self, state, cfg, vid, classifier, tasks, api) -> tuple[list[dict], list[str]]:
        """Prediction rows for `tasks` (with `task` ids) and the errors of the tasks left out."""
        columns = label_columns(cfg, classifier.labels)
        features, kept, errors = self._embed(classifier.backbone, cfg, tasks, api, state.project)
        if not kept or not columns:
            return [], errors
        proba = classifier.proba_from_features(features)
        groups = kmeans_clusters(features, n_clusters(len(kept)), seed=0)
        scored = scored_predictions(cfg, vid, proba, columns, strategy(state), clusters=groups)
        rows = [{"task": t["id"], **p} for t, p in zip(kept, scored) if p is not None]
        return rows, errors

    def cold_predictions(self, state, cfg, tasks, api) -> tuple[list[dict], list[str]]:
        """Before the first training: the INITIAL answer (the first label, confidence 1/C: no idea)
        for each task, with a score that makes Label Studio serve the medoids of k-means clusters of
        the pretrained embeddings first (one per cluster, biggest cluster first, then the next
        nearest of each): a first batch that covers the photos, better than a random one."""
        backbone = self.serving.backbone(TrainParams.from_dict(state.params or None))
        features, kept, errors = self._embed(backbone, cfg, tasks, api, state.project)
        if not kept:
            return [], errors
        groups = kmeans_clusters(features, n_clusters(len(kept)), seed=0)
        order = medoids_first(features, groups)
        rows = []
        for position, i in enumerate(order):
            row = {"task": kept[i]["id"], **prediction(cfg, cfg.labels[0], position / len(order), INITIAL_VERSION,
                                                        cluster=int(groups[i]))}
            row["result"][0]["score"] = round(1.0 / len(cfg.labels), 4)
            rows.append(row)
        return rows, errors

    def _embed(self, backbone, cfg, tasks, api, project=None):
        """(features, the tasks they belong to, errors) for `tasks`, CHUNK images at a time."""
        feats, kept, errors = [], [], []
        for start in range(0, len(tasks), CHUNK):
            chunk = tasks[start:start + CHUNK]
            names = [f"task {t.get('id')}" for t in chunk]
            items = [(n, (t.get("data") or {}).get(cfg.data_key)) for n, t in zip(names, chunk)]
            fetched = self.fetcher.fetch_many(items, hostname=api.base_url, auth=api.auth, project=project)
            good = [(t, n, b) for t, n, b in zip(chunk, names, fetched) if not isinstance(b, FetchError)]
            errors += [str(b) for b in fetched if isinstance(b, FetchError)]
            if not good:
                continue
            bad: dict[int, str] = {}
            x = backbone.embed([b for _, _, b in good], cache=self.embeddings, names=[n for _, n, _ in good],
                               errors=bad)
            errors += list(bad.values())
            for k, (task, _, _) in enumerate(good):
                if k not in bad:
                    feats.append(x[k])
                    kept.append(task)
        return (np.stack(feats) if feats else np.zeros((0, 0))), kept, errors

    def label_checks(self, pid: str, vid: str, cfg) -> list[dict]:
        """Rows for the annotated tasks this version has out-of-fold probabilities of."""
        manifest = self.serving.manifest(pid, vid)
        oof = (manifest.get("extra") or {}).get("oof") or {}
        labels = list(manifest.get("labels") or [])
        if not oof.get("tasks") or not labels:
            return []
        proba = np.asarray(oof["proba"], dtype=np.float64)
        given = np.array([labels.index(g) for g in oof["labels"]])
        suspects = {s["index"]: s["strength"] for s in label_errors_from_proba(proba, given, labels)}
        columns = label_columns(cfg, labels)
        rows = []
        for i, task_id in enumerate(oof["tasks"]):
            scored = scored_predictions(cfg, vid, proba[i:i + 1], columns, "margin")[0]
            if scored is None:
                continue
            scored["score"] = label_check_score(suspects.get(i), float(proba[i, given[i]]))
            rows.append({"task": task_id, **scored})
        return rows
