"""Small, seeded samples of the shared scene photos (read in place, never copied)."""

from __future__ import annotations

import os
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENES = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]


def sample(per_class: int, seed: int = 0, classes=CLASSES, skip: int = 0) -> tuple[list[Path], list[str]]:
    """`per_class` photos of each class, chosen by seed; `skip` leaves out the first ones chosen
    (so two calls with different `skip` give disjoint samples)."""
    paths, labels = [], []
    for name in classes:
        files = sorted((SCENES / name).glob("*.jpg"))
        random.Random(f"{seed}-{name}").shuffle(files)
        for f in files[skip : skip + per_class]:
            paths.append(f)
            labels.append(name)
    return paths, labels


def read(paths) -> list[bytes]:
    return [Path(p).read_bytes() for p in paths]
