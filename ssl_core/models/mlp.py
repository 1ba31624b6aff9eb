"""Fully connected networks of the GAN and VAE families, and the same networks used as
supervised-only baselines (so "what the unlabeled images buy" compares like with like).

Every classifier here has `embedding(x)` and `head`, like SmallCNN, so the shared classifier
training and prediction code (`train_classifier`, `forward_all`) works with all of them.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class WNLinear(nn.Module):
    """Weight-normalised linear layer y = g * x v^T / ||v|| + b (Salimans & Kingma 2016): the
    Improved-GAN discriminator's layer, which keeps the adversarial game well conditioned."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.v = nn.Parameter(torch.randn(d_out, d_in) * 0.05)
        self.g = nn.Parameter(torch.ones(d_out))
        self.b = nn.Parameter(torch.zeros(d_out))

    @property
    def in_features(self) -> int:
        return self.v.shape[1]

    @property
    def out_features(self) -> int:
        return self.v.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.v * (self.g / self.v.norm(dim=1).clamp_min(1e-8))[:, None]  # (out, in)
        return F.linear(x, w, self.b)


class GaussianNoise(nn.Module):
    """Additive noise in training only: the Improved-GAN recipe's main regulariser of D."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x) if self.training and self.sigma > 0 else x


class DiscriminatorMLP(nn.Module):
    """Improved-GAN discriminator D-1000-500-250-250-250-K (Salimans et al. 2016, MNIST).
    K class logits; the fake class is implicit (its logit fixed at 0)."""

    def __init__(self, d_in: int, n_classes: int, widths: tuple[int, ...] = (1000, 500, 250, 250, 250),
                 input_noise: float = 0.3, hidden_noise: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(input_noise)]
        d = d_in
        for w in widths:
            layers += [WNLinear(d, w), nn.ReLU(), GaussianNoise(hidden_noise)]
            d = w
        self.body = nn.Sequential(*layers)
        self.head = WNLinear(d, n_classes)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (B, D) -> last hidden layer (B, 250), the feature-matching target."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))                                 # (B, K)


class Generator(nn.Module):
    """z (B, z_dim) -> images (B, D) in (0, 1): BN + softplus hidden layers, a sigmoid output so
    samples stay in pixel range (the paper's MNIST generator)."""

    def __init__(self, z_dim: int, d_out: int, hidden: int = 500):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.BatchNorm1d(hidden), nn.Softplus(),
                                 nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.Softplus(),
                                 WNLinear(hidden, d_out), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class EncoderMLP(nn.Module):
    """The VAE encoder's shape D-512-256-z followed by a linear head: initialised from a trained
    VAE in the VAE-based method, from scratch as its supervised baseline."""

    def __init__(self, d_in: int, n_classes: int, hidden: tuple[int, int] = (512, 256),
                 latent_dim: int = 16, dropout: float = 0.2):
        super().__init__()
        h1, h2 = hidden
        self.encoder = nn.Sequential(nn.Linear(d_in, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
        self.mu = nn.Linear(h2, latent_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(latent_dim, n_classes)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the latent mean (B, z). No ReLU here: with a small latent space a
        ReLU can switch every unit off and freeze the classifier (seen with 4-D latents)."""
        return self.mu(self.encoder(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embedding(x)))              # (B, K)
