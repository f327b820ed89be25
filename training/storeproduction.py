"""A model store's production pointer: the version applications get, moved by a deploy or a
production rollback only (never by a training). `ModelStore` has these methods (store.py); the files
and entries are storeformat's (PRODUCTION, PRODUCTION_HISTORY, production_entry, rollback_target)."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import write_json_atomic
from .storeformat import (
    PRODUCTION,
    PRODUCTION_HISTORY,
    StoreError,
    history_with,
    production_entry,
    rollback_target,
)

if TYPE_CHECKING:
    from .storebucket import StoreBucket


class ProductionPointer:
    """The production half of `ModelStore` (which provides root, bucket, manifest and _stamp)."""

    root: Path
    bucket: StoreBucket | None

    def manifest(self, vid: str) -> dict:
        raise NotImplementedError

    def _stamp(self, name: str) -> tuple | None:
        raise NotImplementedError

    def production(self) -> str | None:
        """The production version; None when none was deployed (or the one named is not there)."""
        record = self.production_record()
        vid = record.get("version") if record else None
        try:
            return vid if vid and self.manifest(vid) else None
        except StoreError:
            return None

    def production_record(self) -> dict | None:
        """PRODUCTION's content: the entry of the last deploy or production rollback."""
        raw = self._read_top(PRODUCTION)
        return json.loads(raw) if raw else None

    def production_stamp(self) -> tuple | None:  # serving_stamp's twin
        return self._stamp(PRODUCTION)

    def production_history(self) -> list[dict]:
        """Every deploy and production rollback, oldest first (storeformat.production_entry)."""
        raw = self._read_top(PRODUCTION_HISTORY)
        return history_with(json.loads(raw) if raw else [], self.production_record())

    def deploy(self, vid: str, *, by: str, via: str) -> dict:
        """Make `vid` the production version; returns its history entry (deploying the production
        version again changes nothing)."""
        manifest = self.manifest(vid)
        with self._production_lock():
            current = self.production()
            if current == vid:
                return self.production_record() or {}
            return self._move_production(production_entry(manifest, by=by, via=via, previous=current))

    def rollback_production(self, *, by: str, via: str) -> dict:
        """Production back to the version before the last deploy (storeformat.rollback_target)."""
        with self._production_lock():
            target = rollback_target(self.production_history())
            if target is None:
                raise StoreError("no earlier production version to go back to")
            return self._move_production(
                production_entry(self.manifest(target), by=by, via=via, previous=self.production(), rollback=True)
            )

    def _move_production(self, entry: dict) -> dict:
        """PRODUCTION first (one rename, or one object), then the history with the entry appended: a
        crash between leaves PRODUCTION naming its entry, which production_history() still lists."""
        history = [*self.production_history(), entry]
        self._write_top(PRODUCTION, entry)
        self._write_top(PRODUCTION_HISTORY, history)
        return entry

    @contextmanager
    def _production_lock(self) -> Iterator[None]:
        """Deploys one at a time on this machine (replicas sharing a bucket: the last one wins)."""
        with open(self.root / ".production.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _read_top(self, name: str) -> bytes | None:
        if self.bucket is not None:
            return self.bucket.read(name)
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def _write_top(self, name: str, obj) -> None:
        if self.bucket is not None:
            self.bucket.write(name, json.dumps(obj, indent=1, sort_keys=True).encode())
        else:
            write_json_atomic(self.root / name, obj)
