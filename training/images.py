"""The one image decoding path used everywhere: bytes in, RGB PIL image out, or one clear error."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# A 100 MB compressed file or a 40-megapixel frame is far beyond any photo worth classifying at
# 224 px; both limits stop decompression bombs before they eat the machine's memory.
MAX_BYTES = 100 * 2**20
MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """An input that is not a usable image. The message names the input."""


def content_hash(data: bytes | bytearray | memoryview) -> str:
    """Identity of an image by content: the key of the embedding cache."""
    return hashlib.sha256(data).hexdigest()


def read_image_file(path: str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if size > max_bytes:
        raise ImageError(f"{path}: file is {size} bytes, over the {max_bytes}-byte limit")
    return path.read_bytes()


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / 32-bit grey: scale the real range to 8 bits instead of clipping at 255.
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr8 = ((arr - lo) * scale).clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def decode_image(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode image bytes to an upright RGB image.

    Applies EXIF orientation; converts grey, palette, RGBA (onto white), CMYK and 16-bit to RGB.
    Raises ImageError naming `name` for empty, truncated, non-image or oversized input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"{name}: expected image bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ImageError(f"{name}: empty file")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{name}: {len(data)} bytes, over the {MAX_BYTES}-byte limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(f"{name}: {width}x{height} pixels is over the {max_pixels}-pixel limit")
            img.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: refused as a decompression bomb ({exc})") from exc
    except Image.DecompressionBombWarning as exc:
        raise ImageError(f"{name}: refused as a decompression bomb ({exc})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image (no known image format recognised)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        kind = "truncated image" if "truncated" in str(exc).lower() else "corrupt image"
        raise ImageError(f"{name}: {kind} ({exc})") from exc
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not lose an otherwise good photo
        pass
    return _to_rgb(img)
