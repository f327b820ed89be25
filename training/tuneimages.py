"""The images of a fine-tuning run (training/finetune.py): decoded once to uint8 at the network's
size, augmented and normalised per batch; and the validation split of their labels."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from .backbones import Backbone
from .images import ImageError, decode_image


def prepare_images(backbone: Backbone, blobs, names, size: int, errors: dict) -> tuple[torch.Tensor, list[int]]:
    """Decode every image once to a uint8 (N, 3, size, size) tensor (short-side resize + centre
    crop), so epochs pay only for augmentation, not for JPEG decoding. Bad images go to `errors`
    and are left out; returns the tensor and the indices it holds."""
    mean = torch.tensor(backbone.mean).view(3, 1, 1)
    std = torch.tensor(backbone.std).view(3, 1, 1)
    sized = copy.copy(backbone)
    sized.image_size = size
    rows, good = [], []
    for i, blob in enumerate(blobs):
        try:
            img = decode_image(blob, names[i])
        except ImageError as exc:
            errors[i] = str(exc)
            continue
        t = sized.to_tensor(img)  # normalised float; back to uint8 for compact storage
        rows.append(((t * std + mean) * 255).round().clamp(0, 255).to(torch.uint8))
        good.append(i)
    if not rows:
        return torch.empty((0, 3, size, size), dtype=torch.uint8), good
    return torch.stack(rows), good


def augment(batch: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop (70-100 % of the area, 3:4 to 4:3) and horizontal flip, on uint8."""
    n = batch.shape[0]
    out = torch.empty((n, 3, size, size), dtype=torch.float32)
    full = batch.shape[-1]
    for i in range(n):
        area = full * full * (0.7 + 0.3 * torch.rand(1, generator=gen).item())
        ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(1, generator=gen).item())
        w = min(full, int(round(math.sqrt(area * ratio))))
        h = min(full, int(round(math.sqrt(area / ratio))))
        x0 = int(torch.randint(0, full - w + 1, (1,), generator=gen))
        y0 = int(torch.randint(0, full - h + 1, (1,), generator=gen))
        crop = batch[i : i + 1, :, y0 : y0 + h, x0 : x0 + w].float()
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if torch.rand(1, generator=gen).item() < 0.5:
            crop = crop.flip(-1)
        out[i] = crop[0]
    return out


def normalise(x: torch.Tensor, backbone: Backbone) -> torch.Tensor:
    mean = torch.tensor(backbone.mean, device=x.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.std, device=x.device).view(1, 3, 1, 1) * 255
    return (x - mean) / std


def validation_split(y: np.ndarray, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    n_val = int(round(len(y) * fraction))
    counts = np.bincount(y)
    if n_val < 1 or len(y) - n_val < 2:
        return idx, np.array([], dtype=int)
    stratify = y if counts[counts > 0].min() >= 2 and n_val >= len(np.unique(y)) else None
    train, val = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(val)
