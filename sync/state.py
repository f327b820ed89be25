"""The small state file `tasveer up` keeps in its data dir (user, legacy token, the backend's secret, ports,
project)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training.atomic import write_json_atomic

STATE_FILE = "tasveer-up.json"


@dataclass
class UpState:
    username: str = "admin@tasveer.local"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    token: str = field(default_factory=lambda: secrets.token_hex(20))
    # the backend's login (TASVEER_SECRET): made once, kept, so Label Studio's connection keeps working
    backend_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    url: str | None = None
    backend_url: str | None = None
    project_id: int | None = None
    project_title: str | None = None
    # Label Studio's database: `sqlite` or a postgresql:// URL (sync/lsdatabase.py); None in a state
    # file written before `--database` existed, which means SQLite
    database: str | None = None


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
    return write_json_atomic(state_path(data_dir), asdict(state), mode=0o600)
