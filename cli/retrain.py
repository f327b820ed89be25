"""`tasveer retrain`: ask the backend to train a project now (the model page's "train now" and
"train accurate now" buttons), and optionally wait for the new version."""

from __future__ import annotations

import argparse
import json
import sys
import time

from cli.backendapi import BackendAPIError, add_backend_options, call, login, resolve
from cli.common import fail

ENDED = ("done", "skipped", "failed")


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "retrain",
        help="train a project's model now (its parameters, or the accurate preset)",
        description="Start a training of the project in the ML backend now, whatever the "
        "label count (`retrain_every`). A new version serves only if it is not "
        "worse than the serving one (else it is kept as a candidate).",
    )
    add_backend_options(p)
    p.add_argument(
        "--preset",
        choices=["project", "accurate"],
        default="project",
        help="project: the project's own parameters (default); accurate: the accurate preset "
        "(a fine-tuned network ensembled with the head; minutes)",
    )
    p.add_argument("--wait", action="store_true", help="wait for the training to end, showing its phases")
    p.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits at most (default 3600)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        url, project = resolve(args)
        auth = login(args, url)
        asked = call("POST", f"{url}/projects/{project}/train", auth, json={"preset": args.preset})
        if not args.wait:
            print(
                json.dumps(asked) if args.json else f"project {project}: training job {asked['job']} {asked['status']}"
            )
            return 0
        job = wait(url, project, asked["job"], args.timeout, auth)
    except BackendAPIError as exc:
        return fail("retrain", str(exc))
    except TimeoutError as exc:
        return fail("retrain", str(exc), code=1)
    if args.json:
        print(json.dumps(job))
    else:
        print(describe(project, job))
    return 1 if job["state"] == "failed" else 0


def wait(url: str, project: int, job_id: str, timeout: float, auth: tuple[str, str] | None = None) -> dict:
    """The job's final record; its phases go to stderr as they change."""
    deadline, shown = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        body = call("GET", f"{url}/projects/{project}/jobs", auth)
        known = body.get("jobs", []) + [j for j in (body.get("running"), body.get("pending")) if j]
        job = next((j for j in known if j.get("id") == job_id), None)
        if job is not None:
            if job["state"] in ENDED:
                return job
            phase = (job.get("progress") or {}).get("phase") or job["state"]
            if phase != shown:
                print(f"  {phase} ...", file=sys.stderr, flush=True)
                shown = phase
        time.sleep(1.0)
    raise TimeoutError(f"training job {job_id} did not end within {timeout:g} s (it goes on in the backend)")


def describe(project: int, job: dict) -> str:
    given = job.get("result")
    result: dict = given if isinstance(given, dict) else {}
    if job["state"] == "failed":
        return f"project {project}: training job {job['id']} failed: {job.get('error')}"
    if job["state"] == "skipped" or not result.get("version"):
        return f"project {project}: nothing trained: {job.get('error') or job.get('result') or 'skipped'}"
    acc = (result.get("metrics") or {}).get("accuracy")
    served = "serving" if result.get("serving") else "candidate (not served)"
    return (
        f"project {project}: {result['version']} ({result.get('recipe') or 'project'} recipe, "
        f"{result.get('n_train')} labels, accuracy {'-' if acc is None else f'{acc:.1%}'}): {served}; "
        f"{result.get('promotion') or ''}"
    ).rstrip("; ")
