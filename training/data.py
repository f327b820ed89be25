"""Class-per-folder image trees: listing, a balanced seeded sample, a stratified seeded split."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_folder(root: str | Path) -> tuple[list[Path], list[str], list[str]]:
    """(paths, labels, class names) of DIR/<class>/<image>; classes sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(f"{root}: need one sub-folder per class (at least 2); found {classes}")
    paths, labels = [], []
    for name in classes:
        for p in sorted((root / name).iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(p)
                labels.append(name)
    return paths, labels, classes


def _by_class(labels):
    groups = defaultdict(list)
    for i, lab in enumerate(labels):
        groups[lab].append(i)
    return groups


def balanced_sample(labels: list[str], n: int, seed: int = 0) -> list[int]:
    """Indices of n items spread as evenly as possible over classes, chosen by seed."""
    rng = random.Random(seed)
    groups = {k: rng.sample(v, len(v)) for k, v in sorted(_by_class(labels).items())}
    chosen: list[int] = []
    while len(chosen) < min(n, len(labels)):
        for k in groups:
            if groups[k] and len(chosen) < n:
                chosen.append(groups[k].pop())
    return sorted(chosen)


def stratified_split(labels: list[str], fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(rest, held-out) index lists; `fraction` of every class is held out, chosen by seed."""
    rng = random.Random(seed)
    rest, held = [], []
    for _, idx in sorted(_by_class(labels).items()):
        idx = rng.sample(idx, len(idx))
        k = int(round(len(idx) * fraction))
        held += idx[:k]
        rest += idx[k:]
    return sorted(rest), sorted(held)
