"""Predict tasks in the background and write the predictions into Label Studio.

Label Studio's TASKS_CREATED webhook (an upload in the import dialog, an API import) names the new
tasks; the backend answers the webhook at once and predicts them here (scored like refresh.py does
after a publish; the tasks join the task index), then writes the predictions with their notes in
bulk (lswrite.py: four requests per batch, whatever the project's size), so the data manager shows a
label, a confidence and a place in the queue for every new task without anybody pressing "Retrieve
predictions". A rollback's refresh runs here too.
After the write, the collection's update is queued (collectionjob.py, one pending per project) on a
thread of its own: the new photos' predictions never wait for the duplicate groups and unusual
scores, which follow. It starts once the write-backs queued before it are done (an import's
predictions first; the update then covers all of them), and write-backs asked for while it runs go
on beside it. At 50,000 photos one update over ~5,000 new ones took minutes; on the write-back's
thread it held back every prediction meanwhile, and `tasveer import`, seeing none for 15 s, had
Label Studio predict the tasks itself; started at once beside an import it took CPU from it (the
import 1.7x slower at 2,000 photos) (bench/scale.py, 2026-12-05). One write-back run and one
collection update at a time per process; the newest 100 runs are kept as records for the jobs page
and tests. The collection's thread runs at a lower CPU priority (COLLECTION_NICE): after a big
import its update takes minutes, and on 2 cores it doubled a correction's training (fit 5.4 s at
8,741 photos, 2.2 s at 2,000; bench/scale.py). A lower priority is not enough at 50,000 photos (the
numpy work runs on BLAS threads the nice value does not reach, and Python's lock knows no priority),
so between its steps the update also waits while a training runs or a refresh is written
(curator.py `give_way`, set by service.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from backend.collection import rowprep
from backend.inference.models import INITIAL_VERSION
from backend.writeback.coldstart import pretrained_features
from backend.writeback.collectionjob import update_and_rewrite
from backend.writeback.lswrite import names_version, write_rows

log = logging.getLogger(__name__)

RETRIES = 3  # predictions of new tasks made again when the serving version moved before their write
WAIT_POLL = 0.5  # seconds between looks at the write-back queue while a collection update waits
COLLECTION_NICE = 10  # the collection's thread runs this much nicer: trainings and writes come first


def background_priority() -> None:
    """Lower the calling thread's CPU priority by COLLECTION_NICE (Linux: nice is per thread);
    elsewhere, or where it is refused, the thread keeps the process's priority."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + COLLECTION_NICE)
    except (AttributeError, OSError):
        log.debug("the collection's thread keeps the process's CPU priority")


