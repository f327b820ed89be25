"""Keep Label Studio's picture of a project current after every publish and rollback, at a cost
bounded by what a person is served next, not by the project's size.

1. The project's tasks come from the task index (taskindex.py: one request when no task was added),
   their embeddings from the embedding cache (features.py): a head version re-predicts every
   unlabeled task locally, as a matrix product; only images never seen before are downloaded.
2. Every unlabeled task is ranked, as arrays (ranked.py), and gets a row: the calibrated confidence
   of its label as the score (backend/inference/scoring.py), a note (label, confidence, why) and the
   priority of the project's acquisition strategy as its queue key (lsproto/notes.py). Every
   annotated task the version was trained on gets a label check from out-of-fold probabilities; a
   suspected label error gets the note "possible label error" and a queue key below 0.5, strongest
   lowest (lsproto/views.py).
3. **The head** (the HEAD most useful unlabeled tasks; only their rows are made before it,
   `queue_head`) is written first (lswrite.py `write_head`: the new predictions imported beside
   the old), then the project's `model_version` moves to the version: Label Studio's sampling
   serves only tasks with a prediction of it, so from then on it serves the new version's most
   useful photos. A correction costs this, whatever the project's size: every other row is made
   after it, and the head's tasks lose their old predictions after it too (`tidy_parts`).
4. **The rest**, the label checks first, follows in chunks of lswrite.ROWS_PER_WRITE (its rows made
   as they are written: `RestRows`) while someone labels (lswrite.BULK_ROWS once nobody has for a
   minute: lswrite.pace) and stops as soon as a newer training is asked for or another version
   serves (`superseded`); once people pause, every task gets the newest answer, and a complete
   pass deletes what other versions left (one prediction per task). Each batch is written under
   the project's write lock (backend/locks.py), only while its version still serves, so a new
   tasks' write-back never interleaves with it. In the serving process it runs on the refresh lane
   (refreshlane.py), beside the next training.
5. Auto-accept (backend/accept/), where a project turns it on: confident tasks become labels by the
   auto-accept user, spot checks are marked, labels the version would no longer give are removed.
6. A task someone may have open in the labeling view keeps the prediction it was served with
   (opentasks.py): its id is the `parent_prediction` of their submit, which Label Studio refuses
   once it is deleted. The new one goes in beside it (the labeling view shows only the project's
   version); its notes follow when a write after its person's next submit replaces both.
7. The collection (backend/collection/): duplicates after the queue ("duplicate of #id"), group and
   unusual marks in the rows, as last updated (changed marks copied after the head); the update with
   the version's labels follows the write (`after_refresh`, collectionjob.py), never delaying it.

No `cluster` is written: Label Studio's uncertainty sampling serves the user's least-solved cluster
before the lowest score, which would override the strategy's order (docs/labelstudio.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.accept.policy import AutoAccept
from backend.collection.curationstore import Curation
from backend.collection.curator import Curator
from backend.collection.rowprep import Prepared, arrange
from backend.inference.predictor import strategy
from backend.inference.scoring import label_columns
from backend.locks import write_lock
from backend.writeback.coldstart import cold_rows
from backend.writeback.collectionjob import update_and_rewrite
from backend.writeback.features import TaskFeatures
from backend.writeback.labelchecks import label_check_rows
from backend.writeback.lswrite import drop_other_versions, names_version, pace, tidy_parts, write_head, write_rows
from backend.writeback.opentasks import OpenTasks
from backend.writeback.ranked import Ranked, RestRows, queue_head
from backend.writeback.taskindex import TaskIndex, catch_up
from lsclient.tally import Tally, counting
from lsproto.notes import WHY_RANDOM, WHY_UNCERTAIN
from training.atomic import write_json_atomic
from training.params import TrainParams

if TYPE_CHECKING:
    from lsclient.client import LabelStudioClient
    from lsproto.config import LabelConfig

log = logging.getLogger(__name__)

# unlabeled tasks written first: what Label Studio serves next, until the rest's first batches (60
# rows, ~1 s apart) follow. 100 took 1.5 s of the head's write at 8,741 tasks, 32 1.1 s (head in
# p50 3.9 -> 2.8 s; bench/scale.py, 2026-12-06): its delete recounts each task in SQLite's one lock
HEAD = 32
RECORD = "refresh.json"  # projects/<id>/: the last refresh's version and whether it wrote every task


@dataclass(frozen=True)
class Written:
    head: int  # predictions written with the head
    settled: int  # predictions of the rest written after it
    complete: bool  # every row written (not superseded)
    head_requests: int  # Label Studio requests until the head was served (index, auto-accept, head)
    rest_requests: int  # those of the rest
    served_at: float  # time.perf_counter() when the head was in (Label Studio served the version)
    held: dict  # task -> version: tasks someone may have open, left as they were (opentasks.py)
    waiting: int  # rows written that wait after the queue (duplicates)


@dataclass(frozen=True)
class Round:
    """What one refresh writes with."""

    pid: str
    state: Any  # the project's ProjectState
    cfg: LabelConfig
    vid: str
    api: LabelStudioClient
    ranked: Ranked  # the unlabeled tasks, most useful first: rows made on demand
    curation: Curation | None  # the collection as last updated (None: not set up)
    labeled: set[int]  # tasks with a person's label (Refresher.labeled)

    def arrange(self, curator, rows: list[dict], checks: list[dict]) -> Prepared:
        """Duplicates after the queue, marks in (backend/collection/rowprep.py)."""
        return arrange(curator, self.pid, self.curation, rows, checks, self.labeled)


class Refresher:
    def __init__(self, projects, serving, fetcher, embeddings):
        self.projects = projects
        self.serving = serving
        self.fetcher = fetcher
        self.features = TaskFeatures(fetcher, embeddings)
        self.auto = AutoAccept(projects.root)
        self.curator = Curator(projects, serving, fetcher, embeddings)
        self.open = OpenTasks(projects.root)
        # the collection's update after a refresh: inline in a training child or RQ worker; queued in the backend
        self.after_refresh: Callable[[str, dict | None], object] = lambda pid, labels: update_and_rewrite(
            self, pid, labels
        )

    def labeled(self, pid: str, trained) -> set[int]:
        """The tasks with a person's label: those the version trained on and those annotated since
        (the webhooks' record, opentasks.py); a duplicate group with one of them waits behind it."""
        return {int(t) for t in trained} | self.open.done(pid)

    def index(self, pid: str) -> TaskIndex:
        return TaskIndex(self.projects.root / str(pid))

    def refresh(self, pid: str, superseded: Callable[[], bool] | None = None, version: str | None = None) -> dict:
        """Write the serving version's predictions (head first, then the rest until `superseded`);
        with `version`, only while that one serves (a newer one's refresh follows)."""
        start = time.perf_counter()
        state = self.projects.state(pid)
        vid, classifier = self.serving.classifier(pid)
        if state is None or classifier is None:
            return {"skipped": "no version serves yet"}
        if version is not None and vid != version:
            return {"skipped": "a newer version serves: its refresh writes"}
        cfg = self.projects.config(state.label_config)
        api = self.projects.api(state)
        with counting() as sent:  # this refresh's requests, not those of a training beside it
            job, errors = self._round(pid, state, cfg, vid, classifier, api)
            # the queue's top only: every other row is made as its batch is written
            head = queue_head(job.ranked, lambda rows: job.arrange(self.curator, rows, []), HEAD)
            prepared_at = time.perf_counter()
            written, checks, accepted = self._write(job, head, superseded or (lambda: False), sent)
        rows = job.ranked.task_ids()
        removed = []
        if written.complete and (written.head or written.settled):
            others = {t.id for t in self.index(pid).tasks()} - set(rows) - {int(r["task"]) for r in checks}
            with self.writing(pid, vid) as current:  # a newer version's rows may be written by now
                if current:
                    spared = set(written.held.values())
                    removed = drop_other_versions(api, int(pid), vid, sorted(others), spared)
        report = {
            "version": vid,
            "predicted": len(rows),
            "checked": len(checks),
            "written": written.head + written.settled,
            "head": written.head,
            "complete": written.complete,
            "ls_requests": {"head": written.head_requests, "rest": written.rest_requests},
            "suspects": sum(1 for r in checks if r.get("why")),
            "duplicates_after_queue": written.waiting,  # among the rows written
            "kept_open": sorted(written.held),
            "errors": errors[:20],
            "removed_versions": removed,
            "seconds": round(time.perf_counter() - start, 2),
            "seconds_to_head": round(written.served_at - start, 2),  # until Label Studio served the version
            "seconds_to_rows": round(prepared_at - start, 2),  # of them: every task ranked, the head's rows made
        }
        if accepted is not None:
            report["auto_accept"] = accepted
        write_json_atomic(self._record(pid), {"version": vid, "complete": written.complete}, fsync=False)
        oof = (self.serving.manifest(pid, vid).get("extra") or {}).get("oof") or {}
        self.after_refresh(pid, dict(zip(oof.get("tasks") or [], oof.get("labels") or [])) or None)
        log.info("project %s: refreshed predictions of %s: %s", pid, vid, report)
        return report

    def resume(self, pid: str, superseded: Callable[[], bool] | None = None) -> dict | None:
        """Finish the serving version's refresh when its last one was cut short (a training asked
        for that then had nothing new to learn); None when there is nothing to finish."""
        vid = self.serving.serving_version(pid)
        try:
            last = json.loads(self._record(pid).read_text())
        except (OSError, ValueError):
            return None
        if vid is None or last.get("version") != vid or last.get("complete", True):
            return None
        return self.refresh(pid, superseded)

    def _record(self, pid: str) -> Path:
        return self.projects.root / str(pid) / RECORD

    @contextmanager
    def writing(self, pid: str, vid: str) -> Iterator[bool]:
        """Hold the project's write lock (backend/locks.py) around one batch's delete and import;
        yields whether `vid` still serves (INITIAL before the first version): only then may its
        rows be written, else a newer version's refresh writes them."""
        with write_lock(self.projects.root / str(pid)):
            yield self.serving.model_version(pid) == vid

    def _round(self, pid, state, cfg, vid, classifier, api) -> tuple[Round, list[str]]:
        """What this refresh writes with: the unlabeled tasks ranked (their rows made on demand), the
        collection as last updated, the labeled tasks; and the errors of tasks left out."""
        index = self.index(pid)
        catch_up(index, api, int(pid), cfg.data_key)
        trained = (self.serving.manifest(pid, vid).get("extra") or {}).get("tasks") or []
        tasks = index.tasks(exclude=trained)
        ranked, errors = self._ranked_indexed(state, cfg, vid, classifier, tasks, api, index)
        # the groups as last updated: the update with this version's labels follows the write
        job = Round(pid, state, cfg, vid, api, ranked, self.curator.latest(pid), self.labeled(pid, trained))
        return job, errors

    def _auto_accept(self, job: Round) -> dict | None:
        """Where the project uses auto-accept (backend/accept/), what it did with this version's
        rows, made for every task here; else None."""
        auto = self.auto.prepare(job.pid, job.state, job.api)
        if auto is None:
            return None
        # tasks labeled only by auto-accept are judged again, like unlabeled ones; a task a person
        # labeled since the version's training is not (the annotated tasks are listed, as many as
        # the labels, and only where auto-accept is used)
        rows = job.ranked.rows()
        labeled = {t["id"] for t in job.api.iter_tasks(int(job.pid), annotated_only=True)}
        open_ids = ({r["task"] for r in rows} - labeled) | {t["id"] for t in auto.tasks}
        judged = [r for r in rows if r["task"] in open_ids]
        manifest = self.serving.manifest(job.pid, job.vid)
        return self.auto.apply(job.pid, auto, job.cfg, job.vid, manifest, judged, job.api)

    def _write(self, job: Round, head: Prepared, superseded, sent: Tally) -> tuple[Written, list[dict], dict | None]:
        """The head, then the rest (its rows made as written: ranked.py `RestRows`) batch by batch, each
        under the write lock and only while this version still serves; `sent` counts this refresh's
        requests. Returns what was written, the label checks and what auto-accept did."""
        pid, vid, api, project_id = job.pid, job.vid, job.api, int(job.pid)
        held = self.open.held(pid, writing=vid)
        with self.writing(pid, vid) as current:
            if not current:  # another version serves: its refresh writes
                return Written(0, 0, False, sent.sent, 0, time.perf_counter(), held, 0), [], None
            # the queue's top is noted first: from the moment Label Studio serves the version, a
            # submit's next task is held (a write failing after it is written again by the next)
            self.open.note_queue(pid, vid, head.rows)
            # LS takes the version once a prediction of it exists: a head of waiting duplicates only
            # (every other task labeled) has none, and the label checks of the rest carry it
            named = names_version(head.rows, vid)
            switch = (lambda: api.set_model_version(project_id, vid)) if named else None
            wrote = write_head(api, project_id, head.rows, written=switch)
        served, served_at = sent.sent, time.perf_counter()
        for part in tidy_parts(head.rows, keep=held):  # the old predictions out (lswrite.py `write_head`)
            held.update(self.open.held(pid))  # someone submitted meanwhile: what they are served next
            part = [r for r in part if int(r["task"]) not in held]
            with self.writing(pid, vid) as current:
                if current:  # else a newer version's writes replace them
                    write_rows(api, project_id, part, keep=held)
        head.copy_marks(api, project_id, [r["task"] for r in head.rows])  # after serving: not the head's cost
        accepted = self._auto_accept(job)
        checks = self.label_checks(pid, vid, job.cfg)
        checked = {int(r["task"]) for r in checks}  # labeled: never served, not in the queue
        arranging = lambda rows, checks: job.arrange(self.curator, rows, checks)  # noqa: E731
        rest = RestRows(job.ranked, arranging, checks, skip=[r["task"] for r in head.rows])
        settled, complete = 0, True
        while not rest.done():
            size, pause = pace(self.open, pid)
            held.update(self.open.held(pid))  # someone submitted meanwhile: what they are served next
            with self.writing(pid, vid) as current:
                if not current or superseded():
                    complete = False
                    break
                batch = rest.take(size)
                self.open.note_queue(pid, vid, [r for r in batch if int(r["task"]) not in checked])
                created = write_rows(api, project_id, batch, keep=held)
                if created and not named and names_version(batch, vid):
                    api.set_model_version(project_id, vid)
                    named = True
                settled += created
            head.copy_marks(api, project_id, [r["task"] for r in batch])
            time.sleep(pause)  # Label Studio's SQLite has one writer: let a labeler's request in
        waiting = sum(1 for r in head.rows if r.get("priority", 0.0) > 1.0) + rest.waiting
        return Written(wrote, settled, complete, served, sent.sent - served, served_at, held, waiting), checks, accepted

    def indexed_predictions(self, state, cfg, vid, classifier, tasks, api, index) -> tuple[list[dict], list[str]]:
        """Rows for indexed tasks (cached embeddings; the others fetched and embedded)."""
        ranked, errors = self._ranked_indexed(state, cfg, vid, classifier, tasks, api, index)
        return ranked.rows(), errors

    def _ranked_indexed(self, state, cfg, vid, classifier, tasks, api, index) -> tuple[Ranked, list[str]]:
        """Indexed tasks ranked, their probabilities from the memo in place (features.py)."""
        backbone, head = classifier.backbone, classifier.proba_from_features
        proba, ids, errors = self.features.of_indexed(backbone, cfg.data_key, tasks, api, state.project, index, head)
        return self._ranked(state, cfg, vid, classifier.labels, proba, ids), errors

    def unlabeled_predictions(self, state, cfg, vid, classifier, tasks, api) -> tuple[list[dict], list[str]]:
        """Rows for task dicts (new tasks: fetched and embedded, then indexed) and the errors of the
        tasks left out."""
        index = self.index(state.project)
        features, kept, errors = self.features.embed(
            classifier.backbone, cfg.data_key, tasks, api, state.project, index
        )
        ids = [int(t["id"]) for t in kept]
        proba = classifier.proba_from_features(features) if ids else None
        return self._ranked(state, cfg, vid, classifier.labels, proba, ids).rows(), errors

    def _ranked(self, state, cfg, vid, labels, proba, ids: list[int]) -> Ranked:
        columns = label_columns(cfg, labels)
        how = strategy(state)
        proba = proba if ids and columns else None
        return Ranked(cfg, vid, proba, columns, how, ids, WHY_RANDOM if how == "random" else WHY_UNCERTAIN)

    def cold_predictions(self, state, cfg, tasks, api) -> tuple[list[dict], list[str]]:
        """Before the first training: the INITIAL answer for each task, in the cold start's order
        (coldstart.py `cold_rows`)."""
        backbone = self.serving.backbone(TrainParams.from_dict(state.params or None))
        index = self.index(state.project)
        features, kept, errors = self.features.embed(backbone, cfg.data_key, tasks, api, state.project, index)
        return cold_rows(cfg, features, kept), errors

    def label_checks(self, pid: str, vid: str, cfg) -> list[dict]:
        """The version's label-check rows (labelchecks.py)."""
        return label_check_rows(self.serving.manifest(pid, vid), vid, cfg)
