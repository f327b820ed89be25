"""Photos for bench/scale.py: the labelled seed set and N distinct unlabelled photos, in a temp dir.

The shared Intel scenes (8,741 photos, 6 classes) are used as they are first (linked, not copied);
past them each photo comes back as a variant: a horizontal flip, a 90 % crop scaled back, a colour
change (saturation, brightness), or a combination, so every file has content of its own (the
embedding cache is keyed by content). A file's name carries its class (`<class>_<n>.jpg`): Label
Studio keeps it in the task's image URL (`.../<8 hex>-<class>_<n>.jpg`), where a correction reads
the right label back.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

CLASS_OF_URL = re.compile(r"([a-z]+)_\d+\.jpg$")


def scene_files(data: Path) -> list[tuple[str, Path]]:
    """(class, path) of every shared photo, sorted."""
    return [(d.name, f) for d in sorted(data.iterdir()) if d.is_dir() for f in sorted(d.glob("*.jpg"))]


def split_seed(files: list[tuple[str, Path]], per_class: int, seed: int = 0):
    """(`per_class` photos of each class for the labelled seed, the rest shuffled)."""
    rng = random.Random(seed)
    rest = list(files)
    rng.shuffle(rest)
    seed_set, pool, taken = [], [], {}
    for label, path in rest:
        if taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            seed_set.append((label, path))
        else:
            pool.append((label, path))
    return seed_set, pool


def link_seed(seed_set: list[tuple[str, Path]], out: Path) -> Path:
    """DIR/<class>/<name>.jpg links for `tasveer import --labels-from-folders`."""
    for label, path in seed_set:
        (out / label).mkdir(parents=True, exist_ok=True)
        (out / label / path.name).symlink_to(path)
    return out


def variant(image: Image.Image, kind: int, rng: random.Random) -> Image.Image:
    """Variant `kind` (1..7: bits flip, crop, colour) of `image`."""
    out = image
    if kind & 1:
        out = ImageOps.mirror(out)
    if kind & 2:
        w, h = out.size
        cw, ch = int(w * 0.9), int(h * 0.9)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        out = out.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR)
    if kind & 4:
        out = ImageEnhance.Color(out).enhance(rng.uniform(0.6, 1.4))
        out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.8, 1.2))
    return out


def make_pool(pool: list[tuple[str, Path]], n: int, out: Path, seed: int = 0) -> dict[str, str]:
    """`n` distinct photos in `out` (the pool's photos first, then variants 1..7 of them);
    returns {file name: class}."""
    if n > len(pool) * 8:
        raise ValueError(f"at most {len(pool) * 8} distinct photos from {len(pool)} originals")
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    classes = {}
    for i in range(n):
        label, path = pool[i % len(pool)]
        kind = i // len(pool)
        name = f"{label}_{i:06d}.jpg"
        if kind == 0:
            (out / name).symlink_to(path)
        else:
            with Image.open(path) as im:
                variant(im.convert("RGB"), kind, rng).save(out / name, quality=92)
        classes[name] = label
    return classes


def class_of(image_url: str) -> str | None:
    """The class a photo's name carries, from its task's image URL."""
    match = CLASS_OF_URL.search(image_url or "")
    return match.group(1) if match else None
