"""`tasveer import`: upload images to a Label Studio project and wait until each has a prediction."""

from __future__ import annotations

import argparse
import sys

from cli.backendapi import BackendAPIError
from cli.importcheck import duplicate_screen
from config.env import read
from lsclient import LabelStudioError
from sync.connection import ConnectionProblem, make_client
from sync.importer import ImportProblem, import_images
from sync.state import load_state

DEFAULT_URL = "http://127.0.0.1:8080"


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
    parser.add_argument(
        "--project",
        type=int,
        required=False,
        help="Label Studio project id (default: the project of `tasveer up` in --data-dir)",
    )
    parser.add_argument(
        "--labels-from-folders",
        action="store_true",
        help="PATHs are DIR/<class>/*.jpg trees: annotate each task with its folder name",
    )
    parser.add_argument(
        "--url",
        default=None,
        help=f"Label Studio URL (default: $LABEL_STUDIO_URL, the `tasveer up` state, or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="Label Studio legacy token or personal access token "
        "(default: $LABEL_STUDIO_API_KEY or the `tasveer up` state)",
    )
    parser.add_argument(
        "--data-dir", default="./var", help="data dir of `tasveer up`, read for defaults (default: ./var)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for all predictions (default: 300)"
    )
    parser.add_argument(
        "--skip-duplicates",
        action="store_true",
        help="leave out photos that are exact or near duplicates of a photo in the project or earlier in "
        "this upload (asked of the ML backend before uploading; says how many)",
    )
    parser.add_argument(
        "--backend",
        default=None,
        help="ML backend URL for --skip-duplicates (default: $TASVEER_BACKEND_URL or the `tasveer up` state)",
    )
    parser.add_argument("--no-wait", action="store_true", help="do not wait for predictions")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def _resolve(args) -> tuple[str, str, int | None]:
    state = load_state(args.data_dir) if args.data_dir else None
    url = args.url or read("LABEL_STUDIO_URL") or (state.url if state else None) or DEFAULT_URL
    token = args.token or read("LABEL_STUDIO_API_KEY") or (state.token if state else None) or ""
    project = args.project if args.project is not None else (state.project_id if state else None)
    return url, token, project


def run(args) -> int:
    url, token, project_id = _resolve(args)
    err = lambda msg: print(f"tasveer import: {msg}", file=sys.stderr)  # noqa: E731
    if project_id is None:
        err("no --project given and no `tasveer up` state in --data-dir")
        return 2
    try:
        client = make_client(url, token)
        screen = duplicate_screen(args, project_id, not args.quiet) if args.skip_duplicates else None
        result = import_images(
            client,
            project_id,
            args.paths,
            args.labels_from_folders,
            wait=not args.no_wait,
            timeout=args.timeout,
            progress=not args.quiet,
            log=lambda m: print(m, file=sys.stderr),
            screen=screen,
        )
    except (ConnectionProblem, ImportProblem, BackendAPIError) as exc:
        err(str(exc))
        return 2
    except LabelStudioError as exc:
        err(f"lost the connection to Label Studio: {exc}")
        return 2
    print(
        f"imported {len(result.task_ids)} images into project {project_id} ({url}/projects/{project_id}); "
        f"skipped {len(result.skipped)}" + (f"; left out {_duplicates(result)}" if args.skip_duplicates else "")
    )
    report = result.predictions
    if report is None:
        return 0
    if report.complete:
        print(f"all {len(report.task_ids)} tasks have a prediction")
        return 0
    missing = report.missing
    shown = ", ".join(map(str, missing[:50])) + (" ..." if len(missing) > 50 else "")
    err(f"{len(missing)} of {len(report.task_ids)} tasks have no prediction after {args.timeout:.0f} s: {shown}")
    reasons = report.errors or [
        "the backend wrote none and Label Studio's retrieve-predictions action returned none (see the backend log)"
    ]
    for reason in dict.fromkeys(reasons):
        err(f"reason: {reason}")
    return 1


def _duplicates(result) -> str:
    exact = sum(1 for _, why in result.duplicates if why.startswith("exact"))
    n = len(result.duplicates)
    return f"{n} duplicate{'s' if n != 1 else ''} ({exact} exact, {n - exact} near)"
