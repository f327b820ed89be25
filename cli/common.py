"""Small pieces several verbs share: the embedding cache location, errors, reading images."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from config.env import read


def default_cache() -> Path:
    """`$TASVEER_CACHE`, else `$XDG_CACHE_HOME/tasveer`, else `~/.cache/tasveer`."""
    return read("TASVEER_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tasveer")


def fail(verb: str, message: str, code: int = 2) -> int:
    print(f"tasveer {verb}: error: {message}", file=sys.stderr)
    return code


def add_json_and_cache(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache directory (default $TASVEER_CACHE or ~/.cache/tasveer)",
    )


def read_images(paths) -> tuple[list[bytes], dict[int, str]]:
    """The bytes of each file (b"" for an unreadable one) and {index: why} for the unreadable."""
    from training.images import ImageError, read_image_file

    blobs, errors = [], {}
    for i, p in enumerate(paths):
        try:
            blobs.append(read_image_file(p))
        except ImageError as exc:
            errors[i] = str(exc)
            blobs.append(b"")
    return blobs, errors


def locate_model(path: Path):
    """(store, version id) of a model store (None: its serving version) or one version directory."""
    from training.store import ModelStore, StoreError

    if (path / "manifest.json").exists():
        return ModelStore(path.parent.parent), path.name
    if (path / "versions").is_dir():
        return ModelStore(path), None
    raise StoreError(f"{path}: neither a model store nor a version directory")


def open_model(path: Path):
    """A Classifier from a model store (its serving version) or one version directory."""
    store, vid = locate_model(path)
    return store.load(vid)
