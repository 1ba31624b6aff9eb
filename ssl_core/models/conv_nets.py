"""Convolutional networks of the GAN and VAE families for colour or larger images, and the lazy
pixel view that feeds every pixel-mode network one batch at a time.

Why: an MLP over flattened pixels (mlp.py) is right for small greyscale images (MNIST, 8x8
digits) and stays their network, but a 128x128x3 photo is 49,152 inputs: the first layer alone
holds 25M weights, and converting a 100,000-photo collection to float (20 GB) kills the job.
Here instead:

- `PixelBatches`: a lazy (N, C, S, S) view of the uint8 images; `view[ids]` reads those rows
  (a read-only np.memmap works), converts them to float in [0, 1] and resizes them to the
  working side S. Training, prediction and encoding index it per batch; nothing converts the
  whole set.
- `ConvEncoder` / `ConvDecoder`: stride-2 4x4 conv blocks from S down to 4x4 and transposed
  convs back up (DCGAN's layout, Radford et al. 2016), for any power-of-two S from 8 up. The VAE
  (vae.py) and the SSL-GAN's generator use them, the discriminator is a weight-normalised
  variant (`ConvDiscriminator`, the Improved-GAN recipe for CIFAR, narrowed for a CPU).

Working resolution and width, measured on the 188-photo test set at 128x128 (one thread of a
busy 2-core machine): a conv VAE step (batch 64) took 82 ms at 32 px with widths (16, 32, 64),
174 ms with (32, 64, 128) and 233 ms at 64 px; a GAN step (batch 100) 434, 781 and 1356 ms. In a
33 s VAE budget that is ~490, ~230 and ~140 steps, and no setting made pixels informative about
these photos (kNN label propagation on the VAE latents: 32-38%, the same as on the shrunk
pixels themselves, 37%; chance is 35%; the pretrained features reach 85%). So pixels are worked
at a side of at most `max_side` = 32 with widths (16, 32, 64): the most images per CPU second.
Sides are powers of two (12 px -> 16, 28 -> 32) so every block halves or doubles exactly;
samples and reconstructions are resized back to the input size.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ssl_core.models.base import to_tensor, to_uint8_images
from ssl_core.models.mlp import ELBONet, GaussianNoise, WNLinear
from ssl_core.models.preprocessing import deskew

if TYPE_CHECKING:
    from ssl_core.models.vae import VAEConfig

MLP_MAX_SIDE = 32              # greyscale images up to this side keep the MLPs of mlp.py


def uses_conv_nets(input_shape: tuple[int, ...]) -> bool:
    """Whether images of `input_shape` (H, W, C) get the conv networks: colour, or larger than
    MLP_MAX_SIDE (small greyscale images keep their MLPs and results)."""
    h, w, c = input_shape
    return c != 1 or max(h, w) > MLP_MAX_SIDE


def working_side(input_shape: tuple[int, ...], max_side: int) -> int:
    """The conv networks' square input side: the smallest power of two >= 8 that holds the
    images, capped at `max_side` (rounded down to a power of two)."""
    h, w, _ = input_shape
    side = 8
    while side < max(h, w) and side * 2 <= max(8, max_side):
        side *= 2
    return side


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) float -> (B, C, *size), antialiased (area-like when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


class PixelBatches:
    """A lazy float view of images X (N, H, W, C) uint8: `view[ids]` (ids an index array,
    tensor or slice) -> (B, C, S, S) float32 in [0, 1], deskewed first when asked, resized to
    `side` when given (None keeps H x W). Indexable like a tensor by the trainer tasks,
    `train_classifier` and `forward_all`, which only ever take batches.

    `cached` (training views, which visit images every epoch): resized images are kept as uint8
    at the working side once read, so later epochs skip the read and resize (on 128-px photos
    18 ms per 100 images, a fifth of a conv VAE step); the cache grows only with the images
    visited, at most N x S x S x C bytes (300 MB for 100,000 colour images at 32 px)."""
    ndim = 4

    def __init__(self, X: np.ndarray, side: int | None = None, deskewed: bool = False,
                 cached: bool = False):
        self.X, self.side, self.deskewed = X, side, deskewed
        h, w, c = X.shape[1:]
        self.shape = (len(X), c, side or h, side or w)
        self._cache = self._cached = None
        if cached and side is not None:
            self._cache = np.zeros((len(X), side, side, c), np.uint8)   # pages commit on write
            self._cached = np.zeros(len(X), bool)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, ids) -> torch.Tensor:
        if isinstance(ids, torch.Tensor):
            ids = ids.numpy()
        if self._cache is None:
            return self._convert(np.asarray(self.X[ids]))
        if isinstance(ids, slice):
            ids = np.arange(*ids.indices(len(self.X)))
        new = ids[~self._cached[ids]]
        if len(new):
            self._cache[new] = to_uint8_images(self._convert(np.asarray(self.X[new])))
            self._cached[new] = True
        return to_tensor(self._cache[ids])                                # (B, C, S, S)

    def _convert(self, batch: np.ndarray) -> torch.Tensor:
        """(B, H, W, C) uint8 -> (B, C, S, S) float in [0, 1]."""
        x = to_tensor(batch)                                             # (B, C, H, W)
        if self.deskewed:
            x = deskew(x).clamp(0, 1)
        return x if self.side is None else resize(x, (self.side, self.side)).clamp(0, 1)


def n_blocks(side: int) -> int:
    """Stride-2 blocks from `side` down to 4x4 (side a power of two >= 8)."""
    return max(1, int(np.log2(side)) - 2)


def block_widths(width: tuple[int, ...], side: int) -> list[int]:
    """Channels of each encoder block for `side`; the last width repeats for larger sides."""
    return [width[min(i, len(width) - 1)] for i in range(n_blocks(side))]


def norm2d(c: int, batch_norm: bool) -> nn.Module:
    """BatchNorm (DCGAN's generator) or GroupNorm, which behaves the same in training and eval:
    a VAE's posterior means at eval differ from its noisy training codes, and with BatchNorm's
    running statistics a small conv VAE decoded every input as the same picture."""
    return nn.BatchNorm2d(c) if batch_norm else nn.GroupNorm(min(4, c), c)


class ConvEncoder(nn.Module):
    """(B, C, S, S) -> (B, c_last * 16): stride-2 conv + norm + LeakyReLU blocks down to 4x4."""

    def __init__(self, in_channels: int, side: int, width: tuple[int, ...], batch_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in block_widths(width, side):
            layers += [nn.Conv2d(c_in, c, 4, 2, 1, bias=False), norm2d(c, batch_norm),
                       nn.LeakyReLU(0.2, inplace=True)]
            c_in = c
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_features = c_in * 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)                                               # (B, c_last * 4 * 4)


class ConvDecoder(nn.Module):
    """(B, z) -> (B, C, S, S) unbounded outputs (logits or pre-activations): a linear layer to
    4x4, then transposed-conv + BN + ReLU blocks doubling the side, the encoder mirrored."""

    def __init__(self, z_dim: int, out_channels: int, side: int, width: tuple[int, ...],
                 batch_norm: bool = True):
        super().__init__()
        chans = block_widths(width, side)[::-1]                          # widest first
        self.start = chans[0]
        self.fc = nn.Sequential(nn.Linear(z_dim, chans[0] * 16),
                                nn.BatchNorm1d(chans[0] * 16) if batch_norm else nn.Identity(),
                                nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                       norm2d(c_out, batch_norm), nn.ReLU(inplace=True)]
        layers.append(nn.ConvTranspose2d(chans[-1], out_channels, 4, 2, 1))  # -> S x S
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(len(z), self.start, 4, 4)                    # (B, c, 4, 4)
        return self.net(h)                                               # (B, C, S, S)


class ConvEncoderClassifier(nn.Module):
    """The conv VAE's encoder and latent mean followed by a linear head (the conv counterpart
    of mlp.EncoderMLP, same attribute names so a trained VAE initialises it)."""

    def __init__(self, in_channels: int, side: int, width: tuple[int, ...], latent_dim: int,
                 n_classes: int, dropout: float = 0.2):
        super().__init__()
        self.encoder = ConvEncoder(in_channels, side, width, batch_norm=False)  # as ConvVAENet
        self.mu = nn.Linear(self.encoder.out_features, latent_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(latent_dim, n_classes)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> the latent mean (B, z)."""
        return self.mu(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embedding(x)))               # (B, K)


