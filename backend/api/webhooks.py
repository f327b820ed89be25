"""`handle_webhook`: what each Label Studio webhook action makes the backend do.

Label Studio waits 1 s for the answer, so nothing here trains or predicts: annotation changes
(and LS's START_TRAINING) schedule a training job, TASKS_CREATED schedules background prediction
of the new tasks, every other action is acknowledged and ignored. A person's submit also says what
they are served next: it is held (writeback/opentasks.py).

`retrain_every` N (a training parameter): annotation changes are counted (retrain.py) and every
Nth schedules the training. START_TRAINING is gated by the same count without adding to it: Label
Studio sends one after every saved annotation when "start training on annotation submission" is on,
and cannot be told from its "Start Training" button; the model page's "train now" and POST /train
always train.
"""

from __future__ import annotations

from backend.errors import RequestError, quoted
from backend.projects.registry import project_id
from training.params import ParamError, TrainParams

TRAIN_ACTIONS = {
    "ANNOTATION_CREATED",
    "ANNOTATIONS_CREATED",
    "ANNOTATION_UPDATED",
    "ANNOTATION_DELETED",
    "ANNOTATIONS_DELETED",
    "TASKS_DELETED",
    "START_TRAINING",
}


def handle_webhook(service, action: str, body: dict) -> dict:
    project = body.get("project")
    if project is None and isinstance(body.get("annotation"), dict):
        project = body["annotation"].get("project")
    try:
        pid, _ = project_id(project)
    except RequestError:
        raise RequestError(f"{quoted(action)}: webhook has no project id") from None
    if action not in TRAIN_ACTIONS and action != "TASKS_CREATED":
        return {"status": "ignored", "reason": f"action {quoted(action)} needs no work"}
    tasks = body.get("tasks")
    if action == "TASKS_CREATED" and not isinstance(tasks, list):
        raise RequestError("TASKS_CREATED: tasks must be a list")
    label_config = body["project"].get("label_config") if isinstance(body.get("project"), dict) else None
    if not service.ensure_project(pid, label_config):
        return {"status": "ignored", "reason": f"project {pid} is not set up (no /setup yet)"}
    if action == "TASKS_CREATED" and isinstance(tasks, list):
        service.writer.submit(pid, tasks)
        return {"status": "scheduled", "predict_tasks": len(tasks)}
    if own_auto_accept(service, pid, action, body):
        return {"status": "ignored", "reason": "an auto-accepted label written by this backend (never trained on)"}
    note_submit(service, pid, action, body)
    every = retrain_every(service, pid)
    if every > 1:
        due, counted = service.counter.add(pid, 0 if action == "START_TRAINING" else changes(body), every)
        if not due:
            return {"status": "counted", "annotations_since_training": counted, "retrain_every": every}
    job = service.jobs.submit(pid, action)
    return {"status": "scheduled", "job": job.id, "job_state": job.state, "coalesced": job.requests}


def note_submit(service, pid: str, action: str, body: dict) -> None:
    """A person's submit (or skip, or update): Label Studio serves them their next task now, and
    every write leaves it as it is until they submit again (writeback/opentasks.py)."""
    ann = body.get("annotation")
    if action not in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED") or not isinstance(ann, dict):
        return
    who = ann.get("completed_by")
    who = who.get("id") if isinstance(who, dict) else who
    task = ann.get("task")
    task = task.get("id") if isinstance(task, dict) else task
    if isinstance(who, int) and isinstance(task, int):
        service.refresher.open.note_submit(pid, who, task)


def changes(body: dict) -> int:
    """How many annotations (or tasks) a webhook says changed."""
    for key in ("annotations", "annotation", "tasks"):
        value = body.get(key)
        if isinstance(value, list):
            return len(value)
    return 1


def retrain_every(service, pid: str) -> int:
    state = service.projects.state(pid)
    try:
        return TrainParams.from_dict((state.params if state else None) or None).retrain_every
    except ParamError:
        return 1


def own_auto_accept(service, pid: str, action: str, body: dict) -> bool:
    """Whether the webhook reports the backend's own auto-accepted annotations (autoaccept.py):
    they are never training labels, so writing or removing one must not start a training."""
    store = service.refresher.auto.store
    if action == "ANNOTATION_CREATED" and isinstance(body.get("annotation"), dict):
        ann = body["annotation"]
        who = ann.get("completed_by")
        who = who.get("id") if isinstance(who, dict) else who
        return who is not None and store.own_annotation(pid, [ann.get("id")], completed_by=who)
    if action == "ANNOTATIONS_DELETED" and isinstance(body.get("annotations"), list):
        return store.own_annotation(pid, [a.get("id") for a in body["annotations"] if isinstance(a, dict)])
    return False
