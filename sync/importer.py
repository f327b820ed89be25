"""Import images as Label Studio tasks and make sure each gets a prediction (`tasveer import`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sync.annotate import AnnotateError, annotate_tasks, project_config
from sync.predictions import PredictionReport, ensure_predictions
from sync.upload import ImageItem, UploadError, collect_images, upload_files


class ImportProblem(RuntimeError):
    """An expected failure of an import (reported without a traceback)."""


@dataclass
class ImportResult:
    task_ids: list[int] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    annotation_ids: list[int] = field(default_factory=list)
    duplicates: list[tuple[Path, str]] = field(default_factory=list)  # left out by the screen
    predictions: PredictionReport | None = None

    @property
    def ok(self) -> bool:
        return self.predictions is None or self.predictions.complete


def import_images(
    client,
    project_id: int,
    paths: Iterable[str | os.PathLike[str]],
    labels_from_folders: bool = False,
    wait: bool = True,
    *,
    timeout: float = 300.0,
    wait_backend: float = 15.0,
    progress: bool = True,
    log=print,
    screen: Callable[[list[ImageItem]], dict[int, str]] | None = None,
) -> ImportResult:
    """Upload the images under `paths` to project `project_id`.

    * non-images are skipped (listed in `result.skipped`, one message each through `log`);
    * `labels_from_folders`: paths are DIR/<class>/... trees; each task gets an annotation with
      its folder name (which must be one of the project's labels; checked before uploading), the
      tasks of an upload request annotated while the next request uploads;
    * `wait`: return only when every new task has a prediction (the backend writes them on
      TASKS_CREATED, each upload request's tasks while the next ones upload; after `wait_backend`
      s without a new one LS's retrieve-predictions action is used for the rest), or when
      `timeout` s have passed: then `result.predictions.missing` lists the tasks without one;
    * `screen(items)`: positions of items to leave out, with why (`--skip-duplicates`); they go
      into `result.duplicates`, one message each through `log`.
    """
    project = _project(client, project_id)
    items, skipped = collect_images(paths, labels_from_folders)
    for path, reason in skipped:
        log(f"skipped {path}: {reason}")
    result = ImportResult(skipped=skipped)
    if not items:
        raise ImportProblem("no images to import")
    if labels_from_folders:
        _check_labels(project, items)
    if screen is not None:
        items = _screened(items, screen, result, log)
        if not items:
            log("every image is a duplicate: nothing to upload")
            return result
    if wait and not list(client.ml.list(project=project_id)):
        raise ImportProblem(
            f"project {project_id} has no ML backend connected, so no task can get a "
            f"prediction; connect one (tasveer up) or pass --no-wait"
        )
    _upload(client, project, items, labels_from_folders, result, progress)
    log(f"created {len(result.task_ids)} tasks in project {project_id}")
    if labels_from_folders:
        log(f"created {len(result.annotation_ids)} annotations from folder names")
    if wait:
        result.predictions = ensure_predictions(
            client, project_id, result.task_ids, timeout=timeout, wait_backend=wait_backend, progress=progress
        )
    return result


def _screened(items: list[ImageItem], screen, result: ImportResult, log) -> list[ImageItem]:
    left_out = screen(items)
    result.duplicates = [(items[i].path, why) for i, why in sorted(left_out.items())]
    for path, why in result.duplicates:
        log(f"left out {path}: {why}")
    return [item for i, item in enumerate(items) if i not in left_out]


def _project(client, project_id: int):
    try:
        return client.projects.get(id=project_id)
    except Exception as exc:  # SDK raises ApiError/NotFoundError subclasses
        raise ImportProblem(f"project {project_id} not found in Label Studio ({_short(exc)})") from None


def _check_labels(project, items: list[ImageItem]) -> None:
    """Every folder name must be a label of the project (nothing is uploaded otherwise)."""
    try:
        labels = project_config(project).labels
    except AnnotateError as exc:
        raise ImportProblem(str(exc)) from None
    unknown = sorted({i.label for i in items if i.label is not None} - set(labels))
    if unknown:
        raise ImportProblem(
            f"folder names {unknown} are not labels of project {project.id} (its labels: {', '.join(labels)})"
        )


def _upload(client, project, items: list[ImageItem], labels_from_folders: bool, result, progress: bool) -> None:
    """Upload `items` into `result.task_ids`; with `labels_from_folders` annotate each uploaded
    chunk (into `result.annotation_ids`) while the next one uploads."""
    from tqdm import tqdm

    pending = iter(items)
    labelled = sum(1 for i in items if i.label is not None) if labels_from_folders else 0
    bar = tqdm(total=labelled, desc="annotate", unit="task", disable=not (progress and labelled))

    def annotate(files, task_ids) -> None:
        chunk = [next(pending) for _ in files]
        pairs = [(t, i.label) for t, i in zip(task_ids, chunk) if i.label is not None]
        result.annotation_ids.extend(annotate_tasks(client, project, pairs, progress=False))
        bar.update(len(pairs))

    try:
        result.task_ids = upload_files(
            client,
            project.id,
            [i.path for i in items],
            progress=progress,
            on_chunk=annotate if labelled else None,
        )
    except (UploadError, AnnotateError) as exc:
        raise ImportProblem(str(exc)) from None
    finally:
        bar.close()


def _short(exc: BaseException) -> str:
    text = str(exc)
    body = getattr(exc, "body", None)
    if body is not None:
        text = f"HTTP {getattr(exc, 'status_code', '?')}: {body}"
    return text[:300]
