"""Photos made at run time from the shared ones, for curation checks (tests and bench/curation.py):
near duplicates of a photo, and out-of-domain images (noise, text, shapes, gradients, digits).

Every maker takes a `random.Random`, so a seed gives the same bytes (and the same embedding cache
keys) on every run.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

NEAR_KINDS = ("flip", "crop", "jpeg", "colour")
ODD_KINDS = ("noise", "text", "shapes", "gradient", "digits")
WORDS = "invoice total amount receipt chapter page table figure error warning login password".split()


def encode(img: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def near_duplicate(blob: bytes, kind: str, rng: random.Random) -> bytes:
    """The photo mirrored, cropped by 6-12 % and resized back, re-encoded at quality 40-75, or with
    brightness / colour / contrast moved by up to 10 %."""
    img = Image.open(io.BytesIO(blob)).convert("RGB")
    if kind == "flip":
        return encode(ImageOps.mirror(img))
    if kind == "crop":
        w, h = img.size
        cut = rng.uniform(0.06, 0.12)
        left, top = rng.uniform(0, cut) * w, rng.uniform(0, cut) * h
        box = (round(left), round(top), round(left + (1 - cut) * w), round(top + (1 - cut) * h))
        return encode(img.crop(box).resize((w, h), Image.Resampling.BICUBIC))
    if kind == "jpeg":
        return encode(img, quality=rng.choice((40, 50, 60, 75)))
    if kind == "colour":
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Color, ImageEnhance.Contrast):
            img = enhancer(img).enhance(rng.uniform(0.9, 1.1))
        return encode(img)
    raise ValueError(f"unknown near-duplicate kind {kind!r}")


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def out_of_domain(kind: str, rng: random.Random, size: int = 100) -> bytes:
    """One image that is no scene photo at all."""
    seed = rng.randrange(2**32)
    if kind == "noise":
        pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
        return encode(Image.fromarray(pixels))
    if kind == "gradient":
        t = np.linspace(0.0, 1.0, size)
        ramp = np.add.outer(t * rng.uniform(-1, 1), t * rng.uniform(-1, 1))
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) or 1.0)
        a, b = np.array(_colour(rng)), np.array(_colour(rng))
        return encode(Image.fromarray((a + ramp[..., None] * (b - a)).astype(np.uint8)))
    if kind == "digits":
        from sklearn.datasets import load_digits

        digit = load_digits().images[seed % 1797]
        grey = Image.fromarray((255 - digit * 16).clip(0, 255).astype(np.uint8))
        return encode(grey.resize((size, size), Image.Resampling.NEAREST))
    img = Image.new("RGB", (size, size), _colour(rng))
    draw = ImageDraw.Draw(img)
    if kind == "text":
        img.paste((255, 255, 255), (0, 0, size, size))
        for line in range(6):
            draw.text((4, 4 + 15 * line), " ".join(rng.sample(WORDS, 2)), fill=(0, 0, 0))
        return encode(img)
    if kind == "shapes":
        for _ in range(rng.randint(2, 5)):
            x, y = rng.randrange(size - 20), rng.randrange(size - 20)
            box = (x, y, x + rng.randint(15, 60), y + rng.randint(15, 60))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=_colour(rng))
        return encode(img)
    raise ValueError(f"unknown out-of-domain kind {kind!r}")
