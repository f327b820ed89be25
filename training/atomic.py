"""One way to write a file so that readers see the old content or the new, never half of it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes, *, mode: int | None = None, fsync: bool = True) -> Path:
    """Write `data` to a unique temp file beside `path`, then rename it over `path` in one step.
    `mode` (e.g. 0o600 for files holding tokens) is set before the file becomes visible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj, *, mode: int | None = None, fsync: bool = True) -> Path:
    return write_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode(), mode=mode, fsync=fsync)
