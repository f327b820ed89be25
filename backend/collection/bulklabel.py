""" "Label these like this one": one label given to several tasks of a project in one action, each
written to Label Studio as a submitted annotation of one person, then trained on like any other label.

Who the person is. The backend's login (api/login.py) is one shared secret: it proves that the
caller may use the model page, not who is at the keyboard, and the backend holds one Label Studio
token, that of the user who connected the project. So the person is named in the request
(`annotator`: the e-mail or id of a Label Studio user of that token's organization) and defaults to
the token's own user (with `tasveer up`, the person who ran it). Label Studio 1.23.2 takes an
annotation's `completed_by` as any user id (tasks/serializers.py, a PrimaryKeyRelatedField over
every user; api.py fills in the token's user only when it is absent), so the annotations are shown
in Label Studio under that person's name, exactly like their own submits; the check that the
person belongs to the organization is made here. The auto-accept user is refused: its annotations
are never training labels (lsproto/autoaccept.py).

Writes are bounded: one request per annotation, at most MAX_TASKS per action (a refusal beyond,
nothing written). Tasks whose newest label by a person is already the label are left as they are.

Training: each annotation makes Label Studio send ANNOTATION_CREATED, and the webhook route asks
for a training as for any submit (api/webhooks.py, counted by `retrain_every`). So that the burst
costs one training that sees all of it, the action holds the project's training lock
(`projects/<id>/train.lock`, jobs/trainer.py) while it writes, when no training is running: a
training the first webhook starts waits for the lock, then reads every annotation of the action;
the later webhooks merge into the one pending job (jobs/runner.py), which finds nothing new when
the first version serves. When a training is already running the lock is not waited for: the
webhooks' job is then the pending one, started after it, and it too reads the whole burst. RQ
workers on other machines do not share the lock; there the runner's coalescing alone applies.
"""

from __future__ import annotations

from backend.errors import NotFound, RequestError, quoted
from backend.locks import training_lock
from backend.writeback.taskindex import TaskIndex, catch_up
from lsclient import LabelStudioError
from lsproto.results import choice_result

MAX_TASKS = 200  # annotations written by one action (one Label Studio request each)


def parse_label_like(body: dict) -> tuple[list[int], str, str | int | None]:
    """(task ids without repeats, label, annotator) from {"task_ids": [...], "label": "...",
    "annotator": e-mail or id (optional)}; RequestError 422 naming what is wrong."""
    ids, label, who = body.get("task_ids"), body.get("label"), body.get("annotator")
    if not isinstance(ids, list) or not ids:
        raise RequestError(f"task_ids must be a non-empty list of task ids; got {quoted(ids)}")
    if len(ids) > MAX_TASKS:
        raise RequestError(f"at most {MAX_TASKS} tasks per action; got {len(ids)} (split them into several)")
    if not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in ids):
        raise RequestError(f"task_ids must be positive whole numbers; got {quoted(ids)}")
    if not isinstance(label, str) or not label:
        raise RequestError(f"label must be one of the project's labels; got {quoted(label)}")
    if who is not None and not (isinstance(who, str) and who.strip()) and not (isinstance(who, int) and who > 0):
        raise RequestError(f"annotator must be a Label Studio user's e-mail or id; got {quoted(who)}")
    return list(dict.fromkeys(ids)), label, who


def person(api, annotator: str | int | None) -> dict:
    """{"id", "email", "name"} of the person the annotations are written as (see the module
    docstring); RequestError 422 when `annotator` names nobody of the organization."""
    people = api.members()
    if annotator is None:
        annotator = api.whoami().id
    for p in people:
        if p["id"] == annotator or (isinstance(annotator, str) and p["email"].lower() == annotator.strip().lower()):
            return p
    known = ", ".join(p["email"] for p in people[:20])
    raise RequestError(f"annotator {quoted(annotator)} is not a Label Studio user of this organization ({known})")


def label_like(service, pid: str, task_ids: list[int], label: str, annotator: str | int | None = None) -> dict:
    """Write `label` as `annotator`'s annotation of each task (see the module docstring).
    Answers {"project", "label", "annotator", "created": [{task, annotation}], "unchanged": [task],
    "failed": [{task, error}], "held_training"}; 422 for a label outside the labeling config, 404
    for tasks the project does not have (nothing is written then)."""
    state = service.projects.state(pid)
    if state is None or not state.label_config:
        raise NotFound(f"project {pid} is not set up (no /setup yet)")
    cfg = service.projects.config(state.label_config)
    if label not in cfg.labels:
        raise RequestError(f"label {quoted(label)} is not in project {pid}'s labeling config ({', '.join(cfg.labels)})")
    api = service.projects.api(state)
    project_dir = service.projects.root / str(pid)
    index = TaskIndex(project_dir)
    catch_up(index, api, int(pid), cfg.data_key)
    known = {t.id for t in index.tasks()}
    foreign = [t for t in task_ids if t not in known]
    if foreign:
        raise NotFound(f"project {pid} has no task {', '.join(map(str, foreign[:20]))} (another project's?)")
    who = person(api, annotator)
    examples, _ = api.annotated_examples(int(pid), cfg)
    current = {e.task_id: e.label for e in examples}
    todo = [t for t in task_ids if current.get(t) != label]
    result = choice_result(cfg.from_name, cfg.to_name, label)
    created, failed = [], []
    with training_lock(project_dir, wait=False) as held:
        for task in todo:
            try:
                created.append({"task": task, "annotation": api.create_annotation(int(pid), task, result, who["id"])})
            except LabelStudioError as exc:  # e.g. deleted meanwhile: the others still get their label
                failed.append({"task": task, "error": str(exc)[:300]})
    return {
        "project": pid,
        "label": label,
        "annotator": who,
        "created": created,
        "unchanged": [t for t in task_ids if t not in todo],
        "failed": failed,
        "held_training": held,
    }