class PredictionWriter:
    def __init__(self, projects, predictor, refresher, embed_cold: bool = True):
        self.projects = projects
        self.predictor = predictor
        self.refresher = refresher
        self.embed_cold = embed_cold  # False where no torch may be imported (cold start: no download)
        self._records: deque[dict] = deque(maxlen=100)
        self._labels: dict[str, dict[int, str]] = {}  # a queued collection update's labels, per project
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-predictions")
        self._collection_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="collection", initializer=background_priority
        )
        self._closing = threading.Event()

    def submit(self, pid: str, tasks: list[dict]) -> dict:
        """Predict new tasks and write the predictions (TASKS_CREATED)."""
        return self._queue({"project": pid, "tasks": len(tasks)}, self._predict_new, pid, tasks)

    def refresh(self, pid: str) -> dict:
        """Re-predict the whole project with the serving version (after a rollback, or a change of
        the auto-accept settings); a refresh still queued for the project covers a second request."""
        with self._lock:
            for record in self._records:
                if record.get("project") == pid and record.get("refresh") and record.get("state") == "queued":
                    return dict(record)
        return self._queue({"project": pid, "refresh": True}, self._refresh, pid)

    def _queue(self, record: dict, work, *args) -> dict:
        record.update(state="queued", submitted_at=time.time())
        with self._lock:
            self._records.append(record)
        pool = self._collection_pool if record.get("collection") else self._pool
        pool.submit(self._run, record, work, *args)
        return record

    def records(self, pid: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._records if pid is None or r.get("project") == pid]

    def close(self) -> None:
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._collection_pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, record: dict, work, *args) -> None:
        record["state"] = "running"
        try:
            record.update(work(*args), state="done")
        except Exception as exc:  # recorded and logged with its traceback; the service goes on
            log.exception("project %s: writing predictions to Label Studio failed", record.get("project"))
            record.update(state="failed", error=f"{type(exc).__name__}: {exc}")
        record["finished_at"] = time.time()

    def _refresh(self, pid: str) -> dict:
        return self.refresher.refresh(pid)

    def _predict_new(self, pid: str, tasks: list[dict]) -> dict:
        """Predict the new tasks and write them under the project's write lock, with the version
        that serves then: when another version started serving meanwhile (its refresh may have
        written these tasks already), they are predicted again with it, up to RETRIES times."""
        state = self.projects.state(pid)
        api = self.projects.api(state)
        tasks = [t for t in tasks if isinstance(t, dict) and isinstance(t.get("id"), int)]
        for _ in range(RETRIES):
            vid, rows, errors = self._new_rows(pid, state, api, tasks)
            curator = self.refresher.curator  # the groups known before these photos: the update follows
            manifest = self.refresher.serving.manifest(pid, vid) if vid != INITIAL_VERSION else {}
            trained = (manifest.get("extra") or {}).get("tasks") or []
            prep = rowprep.arrange(curator, pid, curator.latest(pid), rows, [], self.refresher.labeled(pid, trained))
            with self.refresher.writing(pid, vid) as current:
                if not current:
                    continue
                self.refresher.open.note_queue(pid, vid, prep.rows)  # new tasks can be served next
                written = write_rows(api, int(pid), prep.rows)
                if vid == INITIAL_VERSION and names_version(prep.rows, vid):
                    api.set_model_version(int(pid), vid)
            break
        else:
            raise RuntimeError(f"the serving version changed {RETRIES} times while new tasks were predicted")
        self.collection(pid)
        return {"written": written, "errors": len(errors), "error_messages": errors[:10]}

    def _new_rows(self, pid: str, state, api, tasks: list[dict]) -> tuple[str, list[dict], list[str]]:
        """(version, rows, errors) for new tasks: scored like a refresh by the serving version, or
        the cold start's answer."""
        vid, classifier = self.refresher.serving.classifier(pid)
        if classifier is not None:  # scored like a refresh, for this batch
            cfg = self.projects.config(state.label_config)
            rows, errors = self.refresher.unlabeled_predictions(state, cfg, vid, classifier, tasks, api)
            self._auto_accept(pid, state, api, cfg, vid, rows)
            return vid, rows, errors
        if self.embed_cold and pretrained_features(state):  # cold start: medoids of the new photos first
            cfg = self.projects.config(state.label_config)
            rows, errors = self.refresher.cold_predictions(state, cfg, tasks, api)
            return INITIAL_VERSION, rows, errors
        # cold start of a from-scratch network: its features mean nothing yet, download nothing
        results = self.predictor.predict(tasks, project=pid, label_config=state.label_config)
        rows = [{"task": t["id"], **r} for t, r in zip(tasks, results) if r.get("result")]
        return INITIAL_VERSION, rows, [r["error"] for r in results if "error" in r]

    def _auto_accept(self, pid: str, state, api, cfg, vid: str, rows: list[dict]) -> None:
        """Confident new tasks without a label are auto-accepted at once, where the project uses it
        (a task labeled since it was created, e.g. by --labels-from-folders, is not judged: the
        annotated tasks are listed, as many as the labels, not the project's size)."""
        auto = self.refresher.auto.prepare(pid, state, api, listing=False)
        if auto is None:
            return
        labeled = {t["id"] for t in api.iter_tasks(int(pid), annotated_only=True)}
        open_ids = {r["task"] for r in rows} - labeled
        manifest = self.refresher.serving.manifest(pid, vid)
        self.refresher.auto.apply(
            pid, auto, cfg, vid, manifest, [r for r in rows if r["task"] in open_ids], api, new_tasks=True
        )

    def collection(self, pid: str, labels: dict[int, str] | None = None) -> dict:
        """Queue the collection's update and its rewrites (collectionjob.py) unless one is queued for
        the project already (it takes `labels`, the newest a refresh gave)."""
        with self._lock:
            if labels is not None:
                self._labels[pid] = labels
            for record in self._records:
                if record.get("project") == pid and record.get("collection") and record.get("state") == "queued":
                    return dict(record)
        return self._queue({"project": pid, "collection": True}, self._collection, pid)

    def _collection(self, pid: str) -> dict:
        """The update, once the project's new photos queued so far are written: predictions first
        (it then covers them too); a write-back asked for while it runs goes on beside it."""
        while self._writing(pid) and not self._closing.wait(WAIT_POLL):
            pass
        with self._lock:
            labels = self._labels.pop(pid, None)
        return update_and_rewrite(self.refresher, pid, labels)

    def _writing(self, pid: str) -> bool:
        with self._lock:
            return any(
                r.get("project") == pid and not r.get("collection") and r.get("state") in ("queued", "running")
                for r in self._records
            )
