"""On-disk embedding cache: pooled backbone features keyed by (content hash, backbone id, image size).

SQLite in WAL mode: one file, safe for several threads and processes, and a retrain after a new
annotation reads thousands of embeddings in milliseconds instead of recomputing them.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np


class Digested(bytes):
    """Image bytes that carry their SHA-256 (hex digest), computed once where the bytes were first
    hashed (backend.blobcache.BlobCache stores and names them by it). The embedding loop takes the cache
    key from here instead of hashing the bytes again. Only this class is trusted: any other object
    is hashed. Slices and concatenations are plain bytes, so a digest never outlives its content."""

    sha256: str

    def __new__(cls, data: bytes, sha256: str):
        obj = super().__new__(cls, data)
        obj.sha256 = sha256
        return obj

    def __reduce__(self):
        return (Digested, (bytes(self), self.sha256))


def known_hash(blob) -> str | None:
    """The digest a `Digested` carries, else None (the caller hashes)."""
    return blob.sha256 if isinstance(blob, Digested) else None


class EmbeddingCache:
    def __init__(self, path: str | Path):
        path = Path(path)
        if path.suffix != ".sqlite":
            path = path / "embeddings.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS emb (hash TEXT, backbone TEXT, size INTEGER, "
                "dim INTEGER, vec BLOB, PRIMARY KEY (hash, backbone, size))"
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get_many(self, hashes: list[str], backbone: str, size: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        conn = self._conn()
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT hash, vec FROM emb WHERE backbone=? AND size=? AND hash IN ({marks})",
                [backbone, size, *chunk],
            )
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray], backbone: str, size: int) -> None:
        if not items:
            return
        rows = [
            (key, backbone, size, int(vec.shape[-1]), np.ascontiguousarray(vec, dtype=np.float32).tobytes())
            for key, vec in items.items()
        ]
        with self._conn() as conn:
            conn.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?, ?)", rows)

    def count(self, backbone: str | None = None) -> int:
        if backbone is None:
            return self._conn().execute("SELECT COUNT(*) FROM emb").fetchone()[0]
        return self._conn().execute("SELECT COUNT(*) FROM emb WHERE backbone=?", [backbone]).fetchone()[0]
