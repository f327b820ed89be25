"""The training section: idle / queued / running with the job's progress (Job.progress: phase,
epoch, step, ETA) and the last error, kept current by polling GET /projects/<id>/training
(static/page.js, starting from the status in the #training-data block)."""

from __future__ import annotations

from backend.jobs.runner import FAILED
from backend.ui.html import data_block, esc


def training_status(service, pid: str) -> dict:
    slot = service.training_status(pid)
    jobs = service.jobs.jobs(pid)
    finished = [j for j in jobs if j.finished_at]
    failed = [j for j in finished if j.state == FAILED]
    state = "running" if slot["running"] else ("queued" if slot["pending"] else "idle")
    last = finished[-1].to_dict() if finished else None
    return {
        "project": pid,
        "state": state,
        "running": slot["running"],
        "pending": slot["pending"],
        "last": last,
        "last_error": (
            {"job": failed[-1].id, "error": failed[-1].error, "at": failed[-1].finished_at} if failed else None
        ),
        "model_version": service.serving.model_version(pid),
        "annotations_since_training": service.counter.count(pid),
    }


def training_section(pid: str, status: dict) -> str:
    project = esc(pid)
    return (
        "<h2>Training</h2><div id='training' data-project='" + project + "'>"
        "<p><b id='train-state'>" + esc(status["state"]) + "</b> <span id='train-detail'></span></p>"
        "<p><span class='progress'><i id='train-bar'></i></span> "
        "<span id='train-progress' class='small'></span></p>"
        "<p id='train-last' class='small muted'></p><p id='train-error' class='small err'></p>"
        "<p id='train-new' class='small'></p>"
        "<button id='train-now' data-action='train' data-project='" + project + "'>train now</button> "
        "<button id='train-accurate' title='the accurate preset: a fine-tuned network, minutes; "
        "serves only if better' data-action='train' data-preset='accurate' data-project='" + project + "'>"
        "train accurate now</button> "
        "<span id='train-msg' class='small'></span></div>" + data_block("training-data", status)
    )
