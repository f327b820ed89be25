"""The small state file `tasveer up` keeps in its data dir (user, legacy token, ports, project)."""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "tasveer-up.json"


@dataclass
class UpState:
    username: str = "admin@tasveer.local"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    token: str = field(default_factory=lambda: secrets.token_hex(20))
    url: str | None = None
    backend_url: str | None = None
    project_id: int | None = None
    project_title: str | None = None


def state_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / STATE_FILE


def load_state(data_dir: str | os.PathLike) -> UpState | None:
    path = state_path(data_dir)
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    known = {k: v for k, v in raw.items() if k in UpState.__dataclass_fields__}
    return UpState(**known)


def save_state(data_dir: str | os.PathLike, state: UpState) -> Path:
    """Written atomically and readable by the owner only (it holds the password and token)."""
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh, indent=2)
    os.replace(tmp, path)
    return path
