"""`tasveer import --skip-duplicates`: the photos of an upload that duplicate a photo of the project
or an earlier photo of the same upload, asked of the backend before anything is uploaded
(POST /projects/<id>/duplicates/check, backend/collection/uploadcheck.py: exact bytes, or near by
the project's duplicate rule), PART files per request under one upload id."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from cli.backendapi import DEFAULT_BACKEND, call, login
from config.env import read
from sync.state import load_state
from sync.upload import ImageItem

PART = 32  # files per request (the backend takes at most 64)


def backend_url(args) -> str:
    state = load_state(args.data_dir) if args.data_dir else None
    url = args.backend or read("TASVEER_BACKEND_URL") or (state.backend_url if state else None) or DEFAULT_BACKEND
    return url.rstrip("/")


def duplicate_screen(args, project_id: int, progress: bool) -> Callable[[list[ImageItem]], dict[int, str]]:
    """A screen for `sync.importer.import_images`: the positions of the duplicates among the items,
    each with why ("exact duplicate of task 12", "near duplicate of b.jpg in this upload")."""
    url = backend_url(args)
    auth = login(args, url)

    def screen(items: list[ImageItem]) -> dict[int, str]:
        from tqdm import tqdm

        upload, found = uuid.uuid4().hex, {}
        with tqdm(total=len(items), desc="duplicates", unit="photo", disable=not progress) as bar:
            for start in range(0, len(items), PART):
                part = items[start : start + PART]
                files = [
                    ("files", (item.path.name, item.path.read_bytes(), "application/octet-stream")) for item in part
                ]
                answer = call(
                    "POST",
                    f"{url}/projects/{project_id}/duplicates/check",
                    auth,
                    params={"upload": upload},
                    files=files,
                )
                for checked in answer.get("files") or []:
                    why = _why(checked, items)
                    if why:
                        found[int(checked["index"])] = why
                bar.update(len(part))
        return found

    return screen


def _why(checked: dict, items: list[ImageItem]) -> str | None:
    first = checked.get("duplicate_of")
    if not first:
        return None
    kind = "exact" if checked.get("exact") else "near"
    if "task" in first:
        return f"{kind} duplicate of task {first['task']}"
    return f"{kind} duplicate of {items[int(first['file'])].path} in this upload"
