"""A fine-tune's optimiser: AdamW with a warm-up + cosine learning-rate schedule, and mixed
precision on CUDA."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True, eq=False)
class Optimiser:
    """AdamW and its learning-rate schedule over `total` steps."""

    optim: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    total: int


def make_optimiser(net: nn.Module, params, n_train: int) -> Optimiser:
    """AdamW; the learning rate warms up linearly (a tenth of the steps, one epoch at most), then
    decays along a cosine."""
    optim = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    steps_per_epoch = max(1, math.ceil(n_train / params.batch_size))
    total = steps_per_epoch * params.epochs
    warmup = min(steps_per_epoch, max(1, total // 10))

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return Optimiser(optim, torch.optim.lr_scheduler.LambdaLR(optim, schedule), total)


@dataclass(frozen=True, eq=False)
class Precision:
    """Mixed precision on CUDA (bfloat16 where supported, else float16 with a gradient scaler)."""

    enabled: bool
    dtype: torch.dtype
    scaler: torch.amp.GradScaler

    @classmethod
    def on(cls, device: torch.device) -> Precision:
        use_amp = device.type == "cuda"
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        return cls(use_amp, amp_dtype, torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16))

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=self.dtype, enabled=self.enabled)
