"""What the collection's update job (curator.py) keeps of a project, under projects/<id>/collection/,
so that a restart neither fetches a photo nor compares a pair again:

    nearest.npz     each photo's most similar others (training/nearest.py), for the unusual score
                    without comparing every pair again; per backbone like the finder
    finder.npz      the duplicate finder without its vectors (they are the embedding cache's) and
                    thumbnails: task ids, content hashes, union-find parents, and the backbone they
                    were embedded with (a finder of another backbone is rebuilt); written when photos
                    arrive
    thumbs/         the finder's thumbnails (4.8 KB a photo), append-only: each write adds one file of
                    the rows it adds (`<first>-<end>.npy`), so a save at 50,000 photos does not write
                    240 MB again; cleared when the finder starts afresh
    curation.json   the latest result: duplicate groups, unusual scores (strongest first), the labels
                    they were computed with; what the JSON routes answer from
    marks.json      the marks last copied into Label Studio's task data, per task: a write copies only
                    the marks that differ (lsmarks.py)
    update.lock     held (flock) while an update runs: the backend and a training child share the dir

Every file is replaced whole with training/atomic.py: a reader never sees half of one.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.locks import held
from training.atomic import write_atomic, write_json_atomic

DIR = "collection"
FINDER = "finder.npz"
NEAREST = "nearest.npz"
THUMBS = "thumbs"
SUMMARY = "curation.json"
MARKS = "marks.json"
LOCK = "update.lock"


@dataclass
class Curation:
    """One update's result."""

    backbone: str  # the key of the backbone whose embeddings were compared
    held: int  # photos the finder holds
    groups: list[dict] = field(default_factory=list)  # {"id", "tasks", "exact"}, id = smallest task id
    unusual: list[dict] = field(default_factory=list)  # {"task", "score", "rest", "known"}, strongest first
    labels: dict[int, str] = field(default_factory=dict)  # a person's labels the scores used
    updated_at: float = 0.0

    def group_of(self) -> dict[int, dict]:
        """task id -> its group."""
        return {int(t): g for g in self.groups for t in g["tasks"]}


class CurationStore:
    def __init__(self, project_dir: Path):
        self.dir = Path(project_dir) / DIR

    def locked(self):
        """One update at a time per project, across the processes that share the data dir."""
        return held(self.dir / LOCK)

    def finder(self, backbone: str) -> dict[str, np.ndarray] | None:
        """The saved finder's arrays (thumbnails included) when it was built with `backbone`, else
        None (also when thumbnail files are missing: the finder is rebuilt then)."""
        saved = self._arrays(FINDER, backbone)
        if saved is None or "thumbs" in saved:  # (a finder saved whole, before thumbs/)
            return saved
        rows = int(saved.pop("thumb_rows", -1))
        chunks = self._thumb_chunks()
        if rows < 0 or not chunks or chunks[-1][1] < rows:
            return None
        try:
            saved["thumbs"] = np.concatenate([np.load(path, allow_pickle=False) for _, _, path in chunks])[:rows]
        except (OSError, ValueError):
            return None
        return saved

    def save_finder(self, backbone: str, arrays: dict[str, np.ndarray], fresh: bool = False) -> None:
        """Save a finder (`DuplicateFinder.saved()`); `fresh`: it did not grow from the saved one,
        so the thumbnail files start again."""
        rest = {k: v for k, v in arrays.items() if k != "thumbs"}
        thumbs = arrays["thumbs"]
        chunks = [] if fresh else self._thumb_chunks()
        held = chunks[-1][1] if chunks else 0
        if fresh or held > len(thumbs):
            shutil.rmtree(self.dir / THUMBS, ignore_errors=True)
            held = 0
        if len(thumbs) > held:
            out = io.BytesIO()
            np.save(out, np.ascontiguousarray(thumbs[held:]))
            write_atomic(self.dir / THUMBS / f"{held:09d}-{len(thumbs):09d}.npy", out.getvalue(), fsync=False)
        self._save_arrays(FINDER, backbone, {**rest, "thumb_rows": np.asarray(len(thumbs))})

    def _thumb_chunks(self) -> list[tuple[int, int, Path]]:
        """(first, end, path) of the thumbnail files that continue each other from row 0."""
        found: list[tuple[int, int, Path]] = []
        for path in (self.dir / THUMBS).glob("*-*.npy"):
            low, _, high = path.stem.partition("-")
            if low.isdigit() and high.isdigit():
                found.append((int(low), int(high), path))
        chain: list[tuple[int, int, Path]] = []
        at = 0
        for first, end, path in sorted(found):
            if first != at:
                break
            chain.append((first, end, path))
            at = end
        return chain

    def nearest(self, backbone: str) -> dict[str, np.ndarray] | None:
        """The saved nearest-photo lists when made with `backbone`, else None."""
        return self._arrays(NEAREST, backbone)

    def save_nearest(self, backbone: str, arrays: dict[str, np.ndarray]) -> None:
        self._save_arrays(NEAREST, backbone, arrays)

    def _arrays(self, name: str, backbone: str) -> dict[str, np.ndarray] | None:
        try:
            with np.load(self.dir / name, allow_pickle=False) as saved:
                if str(saved["backbone"]) != backbone:
                    return None
                return {k: saved[k] for k in saved.files if k != "backbone"}
        except (OSError, KeyError, ValueError):
            return None

    def _save_arrays(self, name: str, backbone: str, arrays: dict[str, np.ndarray]) -> None:
        out = io.BytesIO()
        payload: dict[str, Any] = {"backbone": np.asarray(backbone), **arrays}
        np.savez(out, **payload)
        write_atomic(self.dir / name, out.getvalue(), fsync=False)

    def read(self) -> Curation | None:
        """The latest result, or None before the first update."""
        try:
            data = json.loads((self.dir / SUMMARY).read_text())
        except (OSError, ValueError):
            return None
        data["labels"] = {int(k): v for k, v in (data.get("labels") or {}).items()}
        return Curation(**data)

    def write(self, curation: Curation) -> None:
        data = asdict(curation)
        data["labels"] = {str(k): v for k, v in curation.labels.items()}
        write_json_atomic(self.dir / SUMMARY, data, fsync=False)

    def marks(self) -> dict[int, list]:
        """task id -> [group mark, unusual mark] as last copied into Label Studio."""
        try:
            return {int(k): v for k, v in json.loads((self.dir / MARKS).read_text()).items()}
        except (OSError, ValueError):
            return {}

    def save_marks(self, marks: dict[int, list]) -> None:
        write_json_atomic(self.dir / MARKS, {str(k): v for k, v in marks.items()}, fsync=False)
