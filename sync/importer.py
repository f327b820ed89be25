"""`tasveer import`: upload images as Label Studio tasks and make sure each gets a prediction."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import requests

from sync.annotate import AnnotateError, annotate_tasks, choices_control
from sync.connection import ConnectionProblem, make_client
from sync.predictions import PredictionReport, ensure_predictions
from sync.state import load_state
from sync.upload import UploadError, collect_images, upload_files

DEFAULT_URL = "http://127.0.0.1:8080"


class ImportProblem(RuntimeError):
    """An expected failure of an import (reported without a traceback)."""


@dataclass
class ImportResult:
    task_ids: list[int] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    annotation_ids: list[int] = field(default_factory=list)
    predictions: PredictionReport | None = None

    @property
    def ok(self) -> bool:
        return self.predictions is None or self.predictions.complete


def import_images(
    client,
    project_id: int,
    paths: Iterable[str | os.PathLike],
    labels_from_folders: bool = False,
    wait: bool = True,
    *,
    timeout: float = 300.0,
    wait_backend: float = 15.0,
    progress: bool = True,
    log=print,
) -> ImportResult:
    """Upload the images under `paths` to project `project_id`.

    * non-images are skipped (listed in `result.skipped`, one message each through `log`);
    * `labels_from_folders`: paths are DIR/<class>/... trees; each task gets an annotation with
      its folder name (which must be one of the project's labels; checked before uploading);
    * `wait`: return only when every new task has a prediction (the backend writes them on
      TASKS_CREATED; after `wait_backend` s LS's retrieve-predictions action is used for the rest),
      or when `timeout` s have passed: then `result.predictions.missing` lists the tasks without one.
    """
    try:
        project = client.projects.get(id=project_id)
    except Exception as exc:  # SDK raises ApiError/NotFoundError subclasses
        raise ImportProblem(f"project {project_id} not found in Label Studio ({_short(exc)})") from None
    items, skipped = collect_images(paths, labels_from_folders)
    for path, reason in skipped:
        log(f"skipped {path}: {reason}")
    result = ImportResult(skipped=skipped)
    if not items:
        raise ImportProblem("no images to import")
    if labels_from_folders:
        try:
            _, _, labels = choices_control(project.label_config)
        except (AnnotateError, Exception) as exc:
            raise ImportProblem(f"project {project_id} cannot take labels: {_short(exc)}") from None
        unknown = sorted({i.label for i in items} - set(labels))
        if unknown:
            raise ImportProblem(f"folder names {unknown} are not labels of project {project_id} "
                                f"(its labels: {', '.join(labels)})")
    if wait and not list(client.ml.list(project=project_id)):
        raise ImportProblem(f"project {project_id} has no ML backend connected, so no task can get a "
                            f"prediction; connect one (tasveer up) or pass --no-wait")
    try:
        result.task_ids = upload_files(client, project_id, [i.path for i in items], progress=progress)
    except UploadError as exc:
        raise ImportProblem(str(exc)) from None
    log(f"created {len(result.task_ids)} tasks in project {project_id}")
    if labels_from_folders:
        pairs = [(t, i.label) for t, i in zip(result.task_ids, items)]
        try:
            result.annotation_ids = annotate_tasks(client, project, pairs, progress=progress)
        except AnnotateError as exc:
            raise ImportProblem(str(exc)) from None
        log(f"created {len(result.annotation_ids)} annotations from folder names")
    if wait:
        result.predictions = ensure_predictions(client, project_id, result.task_ids, timeout=timeout,
                                                wait_backend=wait_backend, progress=progress)
    return result


def _short(exc: BaseException) -> str:
    text = str(exc)
    body = getattr(exc, "body", None)
    if body is not None:
        text = f"HTTP {getattr(exc, 'status_code', '?')}: {body}"
    return text[:300]


# ---------------------------------------------------------------- command line

def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "import",
        help="upload images to a Label Studio project and wait until each has a prediction",
        description=(
            "Upload image files (or directories of them, recursively) to a Label Studio project as "
            "tasks, like Label Studio's import dialog. Then wait until the ML backend has written a "
            "prediction for every new task; tasks still without one after a short wait are sent "
            "through Label Studio's 'Retrieve Predictions' action. Non-image files are skipped with "
            "a message. Exit code 0: all tasks have predictions; 1: some do not (listed); "
            "2: nothing imported (bad arguments, Label Studio unreachable, bad token)."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or directories")
    parser.add_argument("--project", type=int, required=False,
                        help="Label Studio project id (default: the project of `tasveer up` in --data-dir)")
    parser.add_argument("--labels-from-folders", action="store_true",
                        help="PATHs are DIR/<class>/*.jpg trees: annotate each task with its folder name")
    parser.add_argument("--url", default=None,
                        help=f"Label Studio URL (default: $LABEL_STUDIO_URL, the `tasveer up` state, or {DEFAULT_URL})")
    parser.add_argument("--token", default=None,
                        help="Label Studio legacy token or personal access token "
                             "(default: $LABEL_STUDIO_API_KEY or the `tasveer up` state)")
    parser.add_argument("--data-dir", default="./var",
                        help="data dir of `tasveer up`, read for defaults (default: ./var)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for all predictions (default: 300)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for predictions")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_import)
    return parser


def _resolve(args) -> tuple[str, str, int | None]:
    state = load_state(args.data_dir) if args.data_dir else None
    url = args.url or os.environ.get("LABEL_STUDIO_URL") or (state and state.url) or DEFAULT_URL
    token = args.token or os.environ.get("LABEL_STUDIO_API_KEY") or (state and state.token) or ""
    project = args.project if args.project is not None else (state and state.project_id)
    return url, token, project


def run_import(args) -> int:
    url, token, project_id = _resolve(args)
    err = lambda msg: print(f"tasveer import: {msg}", file=sys.stderr)  # noqa: E731
    if project_id is None:
        err("no --project given and no `tasveer up` state in --data-dir")
        return 2
    try:
        client = make_client(url, token)
        result = import_images(client, project_id, args.paths, args.labels_from_folders,
                               wait=not args.no_wait, timeout=args.timeout, progress=not args.quiet,
                               log=lambda m: print(m, file=sys.stderr))
    except (ConnectionProblem, ImportProblem) as exc:
        err(str(exc))
        return 2
    except requests.RequestException as exc:
        err(f"lost the connection to Label Studio: {exc}")
        return 2
    print(f"imported {len(result.task_ids)} images into project {project_id} ({url}/projects/{project_id}); "
          f"skipped {len(result.skipped)}")
    report = result.predictions
    if report is None:
        return 0
    if report.complete:
        print(f"all {len(report.task_ids)} tasks have a prediction")
        return 0
    missing = report.missing
    shown = ", ".join(map(str, missing[:50])) + (" ..." if len(missing) > 50 else "")
    err(f"{len(missing)} of {len(report.task_ids)} tasks have no prediction after {args.timeout:.0f} s: {shown}")
    reasons = report.errors or ["the backend wrote none and Label Studio's retrieve-predictions action "
                                "returned none (see the backend log)"]
    for reason in dict.fromkeys(reasons):
        err(f"reason: {reason}")
    return 1


def main(argv: list[str] | None = None) -> int:
    """`python -m sync.importer ...`: this sub-command alone (same as `tasveer import ...`)."""
    parser = argparse.ArgumentParser(prog="tasveer")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["import", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
