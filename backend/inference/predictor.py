"""`/predict`: one prediction per task, in task order, for the project's serving version.

Cold start: before a project's first training there is no model. Every task is then answered
with the *first* label of the labeling config, score 1/C (a uniform guess, deliberately low so
uncertainty sampling treats every task alike) and model_version "INITIAL"; no image is downloaded.

A task whose image cannot be fetched or decoded gets an error prediction (no result, the reason in
`error`); the other tasks of the request are answered as usual.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import cast

from backend.errors import RequestError
from backend.fetch import FetchError
from backend.inference.models import INITIAL_VERSION
from backend.inference.scoring import label_columns, scored_predictions
from backend.projects.registry import project_id
from lsproto.config import LabelConfig
from lsproto.results import error_prediction, prediction
from training.params import ParamError, TrainParams

PREDICT_CHUNK = 32  # images per decode + forward pass


class Predictor:
    def __init__(self, projects, serving, fetcher, embeddings):
        self.projects = projects
        self.serving = serving
        self.fetcher = fetcher
        self.embeddings = embeddings

    def predict(self, tasks: list[dict], *, project=None, label_config: str | None = None) -> list[dict]:
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise RequestError("tasks must be a list of task objects")
        pid = None
        if project is not None:
            pid, _ = project_id(project)
        elif tasks and isinstance(tasks[0].get("project"), int):
            pid = str(tasks[0]["project"])
        state = self.projects.state(pid)
        xml = label_config or (state.label_config if state else None)
        if not xml:
            raise RequestError("no labeling config: send label_config or call /setup first")
        cfg = self.projects.config(xml)
        if not tasks:
            return []
        vid, classifier = self.serving.classifier(pid) if pid else (None, None)
        columns = label_columns(cfg, classifier.labels) if classifier is not None else []
        if classifier is None or not columns:
            return [cold_start(cfg) for _ in tasks]
        hostname, token = self.projects.connection(state)
        auth = self.projects.auth(hostname, token) if hostname else None
        return self._predict(tasks, cfg, vid, classifier, columns, hostname, auth, strategy(state), pid)

    def _predict(self, tasks, cfg: LabelConfig, vid, classifier, columns, hostname, auth, how, pid=None) -> list[dict]:
        names = [f"task {t.get('id', '?')}" for t in tasks]
        results: list[dict | None] = [None] * len(tasks)
        todo = []  # (index, url)
        for i, task in enumerate(tasks):
            data = task.get("data")
            url = data.get(cfg.data_key) if isinstance(data, dict) else None
            if not isinstance(url, str) or not url:
                results[i] = error_prediction(vid, f"{names[i]}: no image URL in data[{cfg.data_key!r}]")
            else:
                todo.append((i, url))

        def download(chunk):
            return self.fetcher.fetch_many(
                [(names[i], url) for i, url in chunk], hostname=hostname, auth=auth, project=pid
            )

        # The next chunk downloads while the network works on this one (one decode + forward pass
        # per chunk, never per task): the CPU is not left idle while Label Studio serves files.
        chunks = [todo[k : k + PREDICT_CHUNK] for k in range(0, len(todo), PREDICT_CHUNK)]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as prefetch:
            pending = prefetch.submit(download, chunks[0]) if chunks else None
            for k, chunk in enumerate(chunks):
                assert pending is not None  # (chunks[k]'s download, submitted before this turn)
                fetched = pending.result()
                if k + 1 < len(chunks):
                    pending = prefetch.submit(download, chunks[k + 1])
                good = []
                for (i, _), got in zip(chunk, fetched):
                    if isinstance(got, FetchError):
                        results[i] = error_prediction(vid, str(got))
                    else:
                        good.append((i, got))
                if not good:
                    continue
                errors: dict[int, str] = {}
                proba = classifier.predict_proba(
                    [blob for _, blob in good], cache=self.embeddings, names=[names[i] for i, _ in good], errors=errors
                )
                scored = scored_predictions(cfg, vid, proba, columns, how)
                for row, (i, _) in enumerate(good):
                    if row in errors or scored[row] is None:
                        results[i] = error_prediction(vid, errors.get(row, f"{names[i]}: prediction failed"))
                    else:
                        results[i] = scored[row]
        return cast(list[dict], results)  # every task got its prediction or error above


def strategy(state) -> str:
    """The project's acquisition strategy (its extra params were validated at /setup)."""
    try:
        return TrainParams.from_dict((state.params if state else None) or None).acquisition
    except ParamError:
        return TrainParams().acquisition


def cold_start(cfg: LabelConfig) -> dict:
    return prediction(cfg, cfg.labels[0], 1.0 / len(cfg.labels), INITIAL_VERSION)
