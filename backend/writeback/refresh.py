"""Keep Label Studio's picture of a project current after every publish and rollback.

1. every unlabeled task gets a prediction of the serving version whose score is the calibrated
   confidence of its label (backend/inference/scoring.py), a note (label, confidence, why) and the
   priority of the project's acquisition strategy as its queue key (lsproto/notes.py), and a
   `cluster` from k-means over the tasks' embeddings;
2. every annotated task the version was trained on gets a label check from out-of-fold
   probabilities; a suspected label error gets the note "possible label error" and a queue key
   below 0.5, strongest lowest (lsproto/views.py);
3. the project's `model_version` moves to the serving version (score column and sampling count only
   its predictions);
4. predictions of every other version are deleted: a project keeps one prediction per task, of
   the serving version (a rollback writes the older version's predictions again);
5. auto-accept (backend/accept/), where a project turns it on: confident tasks become labels by the
   auto-accept user, spot checks are marked, labels the version would no longer give are removed;
6. the notes and queue keys are copied into every task's data (`cache_notes`, two requests), which
   the tabs show and order by.

Head versions re-predict from cached embeddings (a linear head per task); only images never seen
before are downloaded and embedded.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from backend.accept.policy import AutoAccept
from backend.fetch import FetchError
from backend.inference.models import INITIAL_VERSION
from backend.inference.predictor import strategy
from backend.inference.scoring import label_columns, score_rows
from lsproto.notes import (
    WHY_FIRST_BATCH,
    WHY_LABEL_ERROR,
    WHY_RANDOM,
    WHY_UNCERTAIN,
    confidence_score,
    note_items,
    note_text,
)
from lsproto.results import prediction
from lsproto.views import label_check_score
from training.acquisition import clusters as kmeans_clusters
from training.acquisition import standardise
from training.labelerrors import label_errors_from_proba
from training.params import TrainParams

log = logging.getLogger(__name__)

CHUNK = 256  # images fetched and embedded at a time (bytes are dropped after embedding)


def extras_of(rows: list[dict]) -> dict[int, dict]:
    """task -> what its prediction should carry besides what import/predictions writes: the cluster,
    and the note items of a row with a `why` (its `priority`, where it has one, is the queue key);
    none for a row without (a PATCH then only takes away a stale note)."""
    out = {}
    for row in rows:
        notes = []
        if row.get("why"):
            item = row["result"][0]
            text = note_text(item["value"]["choices"][0], item.get("score", row["score"]), row["why"])
            notes = note_items(item["to_name"], text, row.get("priority"))
        out[row["task"]] = {"cluster": row.get("cluster"), "notes": notes}
    return out


def write_extras(api, project_id: int, vid: str, rows: list[dict]) -> int:
    """Clusters and notes onto the predictions of `vid` just written (one PATCH per changed one)."""
    extras = extras_of(rows)
    if not any(e["cluster"] is not None or e["notes"] for e in extras.values()):
        return 0  # nothing to add (a cold start without features): not even the listing
    return api.set_clusters_and_notes(project_id, vid, extras)


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
            write_extras(api, int(pid), vid, rows + checks)
            removed = [v for v in api.model_versions(int(pid)) if v != vid]
            for old in removed:
                api.delete_model_version(int(pid), old)
            api.cache_notes(int(pid))  # every task: a stale note of an older version goes too
        report = {
            "version": vid,
            "predicted": len(rows),
            "checked": len(checks),
            "written": written,
            "suspects": sum(1 for r in checks if r.get("why")),
            "errors": errors[:20],
            "removed_versions": removed,
            "seconds": round(time.perf_counter() - start, 2),
        }
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
        how = strategy(state)
        why = WHY_RANDOM if how == "random" else WHY_UNCERTAIN
        scored = score_rows(cfg, vid, proba, columns, how, clusters=groups)
        rows = [
            {"task": t["id"], **s.prediction, "why": why, "priority": s.priority}
            for t, s in zip(kept, scored)
            if s is not None
        ]
        return rows, errors

    def cold_predictions(self, state, cfg, tasks, api) -> tuple[list[dict], list[str]]:
        """Before the first training: the INITIAL answer (the first label, confidence 1/C: no idea)
        for each task, queued so that the medoids of k-means clusters of the pretrained embeddings
        come first (one per cluster, biggest cluster first, then the next nearest of each): a first
        batch that covers the photos, better than a random one. The equal scores' tie-break follows
        the same order, so "Label All Tasks" serves it too."""
        backbone = self.serving.backbone(TrainParams.from_dict(state.params or None))
        features, kept, errors = self._embed(backbone, cfg, tasks, api, state.project)
        if not kept:
            return [], errors
        groups = kmeans_clusters(features, n_clusters(len(kept)), seed=0)
        order = medoids_first(features, groups)
        rows = []
        confidence = 1.0 / len(cfg.labels)  # exactly what /predict answers at the cold start
        for position, i in enumerate(order):
            rank = position / len(order)
            row = {
                "task": kept[i]["id"],
                **prediction(
                    cfg, cfg.labels[0], confidence_score(confidence, rank), INITIAL_VERSION, cluster=int(groups[i])
                ),
                "why": WHY_FIRST_BATCH,
                "priority": rank,
            }
            row["result"][0]["score"] = round(confidence, 4)
            rows.append(row)
        return rows, errors

    def _embed(self, backbone, cfg, tasks, api, project=None):
        """(features, the tasks they belong to, errors) for `tasks`, CHUNK images at a time."""
        feats, kept, errors = [], [], []
        for start in range(0, len(tasks), CHUNK):
            chunk = tasks[start : start + CHUNK]
            names = [f"task {t.get('id')}" for t in chunk]
            items = [(n, (t.get("data") or {}).get(cfg.data_key)) for n, t in zip(names, chunk)]
            fetched = self.fetcher.fetch_many(items, hostname=api.base_url, auth=api.auth, project=project)
            good = [(t, n, b) for t, n, b in zip(chunk, names, fetched) if not isinstance(b, FetchError)]
            errors += [str(b) for b in fetched if isinstance(b, FetchError)]
            if not good:
                continue
            bad: dict[int, str] = {}
            x = backbone.embed(
                [b for _, _, b in good], cache=self.embeddings, names=[n for _, n, _ in good], errors=bad
            )
            errors += list(bad.values())
            for k, (task, _, _) in enumerate(good):
                if k not in bad:
                    feats.append(x[k])
                    kept.append(task)
        return (np.stack(feats) if feats else np.zeros((0, 0))), kept, errors

    def label_checks(self, pid: str, vid: str, cfg) -> list[dict]:
        """Rows for the annotated tasks this version has out-of-fold probabilities of; a suspected
        label error's row has a note (`why`) and its queue key (`priority`, below SUSPECT_BELOW)."""
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
            scored = score_rows(cfg, vid, proba[i : i + 1], columns, "margin")[0]
            if scored is None:
                continue
            row = {"task": task_id, **scored.prediction}
            if i in suspects:
                row["why"] = f"{WHY_LABEL_ERROR} (labeled {labels[given[i]]})"
                row["priority"] = label_check_score(suspects[i], float(proba[i, given[i]]))
            rows.append(row)
        return rows