class WNConv2d(nn.Module):
    """Weight-normalised convolution (Salimans & Kingma 2016), like mlp.WNLinear."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.v = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel) * 0.05)
        self.g = nn.Parameter(torch.ones(c_out))
        self.b = nn.Parameter(torch.zeros(c_out))
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.v.flatten(1).norm(dim=1).clamp_min(1e-8)             # (out,)
        w = self.v * (self.g / norm)[:, None, None, None]
        return F.conv2d(x, w, self.b, self.stride, self.padding)


class ConvDiscriminator(nn.Module):
    """Improved-GAN style D for images: input noise, weight-normalised stride-2 convs with
    LeakyReLU and dropout down to 4x4, global mean pooling (the feature-matching layer), then
    K class logits; the fake class is implicit (logit 0), as in DiscriminatorMLP."""

    def __init__(self, in_channels: int, side: int, n_classes: int, width: tuple[int, ...],
                 input_noise: float = 0.1, dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = [GaussianNoise(input_noise)]
        c_in = in_channels
        for i, c in enumerate(block_widths(width, side)):
            layers += [WNConv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            layers += [nn.Dropout(dropout)] if i else []
            c_in = c
        self.body = nn.Sequential(*layers)
        self.head = WNLinear(c_in, n_classes)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> (B, c_last), the mean of the last feature map."""
        return self.body(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(x))                             # (B, K)


