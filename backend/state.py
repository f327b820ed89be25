"""Per-project state on disk: `<data_dir>/projects/<id>/state.json` (what `/setup` told us).

Label Studio sends the project as "<id>.<created timestamp>". The numeric id names the directory;
the timestamp tells a recreated project (same id, e.g. after Label Studio's database was reset)
from the old one: its directory is moved aside to `<id>.replaced-<timestamp>` and it starts fresh.
The file holds the creator's token (needed to train after a restart), so it is written 0600.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


class ProjectIdError(ValueError):
    """A project reference that is not "<id>" or "<id>.<timestamp>"."""


_UID = re.compile(r"^\s*(\d+)(?:\.(\d+))?\s*$")


def parse_project(value) -> tuple[str, str | None]:
    """"12.1795492545" -> ("12", "1795492545"); 12 -> ("12", None)."""
    if isinstance(value, bool):
        raise ProjectIdError(f"project must be an id like \"12.1795492545\"; got {value!r}")
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, dict) and "id" in value:
        return parse_project(value["id"])
    m = _UID.match(value) if isinstance(value, str) else None
    if not m:
        raise ProjectIdError(f"project must be an id like \"12.1795492545\"; got {value!r}")
    return str(int(m.group(1))), m.group(2)


@dataclass
class ProjectState:
    project: str  # numeric id, as a string
    created: str | None = None  # Label Studio's creation timestamp from the project uid
    hostname: str | None = None
    token: str | None = None
    label_config: str | None = None
    params: dict = field(default_factory=dict)
    updated_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return asdict(self)


class StateStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def project_dir(self, project: str) -> Path:
        return self.root / str(project)

    def load(self, project: str) -> ProjectState | None:
        path = self.project_dir(project) / "state.json"
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        known = set(ProjectState.__dataclass_fields__)
        return ProjectState(**{k: v for k, v in raw.items() if k in known})

    def save(self, state: ProjectState) -> None:
        folder = self.project_dir(state.project)
        folder.mkdir(parents=True, exist_ok=True)
        state.updated_at = time.time()
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".state-")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(state.to_dict(), fh, indent=1, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, folder / "state.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def retire(self, project: str, old_created: str | None) -> None:
        """Move a replaced project's directory aside (models included)."""
        folder = self.project_dir(project)
        if folder.exists():
            target = self.root / f"{project}.replaced-{old_created or int(time.time())}"
            n = 0
            while target.exists():
                n += 1
                target = self.root / f"{project}.replaced-{old_created or 'x'}-{n}"
            folder.rename(target)

    def projects(self) -> list[str]:
        return sorted(
            (p.name for p in self.root.iterdir() if p.is_dir() and p.name.isdigit()), key=int
        )
