"""A small from-scratch CNN family whose width (`filters`) and filter size (`kernel_size`) are
parameters, for users who want to tune exactly those instead of picking a zoo model."""

from __future__ import annotations

from torch import nn


class SmallCNN(nn.Module):
    """`depth` stages of (conv-BN-ReLU x2, max-pool); width starts at `filters` and doubles per
    stage (capped at 8x). `forward` returns globally pooled features of size `num_features`."""

    def __init__(self, filters: int = 32, kernel_size: int = 3, depth: int = 4, in_chans: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for stage in range(depth):
            width = filters * min(2**stage, 8)
            for _ in range(2):
                layers += [
                    nn.Conv2d(channels, width, kernel_size, padding=kernel_size // 2, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = channels

    def forward(self, x):
        return self.pool(self.features(x)).flatten(1)
