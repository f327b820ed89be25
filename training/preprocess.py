"""The eval transform, torch-free: short-side resize, centre crop, normalise, CHW float32.

The PyTorch backbone and the ONNX Runtime backbone both call `Preprocessing.array`, so both engines
feed their networks bit-identical inputs.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .images import ImageError, decode_image

RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class Preprocessing:
    image_size: int
    mean: tuple
    std: tuple
    interpolation: str

    @classmethod
    def from_spec(cls, spec: dict) -> Preprocessing:
        """From a backbone spec (Backbone.spec() or a manifest's "backbone")."""
        return cls(int(spec["image_size"]), tuple(spec["mean"]), tuple(spec["std"]), spec["interpolation"])

    def resize_crop(self, img: Image.Image) -> Image.Image:
        """Resize the short side to image_size and centre-crop a square."""
        size = self.image_size
        w, h = img.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), RESAMPLE[self.interpolation])
        left, top = (nw - size) // 2, (nh - size) // 2
        return img.crop((left, top, left + size, top + size))

    def normalize(self, img: Image.Image) -> np.ndarray:
        """(3, H, W) float32: (pixel / 255 - mean) / std per channel."""
        arr = np.asarray(img, dtype=np.float32) / 255.0
        arr = (arr - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def array(self, img: Image.Image) -> np.ndarray:
        return self.normalize(self.resize_crop(img))

    def batch(self, blobs: list, names: list[str], pool: Executor) -> tuple[np.ndarray, list[int], dict]:
        """Decode and transform in `pool`. Returns the (n_good, 3, S, S) array, the indices it
        holds, and {index: error message} for images that failed to decode."""

        def one(i):
            try:
                return self.array(decode_image(blobs[i], names[i])), None
            except ImageError as exc:
                return None, str(exc)

        results = list(pool.map(one, range(len(blobs))))
        errors = {i: err for i, (_, err) in enumerate(results) if err}
        good = [i for i, (arr, _) in enumerate(results) if arr is not None]
        size = self.image_size
        out = np.empty((len(good), 3, size, size), dtype=np.float32)
        for row, i in enumerate(good):
            out[row] = results[i][0]
        return out, good, errors
