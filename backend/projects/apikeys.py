"""Per-project API keys for applications calling `/projects/<id>/classify`.

    projects/<id>/API_KEY.json   {"sha256": <hex of the key>, "created_at", "hint"}  (0600, atomic)

Only the key's SHA-256 is kept: the key itself is shown once, when it is made (a key is 32 random
bytes, so a plain hash is enough: nothing to guess from it). Making a new key replaces the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path

from training.atomic import write_json_atomic

log = logging.getLogger(__name__)

KEY_FILE = "API_KEY.json"
PREFIX = "tsv_"  # recognisable in logs and secret scanners


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, projects_root: Path):
        self.root = Path(projects_root)

    def _path(self, pid: str) -> Path:
        return self.root / pid / KEY_FILE

    def _record(self, pid: str) -> dict | None:
        try:
            record = json.loads(self._path(pid).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # unreadable: the project keeps requiring a key
            log.error("project %s: %s is unreadable (%s); no key matches until a new one is made", pid, KEY_FILE, exc)
            return {"sha256": ""}
        return record if isinstance(record, dict) else {"sha256": ""}

    def create(self, pid: str) -> dict:
        """A new key for the project (replacing any older one): {"key", "created_at", "hint"}; the
        key is in this answer only."""
        key = PREFIX + secrets.token_urlsafe(32)
        record = {"sha256": _digest(key), "created_at": datetime.now(UTC).isoformat(), "hint": key[:8] + "…"}
        write_json_atomic(self._path(pid), record, mode=0o600)
        return {"key": key, "created_at": record["created_at"], "hint": record["hint"]}

    def info(self, pid: str) -> dict | None:
        """When the project's key was made and its first characters (never the key), or None."""
        record = self._record(pid)
        return None if record is None else {"created_at": record.get("created_at"), "hint": record.get("hint")}

    def has(self, pid: str) -> bool:
        return self._record(pid) is not None

    def matches(self, pid: str, key: str) -> bool:
        record = self._record(pid)
        expected = str((record or {}).get("sha256") or "")
        return bool(expected) and hmac.compare_digest(expected, _digest(key))
