"""Whole-network fine-tuning: augmentation, AdamW, warm-up + cosine schedule, label smoothing,
early stopping on a validation split; CUDA with mixed precision when present."""

from __future__ import annotations

import copy
import sys
import time
import uuid
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .backbones import Backbone
from .head import fit_linear
from .params import TrainParams
from .tuneimages import augment, normalise, validation_split
from .tuneoptim import Optimiser, Precision, make_optimiser


class _Net(nn.Module):
    def __init__(self, features: nn.Module, num_features: int, n_classes: int):
        super().__init__()
        self.features = features
        self.head = nn.Linear(num_features, n_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.features(x))


@torch.inference_mode()
def _features(module: nn.Module, images: torch.Tensor, backbone: Backbone) -> np.ndarray:
    module.eval()
    out = []
    for s in range(0, len(images), 128):
        xb = normalise(images[s : s + 128].float(), backbone).to(backbone.device)
        if backbone.device.type == "cpu":
            xb = xb.contiguous(memory_format=torch.channels_last)
        out.append(module(xb).float().cpu())
    return torch.cat(out).numpy()


@dataclass(frozen=True, eq=False)
class Finetuned:
    """What `finetune` gives: the fine-tuned network as a Backbone, its head (W (C, F), b (C,)), and
    the validation split (indices into the images) with its probabilities (of logits averaged with
    the mirror images' for a `tta` backbone, as serving computes them)."""

    backbone: Backbone
    W: np.ndarray
    b: np.ndarray
    val_idx: np.ndarray
    val_proba: np.ndarray


def finetune(
    backbone: Backbone,
    images: torch.Tensor,
    y: np.ndarray,
    n_classes: int,
    params,
    progress: bool = False,
    features: np.ndarray | None = None,
    report=None,
) -> Finetuned:
    """Fine-tune a copy of `backbone` with a new head on uint8 images from `prepare_images`
    (`features`: the pretrained backbone's embeddings of the same images, if known).
    `report(phase=, epoch=, epochs=, step=, steps=, eta_s=)` is called after every step, if given."""
    torch.manual_seed(params.seed)
    gen = torch.Generator().manual_seed(params.seed)
    train_idx, val_idx = validation_split(y, params.val_fraction, params.seed)
    net = _start_net(backbone, images, y, train_idx, n_classes, params, features)
    optimiser, precision = make_optimiser(net, params, len(train_idx)), Precision.on(backbone.device)
    run = _Run(net, backbone, images, y, params, optimiser, precision, gen)
    _train(run, train_idx, val_idx, _Tracker(run.optimiser.total, params.epochs, progress, report))
    tta = bool(getattr(backbone, "tta", False))
    val_proba = _predict(run, val_idx, tta) if len(val_idx) else np.zeros((0, n_classes), np.float32)
    tuned = Backbone(
        net.features,
        backbone.name,
        f"ft-{uuid.uuid4().hex[:12]}",
        backbone.image_size,
        backbone.mean,
        backbone.std,
        backbone.interpolation,
        backbone.num_features,
        dict(backbone.kwargs),
        backbone.device,
        tta,
    )
    W = net.head.weight.detach().float().cpu().numpy()
    b = net.head.bias.detach().float().cpu().numpy()
    return Finetuned(tuned, W, b, val_idx, val_proba)


def _start_net(
    backbone: Backbone,
    images: torch.Tensor,
    y: np.ndarray,
    train_idx: np.ndarray,
    n_classes: int,
    params,
    features: np.ndarray | None,
) -> _Net:
    """A copy of the backbone's network with a new head: zeros, or for pretrained weights a
    linear probe fitted on the training split's features."""
    net = _Net(copy.deepcopy(backbone.module), backbone.num_features, n_classes).to(backbone.device)
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
    if backbone.device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    return net


@dataclass(frozen=True, eq=False)
class _Run:
    """One fine-tuning run: the network being trained, the backbone it came from, the uint8 images
    and their labels, the parameters, the optimiser, the precision and the random generator."""

    net: _Net
    backbone: Backbone
    images: torch.Tensor
    y: np.ndarray
    params: TrainParams
    optimiser: Optimiser
    precision: Precision
    gen: torch.Generator


