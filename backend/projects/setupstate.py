"""Per-project state on disk: `<data_dir>/projects/<id>/state.json` (what `/setup` told us).

The numeric project id names the directory; Label Studio's creation stamp (see lsproto.project)
tells a recreated project from the old one: the old directory is moved aside to
`<id>.replaced-<timestamp>` and the project starts fresh. The file holds the token Label Studio
sent (needed to train after a restart), so it is written 0600.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training.atomic import write_json_atomic


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

    def same_as(self, other: ProjectState | None) -> bool:
        return other is not None and {**self.to_dict(), "updated_at": 0} == {**other.to_dict(), "updated_at": 0}


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
        state.updated_at = time.time()
        write_json_atomic(self.project_dir(state.project) / "state.json", state.to_dict(), mode=0o600)

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
        return sorted((p.name for p in self.root.iterdir() if p.is_dir() and p.name.isdigit()), key=int)
