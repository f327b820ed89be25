"""What the read routes answer, each assembled from the `Backend` in one call. They block (manifests
on disk, job records in Redis), so the routes run them in the thread pool, never on the event loop."""

from __future__ import annotations

from pathlib import Path

from backend.errors import NotFound, RequestError, quoted
from backend.jobs.runner import DONE, FAILED, QUEUED, RUNNING, SKIPPED
from backend.ui.acceptsection import auto_accept_summary
from backend.ui.metrics import metrics_page, version_summary
from training.params import TrainParams

# our job states -> the words Label Studio's MLBackendTrainJob understands
LS_JOB_STATUS = {QUEUED: "queued", RUNNING: "started", DONE: "finished", SKIPPED: "finished", FAILED: "failed"}


def _set_up(backend, pid: str):
    state = backend.projects.state(pid)
    if state is None:
        raise NotFound(f"project {pid} is not set up (no /setup yet)")
    return state


def params_answer(pid: str, explicit: dict) -> dict:
    """The project's explicit training parameters and the effective ones (defaults filled in)."""
    return {"project": pid, "params": explicit, "effective": TrainParams.from_dict(explicit or None).to_dict()}


def project_params(backend, pid: str) -> dict:
    """`params_answer` of a set-up project (NotFound otherwise)."""
    return params_answer(pid, _set_up(backend, pid).params)


def job_status(backend, job_id) -> dict:
    """A training job's state in Label Studio's words; 410 for a job nobody knows (any more)."""
    job = backend.jobs.get(job_id)
    if job is None:
        raise RequestError(f"no training job {quoted(job_id)}", status=410)
    return {"job_status": LS_JOB_STATUS.get(job.state, job.state), "error": job.error}


def versions(backend, pid: str | None) -> dict:
    """The project's model versions, serving version and training state; `pid` None means the only
    project there is (RequestError 400 when there are none or several)."""
    if pid is None:
        known = backend.projects.ids()
        if len(known) != 1:
            raise RequestError('say which project: JSON body {"project": ...} or ?project=<id>', status=400)
        pid = known[0]
    manifests = backend.serving.versions(pid)
    return {
        "versions": [mf["version"] for mf in manifests],
        "model_version": backend.serving.model_version(pid),
        "project": pid,
        "details": [version_summary(mf) for mf in manifests],
        "jobs": backend.training_status(pid),
        # tasks someone may have open in the labeling view: they keep the version they were served
        # with until their person submits again (writeback/opentasks.py)
        "kept_open": sorted(backend.refresher.open.held(pid)),
    }


def project_jobs(backend, pid: str) -> dict:
    """The project's training state, its recent jobs and its background write-backs."""
    return {
        "project": pid,
        **backend.training_status(pid),
        "jobs": [j.to_dict() for j in backend.jobs.jobs(pid)],
        "background": backend.writer.records(pid) + (backend.lane.records(pid) if backend.lane else []),
        "model_version": backend.serving.model_version(pid),
    }


def auto_accept(backend, pid: str) -> dict:
    """Auto-accept per version of a set-up project (NotFound otherwise)."""
    _set_up(backend, pid)
    return auto_accept_summary(backend, pid)


def confusion_png(backend, pid: str | None, vid: str) -> Path:
    """The confusion matrix image of version `vid`; `pid` None means the one project that has it."""
    if pid is None:
        owners = [p for p in backend.projects.ids() if any(mf["version"] == vid for mf in backend.serving.versions(p))]
        if len(owners) != 1:
            raise (
                NotFound(f"no model version {quoted(vid)}")
                if not owners
                else RequestError(f"several projects have a version {quoted(vid)}; add ?project=<id>", status=400)
            )
        pid = owners[0]
    return backend.serving.confusion_png(pid, vid)


def metrics_html(backend, pid: str | None) -> str:
    """The metrics page of one project, or of every project when `pid` is None."""
    return metrics_page(backend, [pid] if pid else backend.projects.ids())
