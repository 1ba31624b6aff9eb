"""Network building blocks shared by the classifiers: a small CPU-friendly CNN and the
random affine augmentation used both for training and for consistency targets.

The CNN works at any input size (adaptive pooling at the end), so 8x8 digits, 28x28 MNIST and
32x32 CIFAR use the same code. Batch norm + ReLU conv blocks and channels_last memory format
are what made it fastest on 2 CPU cores (measured in the engine research)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """conv(c1) -> pool -> conv(c2) -> pool -> conv(c3) -> global max -> fc(hidden) -> K logits."""

    def __init__(self, in_channels: int, n_classes: int, width: tuple[int, int, int] = (32, 64, 128),
                 hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        c1, c2, c3 = width
        self.features = nn.Sequential(_block(in_channels, c1), nn.MaxPool2d(2, ceil_mode=True),
                                      _block(c1, c2), nn.MaxPool2d(2, ceil_mode=True),
                                      _block(c2, c3), nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(c3, hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, hidden)"""
        return self.embed(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, K) logits"""
        return self.head(self.dropout(self.embedding(x)))


def random_affine(x: torch.Tensor, max_shift_px: float = 2.0, max_rotation_deg: float = 0.0,
                  max_scale: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image random translation (pixels), rotation and zoom. (B, C, H, W) -> same shape."""
    b, _, h, w = x.shape

    def uniform() -> torch.Tensor:  # (B,) in [-1, 1]
        return torch.rand(b, generator=generator, device="cpu").to(x.device) * 2 - 1

    angle = uniform() * max_rotation_deg * math.pi / 180
    scale = 1 + uniform() * max_scale
    tx, ty = uniform() * max_shift_px * 2 / w, uniform() * max_shift_px * 2 / h
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
