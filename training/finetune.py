"""Whole-network fine-tuning: augmentation, AdamW, warm-up + cosine schedule, label smoothing,
early stopping on a validation split; CUDA with mixed precision when present."""
from __future__ import annotations

import copy
import math
import time
import sys
import uuid

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .backbones import Backbone
from .head import fit_linear
from .images import ImageError, decode_image


class _Net(nn.Module):
    def __init__(self, features: nn.Module, num_features: int, n_classes: int):
        super().__init__()
        self.features = features
        self.head = nn.Linear(num_features, n_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.features(x))


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


def _augment(batch: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
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


def _normalise(x: torch.Tensor, backbone: Backbone) -> torch.Tensor:
    mean = torch.tensor(backbone.mean, device=x.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.std, device=x.device).view(1, 3, 1, 1) * 255
    return (x - mean) / std


@torch.inference_mode()
def _features(module: nn.Module, images: torch.Tensor, backbone: Backbone) -> np.ndarray:
    module.eval()
    out = []
    for s in range(0, len(images), 128):
        xb = _normalise(images[s : s + 128].float(), backbone).to(backbone.device)
        if backbone.device.type == "cpu":
            xb = xb.contiguous(memory_format=torch.channels_last)
        out.append(module(xb).float().cpu())
    return torch.cat(out).numpy()


def _split(y: np.ndarray, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    n_val = int(round(len(y) * fraction))
    counts = np.bincount(y)
    if n_val < 1 or len(y) - n_val < 2:
        return idx, np.array([], dtype=int)
    stratify = y if counts[counts > 0].min() >= 2 and n_val >= len(np.unique(y)) else None
    train, val = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(val)


def finetune(backbone: Backbone, images: torch.Tensor, y: np.ndarray, n_classes: int, params,
             progress: bool = False, features: np.ndarray | None = None, report=None):
    """Fine-tune a copy of `backbone` with a new head on uint8 images from `prepare_images`
    (`features`: the pretrained backbone's embeddings of the same images, if known).
    `report(phase=, epoch=, epochs=, step=, steps=, eta_s=)` is called after every step, if given.
    Returns (backbone, W, b, val_idx, val_proba)."""
    torch.manual_seed(params.seed)
    gen = torch.Generator().manual_seed(params.seed)
    device = backbone.device
    size = backbone.image_size
    train_idx, val_idx = _split(y, params.val_fraction, params.seed)
    net = _Net(copy.deepcopy(backbone.module), backbone.num_features, n_classes).to(device)
    if backbone.weights != "random" and len(np.unique(y[train_idx])) >= 2:
        # Linear probe first, then fine-tune (LP-FT): starting from a fitted head keeps the first
        # steps from wrecking pretrained features with gradients of a random head. The probe's
        # features usually come from the embedding cache (`features`), computed here otherwise.
        if features is None:
            features = _features(net.features, images, backbone)
        W, b = fit_linear(features[train_idx], y[train_idx], n_classes, params.head_c, params.seed)
        with torch.no_grad():
            net.head.weight.copy_(torch.from_numpy(W))
            net.head.bias.copy_(torch.from_numpy(np.maximum(b, -50.0)))
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    optim = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_idx) / params.batch_size))
    total = steps_per_epoch * params.epochs
    warmup = min(steps_per_epoch, max(1, total // 10))

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, schedule)
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    y_t = torch.as_tensor(y, dtype=torch.long)

    def run_eval(index, tta=False):
        """Probabilities of images[index]; with `tta`, of logits averaged with the mirror images'
        (what serving computes: the head is linear, so averaged features give averaged logits)."""
        net.eval()
        probs = []
        with torch.inference_mode():
            for s in range(0, len(index), 128):
                xb = _normalise(images[index[s : s + 128]].float(), backbone).to(device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    logits = net(xb).float()
                    if tta:
                        logits = (logits + net(xb.flip(-1)).float()) / 2
                probs.append(torch.softmax(logits, dim=1).cpu())
        return torch.cat(probs).numpy()

    best = (-1.0, float("inf"))
    best_state = copy.deepcopy(net.state_dict())
    stale = 0
    bar = tqdm(total=total, desc="finetune", unit="step", disable=not progress)
    report = report or (lambda **fields: None)
    step, started = 0, time.monotonic()
    report(phase="fine-tuning", epoch=0, epochs=params.epochs, step=0, steps=total)
    for epoch in range(params.epochs):
        net.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        for s in range(0, len(order), params.batch_size):
            batch = order[s : s + params.batch_size]
            if len(batch) < 2:  # BatchNorm cannot train on a single image
                continue
            raw = images[batch]
            xb = _augment(raw, size, gen) if params.augment else raw.float()
            xb = _normalise(xb, backbone).to(device)
            if device.type == "cpu":
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss = F.cross_entropy(net(xb), y_t[batch].to(device), label_smoothing=params.label_smoothing)
            optim.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optim)
            scaler.update()
            sched.step()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
            step += 1
            spent = time.monotonic() - started
            report(phase="fine-tuning", epoch=epoch + 1, epochs=params.epochs, step=step, steps=total,
                   eta_s=round(spent / step * max(0, total - step), 1), loss=round(float(loss.item()), 4))
        if len(val_idx):
            proba = run_eval(val_idx)
            acc = float((proba.argmax(1) == y[val_idx]).mean())
            nll = float(-np.log(np.clip(proba[np.arange(len(val_idx)), y[val_idx]], 1e-12, 1)).mean())
            if progress:  # stderr: stdout may carry a JSON answer (tasveer train --json)
                bar.write(f"epoch {epoch + 1}: val accuracy {acc:.3f}, val loss {nll:.3f}", file=sys.stderr)
            if (acc, -nll) > (best[0], -best[1]):
                best, best_state, stale = (acc, nll), copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
                if stale >= params.patience:
                    break
        else:
            best_state = copy.deepcopy(net.state_dict())
    bar.close()
    net.load_state_dict(best_state)
    tta = bool(getattr(backbone, "tta", False))
    val_proba = run_eval(val_idx, tta) if len(val_idx) else np.zeros((0, n_classes), np.float32)
    tuned = Backbone(net.features, backbone.name, f"ft-{uuid.uuid4().hex[:12]}", size, backbone.mean,
                     backbone.std, backbone.interpolation, backbone.num_features, dict(backbone.kwargs),
                     device, tta)
    W = net.head.weight.detach().float().cpu().numpy()
    b = net.head.bias.detach().float().cpu().numpy()
    return tuned, W, b, val_idx, val_proba
