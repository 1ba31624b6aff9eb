"""Fully connected networks of the GAN and VAE families, and the same networks used as
supervised-only baselines (so "what the unlabeled images buy" compares like with like); the
networks over feature vectors (FeatureHead, VectorGenerator, VectorVAENet); and ELBONet, the
VAE loss every VAE network shares (the conv ones live in conv_nets.py).

Every classifier here has `embedding(x)` and `head`, like SmallCNN, so the shared classifier
training and prediction code (`train_classifier`, `forward_all`) works with all of them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:
    from ssl_core.models.vae import VAEConfig


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


class VectorGenerator(nn.Module):
    """z (B, z_dim) -> feature vectors (B, D): the Generator's shape with a linear output, for
    the GAN on (standardised) pretrained features, which are unbounded."""

    def __init__(self, z_dim: int, d_out: int, hidden: int = 256):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.BatchNorm1d(hidden), nn.Softplus(),
                                 nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.Softplus(),
                                 nn.Linear(hidden, d_out))

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


class FeatureHead(nn.Module):
    """A classifier over feature vectors (pretrained features after their projection):
    D -> hidden -> K with dropout; what the feature-mode methods distil into."""

    def __init__(self, d_in: int, n_classes: int, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, n_classes)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, hidden)"""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))                                 # (B, K)


class ELBONet(nn.Module):
    """What every VAE network shares: the reparameterisation and the per-example negative ELBO
    with a Bernoulli decoder. Subclasses give `encode` and `decode` (and `nll` for another
    likelihood)."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, ...) -> mean (B, z), log-variance (B, z)"""
        h = self.encoder(x)
        return self.mu(h), self.logvar(h).clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, z) -> decoder output (Bernoulli logits), the input's shape"""
        return self.decoder(z)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # (B, z)

    def nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per example (B,) from the decoder's output (Bernoulli logits)."""
        return F.binary_cross_entropy_with_logits(out.flatten(1), x.flatten(1),
                                                  reduction="none").sum(1)

    def loss(self, x: torch.Tensor, beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example reconstruction and KL terms, each (B,)."""
        mu, logvar = self.encode(x)
        rec = self.nll(self.decode(self.reparameterize(mu, logvar)), x)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return rec, beta * kl


class VAENet(ELBONet):
    """The MLP VAE over flattened pixels (B, D) in [0, 1] (small greyscale images)."""

    def __init__(self, n_inputs: int, cfg: "VAEConfig"):
        super().__init__()
        h1, h2 = cfg.hidden
        self.encoder = nn.Sequential(nn.Linear(n_inputs, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
        self.mu = nn.Linear(h2, cfg.latent_dim)
        self.logvar = nn.Linear(h2, cfg.latent_dim)
        self.decoder = nn.Sequential(nn.Linear(cfg.latent_dim, h2), nn.ReLU(), nn.Linear(h2, h1),
                                     nn.ReLU(), nn.Linear(h1, n_inputs))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, ...) -> mean (B, z), log-variance (B, z)"""
        return super().encode(x.flatten(1))


class VectorVAENet(VAENet):
    """The MLP VAE on feature vectors (B, D): inputs centred and scaled by `normalise` (buffers,
    saved with the weights); a Gaussian decoder with one learned log standard deviation."""

    def __init__(self, n_inputs: int, cfg: "VAEConfig", mean: torch.Tensor | None = None,
                 scale: float = 1.0):
        super().__init__(n_inputs, cfg)
        self.register_buffer("mean", torch.zeros(n_inputs) if mean is None else mean.float())
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.log_sigma = nn.Parameter(torch.zeros(()))

    def normalise(self, v: torch.Tensor) -> torch.Tensor:
        """(B, D) feature vectors -> what the encoder sees (unit mean variance)."""
        return (v - self.mean) * self.scale

    def denormalise(self, u: torch.Tensor) -> torch.Tensor:
        return u / self.scale + self.mean

    def nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Gaussian -log p(x | z) per example (B,), constant dropped; x normalised."""
        log_sigma = self.log_sigma.clamp(-4.0, 2.0)
        return (0.5 * (x - out).pow(2) * torch.exp(-2 * log_sigma) + log_sigma).sum(1)
