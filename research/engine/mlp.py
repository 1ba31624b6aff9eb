"""MLP classifier families shared by the SSL methods and their supervised baselines."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class WNLinear(nn.Module):
    """Weight-normalised linear layer y = g * (x v^T)/||v|| + b (Salimans & Kingma 2016)."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.v = nn.Parameter(torch.randn(d_out, d_in) * 0.05)
        self.g = nn.Parameter(torch.ones(d_out))
        self.b = nn.Parameter(torch.zeros(d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.v * (self.g / self.v.norm(dim=1).clamp_min(1e-8))[:, None]  # (out, in)
        return F.linear(x, w, self.b)


class GaussianNoise(nn.Module):
    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x) if self.training and self.sigma > 0 else x


class DiscriminatorMLP(nn.Module):
    """Improved-GAN discriminator 784-1000-500-250-250-250-K; also the GAN baseline's classifier.

    forward(x (B, D)) -> logits (B, K); with features=True also the last hidden layer (B, 250)
    used for feature matching.
    """

    def __init__(self, d_in: int = 784, n_classes: int = 10, widths=(1000, 500, 250, 250, 250),
                 in_noise: float = 0.3, hid_noise: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = [GaussianNoise(in_noise)]
        d = d_in
        for w in widths:
            layers += [WNLinear(d, w), nn.ReLU(), GaussianNoise(hid_noise)]
            d = w
        self.body = nn.Sequential(*layers)
        self.head = WNLinear(d, n_classes)

    def forward(self, x: torch.Tensor, features: bool = False):
        h = self.body(x.flatten(1))  # (B, 250)
        return (self.head(h), h) if features else self.head(h)


class EncoderMLP(nn.Module):
    """VAE-encoder-shaped classifier D-512-256-z-K (the VAE-SSL student and its baseline)."""

    def __init__(self, d_in: int = 784, n_classes: int = 10, hidden=(512, 256), latent: int = 16,
                 dropout: float = 0.2):
        super().__init__()
        h1, h2 = hidden
        self.enc = nn.Sequential(nn.Linear(d_in, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
        self.mu = nn.Linear(h2, latent)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(latent, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mu(self.enc(x.flatten(1))))  # (B, K)


@torch.no_grad()
def mlp_logits(model: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """x (N, ...) float32 -> logits (N, K) in eval mode."""
    model.eval()
    return torch.cat([model(torch.from_numpy(x[s:s + batch])) for s in range(0, len(x), batch)]).numpy()