class ConvGenerator(nn.Module):
    """z (B, z_dim) -> images (B, C, S, S) in (0, 1): ConvDecoder with a sigmoid output, so
    samples live where D's real inputs do."""

    def __init__(self, z_dim: int, out_channels: int, side: int, width: tuple[int, ...]):
        super().__init__()
        self.z_dim = z_dim
        self.net = ConvDecoder(z_dim, out_channels, side, width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


class ConvVAENet(ELBONet):
    """The conv VAE: ConvEncoder -> (mu, logvar) -> ConvDecoder, Bernoulli logits (B, C, S, S)."""

    def __init__(self, channels: int, side: int, cfg: "VAEConfig"):
        super().__init__()
        # GroupNorm, not BatchNorm (norm2d)
        self.encoder = ConvEncoder(channels, side, cfg.conv_width, batch_norm=False)  # -> (B, h)
        self.mu = nn.Linear(self.encoder.out_features, cfg.latent_dim)
        self.logvar = nn.Linear(self.encoder.out_features, cfg.latent_dim)
        self.decoder = ConvDecoder(cfg.latent_dim, channels, side, cfg.conv_width, batch_norm=False)


def reduced_pixels(X: np.ndarray, side: int, batch: int = 256) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, C * side * side) float32: every image shrunk to side x side and
    flattened, batch by batch; a cheap vector per image for a pixel-space neighbour graph of
    colour or large images (at 16 px, 300 MB for 100,000 colour images instead of 20 GB)."""
    view = PixelBatches(X, side)
    out = np.zeros((len(X), X.shape[3] * side * side), np.float32)
    for s in range(0, len(X), batch):
        out[s:s + batch] = view[s:s + batch].flatten(1).numpy()
    return out
