"""The collection's update job (backend/collection/curator.py) and what its result changes in Label
Studio, run after a write-back, never before one: a new photo's prediction and a correction's head
reach Label Studio first, and the groups and unusual scores follow.

After an update, the tasks whose group or unusual mark differs from what Label Studio holds
(rowprep.changed_tasks: new duplicates, the members of a group that grew, photos that became
unusual or stopped being so) get their prediction written again with the marks in it and, for a
duplicate, its place after the queue; then the changed marks are copied into their task data.
Writes are bounded by those tasks, whatever the project's size. Before the first version there is
no prediction to rewrite but the new tasks' own: the marks of older tasks wait for the first refresh.

Where it runs: the backend queues it on its collection thread (newtasks.py, one pending per
project: a burst of imports or corrections asks for one update), beside the write-back of new
photos; a training child or RQ worker runs it at the end of its refresh (refresh.py).
"""

from __future__ import annotations

from backend.collection import rowprep
from backend.writeback.lswrite import BULK_ROWS, write_rows


def update_and_rewrite(refresher, pid: str, labels: dict[int, str] | None = None) -> dict:
    """Update the collection (`labels`: a person's labels by task, None = the stored ones) and
    rewrite the predictions whose marks changed; what was done."""
    projects = refresher.projects
    state = projects.state(pid)
    if state is None or not state.label_config:
        return {"skipped": "project not set up"}
    api = projects.api(state)
    curation = rowprep.update(refresher.curator, pid, api, labels)
    if curation is None:
        return {"skipped": "no photo embedded yet"}
    report = {"photos": curation.held, "groups": len(curation.groups), "rewritten": 0}
    vid, classifier = refresher.serving.classifier(pid)
    changed = rowprep.changed_tasks(refresher.curator, pid, curation)
    if classifier is None or not changed:
        return report
    cfg = projects.config(state.label_config)
    trained = set((refresher.serving.manifest(pid, vid).get("extra") or {}).get("tasks") or [])
    checks = [r for r in refresher.label_checks(pid, vid, cfg) if int(r["task"]) in changed]
    rest = changed - {int(r["task"]) for r in checks} - trained
    index = refresher.index(pid)
    tasks = [t for t in index.tasks() if t.id in rest]
    rows = refresher.indexed_predictions(state, cfg, vid, classifier, tasks, api, index)[0] if tasks else []
    prep = rowprep.arrange(refresher.curator, pid, curation, rows, checks, refresher.labeled(pid, trained))
    out = prep.rows + prep.checks
    for start in range(0, len(out), BULK_ROWS):  # the new photos' writes get turns between
        refresher.curator.pause()  # and a correction's training and head go first (curator.give_way)
        held = refresher.open.held(pid)  # someone may have it open: its prediction stays (opentasks.py)
        with refresher.writing(pid, vid) as current:  # else a newer version's refresh writes the marks
            if not current:
                return report
            report["rewritten"] += write_rows(api, int(pid), out[start : start + BULK_ROWS], keep=held)
    report["marks_copied"] = prep.copy_marks(api, int(pid), [r["task"] for r in out])
    report["duplicates_after_queue"] = prep.moved
    return report
