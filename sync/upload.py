"""Find image files and upload them to a Label Studio project as tasks (multipart, in chunks).

The backend predicts each upload request's tasks (TASKS_CREATED) while the next requests upload, so
uploads and predictions overlap already; a caller's own work per chunk (the importer's annotations)
runs while the next chunk uploads. One request in flight (`IN_FLIGHT`): with two, 250-photo imports
into a `tasveer up` with a trained version (SQLite, 2 shared cores, alternated 1,2,2,1,1,2,2,1;
`bench/scale_inflight.py`, 2026-12-05) uploaded in 7.4 s against 2.5 s (median) and had every
prediction after 17.9 s against 15.6 s: SQLite takes one writer at a time anyway, and the
backend's predictions set the pace. No "database is locked" and no retry either way."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lsclient import LabelStudioError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}  # all in LS's SUPPORTED_EXTENSIONS
CHUNK_SIZE = 50  # files per request (LS's DATA_UPLOAD_MAX_NUMBER_FILES: 100 by default, 1000 in the LS
# tasveer runs); small chunks let the backend predict the first ones (TASKS_CREATED per request)
# while the rest upload
IN_FLIGHT = 1  # upload requests at a time (measured: see above)


class UploadError(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageItem:
    path: Path
    label: str | None = None


def why_not_image(path: Path) -> str | None:
    """None for a readable image LS accepts; otherwise the reason to skip it."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"not an image file extension ({path.suffix or 'none'})"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"not a readable image ({type(exc).__name__})"
    return None


def _walk(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def collect_images(
    paths: Iterable[str | os.PathLike[str]], labels_from_folders: bool = False
) -> tuple[list[ImageItem], list[tuple[Path, str]]]:
    """Image files under `paths` (files or directories, recursive) and the skipped files with reasons.

    With `labels_from_folders` every PATH is a class-per-folder tree DIR/<class>/...: the first folder
    level below DIR names the label of every image under it."""
    items: list[ImageItem] = []
    skipped: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            skipped.append((path, "does not exist"))
            continue
        if labels_from_folders:
            if not path.is_dir():
                skipped.append((path, "--labels-from-folders needs directories DIR/<class>/*"))
                continue
            candidates = [
                (f, f.relative_to(path).parts[0] if len(f.relative_to(path).parts) > 1 else None) for f in _walk(path)
            ]
        else:
            candidates = [(f, None) for f in (_walk(path) if path.is_dir() else [path])]
        for file, label in candidates:
            reason = why_not_image(file)
            if reason is None and labels_from_folders and label is None:
                reason = "not inside a class folder"
            if reason:
                skipped.append((file, reason))
            else:
                items.append(ImageItem(file, label))
    return items, skipped


def upload_files(
    client,
    project_id: int,
    paths: Sequence[Path],
    *,
    chunk_size: int | None = None,
    in_flight: int | None = None,
    progress: bool = True,
    timeout: float = 300.0,
    on_chunk: Callable[[list[Path], list[int]], None] | None = None,
) -> list[int]:
    """Upload image files like LS's import dialog (one multipart request per chunk, files committed
    to the project at once), `in_flight` requests at a time. Returns the new task ids in the order
    of `paths` (LS creates the tasks of a request in the order of its file uploads). `on_chunk(files,
    task_ids)` runs for each uploaded chunk, in order, while the next one uploads. After a failed
    chunk no further one is sent; those already in flight finish."""
    from tqdm import tqdm

    size = chunk_size or CHUNK_SIZE  # (the module's values read at call time)
    chunks = [list(paths[i : i + size]) for i in range(0, len(paths), size)]
    width = max(1, in_flight or IN_FLIGHT)
    task_ids: list[int] = []
    with (
        tqdm(total=len(paths), desc="upload", unit="img", disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=width, thread_name_prefix="upload") as pool,
    ):
        pending: deque = deque()

        def finish() -> None:
            files, future = pending.popleft()
            ids = future.result()
            task_ids.extend(ids)
            bar.update(len(files))
            if on_chunk is not None:
                on_chunk(files, ids)

        try:
            for chunk in chunks:
                pending.append((chunk, pool.submit(_upload_chunk, client, project_id, chunk, timeout)))
                if len(pending) > width:  # the next chunk is queued: it uploads while `on_chunk` runs
                    finish()
            while pending:
                finish()
        except BaseException:
            for _, future in pending:  # not yet sent: never sent (those in flight finish)
                future.cancel()
            raise
    return task_ids


def _upload_chunk(client, project_id: int, chunk: list[Path], timeout: float) -> list[int]:
    try:
        return client.import_files(project_id, chunk, timeout=timeout)
    except LabelStudioError as exc:
        what = "Label Studio refused the upload" if exc.status else "uploading to Label Studio failed"
        raise UploadError(f"{what}: {exc}") from None