class _Tracker:
    """The progress bar and `report` of a run: steps done, and an estimate of the time left."""

    def __init__(self, total: int, epochs: int, progress: bool, report=None):
        self.bar = tqdm(total=total, desc="finetune", unit="step", disable=not progress)
        self.report = report or (lambda **fields: None)
        self.total, self.epochs, self.progress = total, epochs, progress
        self.step, self.started = 0, time.monotonic()
        self.report(phase="fine-tuning", epoch=0, epochs=epochs, step=0, steps=total)

    def stepped(self, epoch: int, loss: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.3f}")
        self.step += 1
        spent = time.monotonic() - self.started
        self.report(
            phase="fine-tuning",
            epoch=epoch + 1,
            epochs=self.epochs,
            step=self.step,
            steps=self.total,
            eta_s=round(spent / self.step * max(0, self.total - self.step), 1),
            loss=round(float(loss), 4),
        )

    def validated(self, epoch: int, acc: float, nll: float) -> None:
        if self.progress:  # stderr: stdout may carry a JSON answer (tasveer train --json)
            self.bar.write(f"epoch {epoch + 1}: val accuracy {acc:.3f}, val loss {nll:.3f}", file=sys.stderr)


class _Best:
    """The network's best state so far by validation accuracy, then loss; and the epochs since."""

    def __init__(self, net: nn.Module, patience: int):
        self.net, self.patience = net, patience
        self.score, self.stale = (-1.0, float("-inf")), 0  # (accuracy, -loss)
        self.keep()

    def keep(self) -> None:
        self.state = copy.deepcopy(self.net.state_dict())

    def stop_after(self, acc: float, nll: float) -> bool:
        """Keep the state if it is the best yet; True when `patience` epochs have not bettered it."""
        if (acc, -nll) > self.score:
            self.score, self.stale = (acc, -nll), 0
            self.keep()
            return False
        self.stale += 1
        return self.stale >= self.patience


def _train(run: _Run, train_idx: np.ndarray, val_idx: np.ndarray, tracker: _Tracker) -> None:
    """Train for the epochs asked for, stopping early when the validation split stops getting
    better; the network ends in its best state (its last one without a validation split)."""
    best = _Best(run.net, run.params.patience)
    y = run.y
    for epoch in range(run.params.epochs):
        _epoch(run, train_idx, epoch, tracker)
        if not len(val_idx):
            best.keep()
            continue
        proba = _predict(run, val_idx)
        acc = float((proba.argmax(1) == y[val_idx]).mean())
        nll = float(-np.log(np.clip(proba[np.arange(len(val_idx)), y[val_idx]], 1e-12, 1)).mean())
        tracker.validated(epoch, acc, nll)
        if best.stop_after(acc, nll):
            break
    tracker.bar.close()
    run.net.load_state_dict(best.state)


def _epoch(run: _Run, train_idx: np.ndarray, epoch: int, tracker: _Tracker) -> None:
    """One pass over the training split in a random order, in batches of `params.batch_size`."""
    run.net.train()
    size = run.params.batch_size
    order = train_idx[torch.randperm(len(train_idx), generator=run.gen).numpy()]
    for s in range(0, len(order), size):
        batch = order[s : s + size]
        if len(batch) < 2:  # BatchNorm cannot train on a single image
            continue
        tracker.stepped(epoch, _step(run, batch))


def _step(run: _Run, batch: np.ndarray) -> float:
    """One optimiser step on the images `batch` (augmented when `params.augment`); its loss."""
    device, params = run.backbone.device, run.params
    raw = run.images[batch]
    xb = augment(raw, run.backbone.image_size, run.gen) if params.augment else raw.float()
    xb = normalise(xb, run.backbone).to(device)
    if device.type == "cpu":
        xb = xb.contiguous(memory_format=torch.channels_last)
    target = torch.as_tensor(run.y[batch], dtype=torch.long).to(device)
    with run.precision.autocast(device):
        loss = F.cross_entropy(run.net(xb), target, label_smoothing=params.label_smoothing)
    optim, scaler = run.optimiser.optim, run.precision.scaler
    optim.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optim)
    scaler.update()
    run.optimiser.sched.step()
    return loss.item()


def _predict(run: _Run, index: np.ndarray, tta: bool = False) -> np.ndarray:
    """Probabilities of images[index]; with `tta`, of logits averaged with the mirror images'
    (what serving computes: the head is linear, so averaged features give averaged logits)."""
    net, backbone, device = run.net, run.backbone, run.backbone.device
    net.eval()
    probs = []
    with torch.inference_mode():
        for s in range(0, len(index), 128):
            xb = normalise(run.images[index[s : s + 128]].float(), backbone).to(device)
            with run.precision.autocast(device):
                logits = net(xb).float()
                if tta:
                    logits = (logits + net(xb.flip(-1)).float()) / 2
            probs.append(torch.softmax(logits, dim=1).cpu())
    return torch.cat(probs).numpy()
