"""Find image files and upload them to a Label Studio project as tasks (multipart, in chunks)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lsclient import LabelStudioError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}  # all in LS's SUPPORTED_EXTENSIONS
CHUNK_SIZE = 50  # LS accepts at most DATA_UPLOAD_MAX_NUMBER_FILES=100 files per request; smaller
# chunks let the backend predict the first ones (TASKS_CREATED per request) while the rest upload


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
    chunk_size: int = CHUNK_SIZE,
    progress: bool = True,
    timeout: float = 300.0,
) -> list[int]:
    """Upload image files like LS's import dialog (one multipart request per chunk, files committed
    to the project at once). Returns the new task ids in the order of `paths` (LS creates the
    tasks of a request in the order of its file uploads)."""
    from tqdm import tqdm

    task_ids: list[int] = []
    with tqdm(total=len(paths), desc="upload", unit="img", disable=not progress) as bar:
        for start in range(0, len(paths), chunk_size):
            chunk = list(paths[start : start + chunk_size])
            try:
                task_ids.extend(client.import_files(project_id, chunk, timeout=timeout))
            except LabelStudioError as exc:
                what = "Label Studio refused the upload" if exc.status else "uploading to Label Studio failed"
                raise UploadError(f"{what}: {exc}") from None
            bar.update(len(chunk))
    return task_ids
