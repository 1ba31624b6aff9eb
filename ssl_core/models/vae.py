"""A variational autoencoder learned from all images, without labels (Kingma & Welling 2014).

Its encoder gives the latent space the app maps with UMAP and the semi-supervised methods
build their neighbour graph on; its decoder gives reconstructions, interpolations and, given
labels, per-class samples (decode points drawn from each class's region of the latent space).

Three kinds of input, one estimator (`kind_`):
- 'mlp': small greyscale images (up to 32x32): a fully connected encoder/decoder over flattened
  pixels; on two CPU cores a 784-512-256-16 model trains an MNIST epoch in ~2.6 s.
- 'conv': colour or larger images: the conv encoder/decoder of conv_nets.py at a working side
  of at most `max_side` px (why 32: conv_nets.py).
- 'vectors': feature vectors (N, D) float (pretrained features after their projection): the
  MLP with a Gaussian decoder instead of the Bernoulli one, no deskewing.
Images get a Bernoulli decoder (logits; pixels in [0, 1]); the loss is the negative ELBO of the
paper's appendix B. Vectors are centred and scaled to unit mean variance (one scale for all
dimensions: per-dimension whitening would inflate the weak PCA directions, which cost label
propagation 3-7 points on photos, docs/photos.md), and their Gaussian decoder learns one
shared variance (the calibrated decoder of Rybkin et al. 2021, "sigma-VAE"), which balances
reconstruction against the KL term by itself instead of a hand-set weight.
Images are read from X one batch at a time (conv_nets.PixelBatches): no float copy of the set.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ssl_core.models.base import SSLEstimator, check_images, to_uint8_images
from ssl_core.models.conv_nets import (
    ConvVAENet,
    PixelBatches,
    resize,
    uses_conv_nets,
    working_side,
)
from ssl_core.models.mlp import ELBONet, VAENet, VectorVAENet
from ssl_core.models.representation import PIXELS
from ssl_core.threads import torch_threads
from ssl_core.training.schedules import BudgetSchedule
from ssl_core.training.trainer import Callback, Trainer, TrainerConfig, resolve_device

VECTORS = "vectors"           # representation_ of a VAE fitted on feature vectors


@dataclass(frozen=True)
class VAEConfig:
    hidden: tuple[int, int] = (512, 256)  # MLP encoder widths (decoder mirrors them)
    latent_dim: int = 16                  # enough for class structure; keeps kNN graphs cheap
    epochs: float = 15.0                  # latent neighbourhoods stop improving around 10-20
    batch_size: int = 256                 # large batches: better CPU throughput
    lr: float = 2e-3                      # Adam, one-cycle schedule
    beta: float = 1.0                     # weight of the KL term (1 = the ELBO)
    deskew: bool = False                  # model deskewed images: +1.7 points of latent-graph
                                          # accuracy on MNIST, but hurts 8x8 digits
    min_steps: int = 5000                 # small sets train at least this many steps (below)
    conv_width: tuple[int, ...] = (16, 32, 64)  # colour/large images: conv channels, and
    max_side: int = 32                    # working side (conv_nets.py: 2-3x more steps per
                                          # second than wider nets or 64 px, no worse)


def planned_epochs(cfg: VAEConfig, n_images: int) -> float:
    """The epochs a fit on `n_images` runs: `cfg.epochs`, raised so that training takes at
    least `cfg.min_steps` optimiser steps. Epochs alone under-train small sets: 20 MNIST epochs
    are 5,460 steps on 70,000 images but 140 on 1,797, and a VAE stopped that early barely
    separates classes (the VAE-based method on 3,000 MNIST images: 58% after 220 steps, 95.4%
    with 5,000; the digits map: 2-D kNN label agreement 0.70 after 15 epochs, 0.93 after 286).
    The time budget still caps training."""
    per_epoch = steps_per_epoch(n_images, cfg.batch_size)
    return max(cfg.epochs, float(np.ceil(cfg.min_steps / per_epoch)))


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimiser steps in one epoch: full batches of min(batch_size, n_images), at least 1."""
    return max(1, n_images // max(1, min(batch_size, n_images)))


class _VAETask:
    def __init__(self, net: VAENet, x: PixelBatches | torch.Tensor, cfg: VAEConfig, epochs: float,
                 device, budget_s: float | None = None):
        self.net, self.x, self.cfg, self.device = net, x, cfg, device
        self.batch = min(cfg.batch_size, len(x))
        self.steps_per_epoch = steps_per_epoch(len(x), cfg.batch_size)
        self.opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        total = max(1, int(epochs * self.steps_per_epoch))
        self.sched = BudgetSchedule(self.opt, cfg.lr, total, budget_s)  # anneals by steps or time

    def epoch_size(self) -> int:
        return len(self.x)

    def train_step(self, step: int, order: np.ndarray) -> dict[str, float]:
        ids = torch.from_numpy(order[step * self.batch:(step + 1) * self.batch])
        rec, kl = self.net.loss(self.x[ids].to(self.device), self.cfg.beta)  # x[ids]: one batch
        loss = (rec + kl).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return {"loss": loss.item(), "reconstruction": rec.mean().item(), "kl": kl.mean().item()}

    def evaluate(self) -> dict[str, float]:
        return {}


def check_inputs(X: np.ndarray) -> np.ndarray:
    """Images (N, H, W, C) uint8 (checked by check_images) or feature vectors (N, D) float."""
    X = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if X.ndim == 2:
        if X.dtype.kind != "f" or len(X) == 0 or X.shape[1] == 0:
            raise ValueError(f"feature vectors must be a non-empty (N, D) float array, got "
                             f"shape {X.shape} and dtype {X.dtype}")
        return X
    return check_images(X)


class VAE(SSLEstimator):
    """Unsupervised: fit(X) learns from every image (or feature vector); y is accepted and
    ignored (sklearn style), except that `sample(n, label)` uses the labels given to
    `fit_class_regions`. `kind_` is 'mlp', 'conv' or 'vectors' (module docstring);
    `draws_images` says whether `sample` (images) or `sample_vectors` (vectors) applies."""
    method = "vae-embedding"
    Config = VAEConfig

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, callbacks: Iterable[Callback] = (),
            time_budget_s: float | None = None, warm_start: bool = False) -> "VAE":
        """Learn from every image of X (N, H, W, C) uint8, or every feature vector of X (N, D)
        float (y is ignored); `warm_start` continues from the current weights when they fit
        these inputs (a map rebuild fine-tunes the previous VAE)."""
        X = check_inputs(X)
        kind, shape = input_kind(X), tuple(X.shape[1:])
        cfg = self.config
        epochs = planned_epochs(cfg, len(X))
        # vectors: a small MLP on ~128-D inputs, where a second thread only spins (13x slower
        # under contention in the map job); images use every core
        with torch_threads(1 if kind == VECTORS else None):
            device = resolve_device()
            torch.manual_seed(self.random_state)
            warm = (warm_start and hasattr(self, "net_") and getattr(self, "kind_", "mlp") == kind
                    and tuple(self.input_shape_) == shape)
            self.kind_, self.input_shape_ = kind, shape
            self.representation_ = VECTORS if kind == VECTORS else PIXELS
            if not warm:
                self.net_ = self._new_net(X)
            x = self.encoder_inputs(X, cached=True)          # lazy (N, C, S, S) or (N, D)
            self.net_.to(device)
            task = _VAETask(self.net_, x, cfg, epochs, device, time_budget_s)
            Trainer(TrainerConfig(max_epochs=epochs, time_budget_s=time_budget_s,
                                  seed=self.random_state), callbacks).fit(task)
            self.net_.eval().cpu()
        if not hasattr(self, "classes_"):
            self.classes_ = np.zeros(0, np.int64)
        return self

    def planned_epochs(self, n_images: int) -> float:
        """The epochs `fit` on n_images will run (see planned_epochs)."""
        return planned_epochs(self.config, n_images)

    @property
    def draws_images(self) -> bool:
        """True when `sample` draws images; False for a VAE of feature vectors
        (`sample_vectors`; show each vector as its nearest real image)."""
        return getattr(self, "kind_", "mlp") != VECTORS

    @property
    def side_(self) -> int:
        """The conv networks' working side (conv_nets.working_side)."""
        return working_side(self.input_shape_, self.config.max_side)

    def _new_net(self, X: np.ndarray) -> ELBONet:
        if self.kind_ == VECTORS:
            v = np.asarray(X, np.float32)                                # (N, D), small
            mean = v.mean(0)
            scale = 1.0 / np.sqrt(max(float(((v - mean) ** 2).mean()), 1e-12))
            return VectorVAENet(v.shape[1], self.config, torch.from_numpy(mean), scale)
        if self.kind_ == "conv":
            return ConvVAENet(self.input_shape_[2], self.side_, self.config)
        return VAENet(int(np.prod(self.input_shape_)), self.config)

    def encoder_inputs(self, X: np.ndarray, cached: bool = False) -> PixelBatches | torch.Tensor:
        """What the encoder sees: images as a lazy PixelBatches view (deskewed, resized to the
        working side as configured; `cached` for training), feature vectors (N, D) normalised."""
        if self.kind_ == VECTORS:
            return self.net_.normalise(torch.as_tensor(np.asarray(X, np.float32)))
        side = self.side_ if self.kind_ == "conv" else None
        return PixelBatches(X, side, self.config.deskew, cached)

    @torch.no_grad()
    def transform(self, X: np.ndarray, batch: int | None = None) -> np.ndarray:
        """Posterior means: images (N, H, W, C) uint8 or vectors (N, D) -> (N, latent_dim)
        float32, encoded in batches."""
        x = self.encoder_inputs(X)
        batch = batch or (256 if self.kind_ == "conv" else 8192)
        out = [self.net_.encode(x[s:s + batch])[0] for s in range(0, len(x), batch)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.config.latent_dim), np.float32)

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """(N, latent_dim) -> images (N, H, W, C) uint8, or vectors (N, D) float32."""
        out = self.net_.decode(torch.as_tensor(z, dtype=torch.float32))
        if self.kind_ == VECTORS:
            return self.net_.denormalise(out).numpy()
        h, w, c = self.input_shape_
        if self.kind_ == "conv":
            return to_uint8_images(resize(torch.sigmoid(out), (h, w)))
        probs = torch.sigmoid(out)
        return (probs.reshape(-1, c, h, w).permute(0, 2, 3, 1) * 255).round().byte().numpy()

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        return self.decode(self.transform(X))

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 8) -> np.ndarray:
        """Decode the straight line between two inputs' latent means: (steps, H, W, C)."""
        za, zb = self.transform(np.stack([a, b]))
        t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
        return self.decode((1 - t) * za + t * zb)

    def fit_class_regions(self, X: np.ndarray, y: np.ndarray) -> "VAE":
        """Remember each class's latent mean and covariance (y = -1 ignored), for sampling."""
        y = np.asarray(y)
        return self.set_class_regions(self.transform(np.asarray(X)[y >= 0]), y[y >= 0])

    def set_class_regions(self, z: np.ndarray, labels: np.ndarray) -> "VAE":
        """Same from latents z (N, latent_dim) already computed and their labels (N,)."""
        self.classes_ = np.unique(labels)
        self.class_means_ = np.stack([z[labels == c].mean(0) for c in self.classes_])
        self.class_covs_ = np.stack([np.cov(z[labels == c].T) + 1e-3 * np.eye(z.shape[1])
                                     if (labels == c).sum() > 1 else np.eye(z.shape[1])
                                     for c in self.classes_])
        return self

    def _draw(self, n: int, label: int | None, seed: int) -> np.ndarray:
        """n latents (n, latent_dim) from the prior, or from the latent region of `label`."""
        rng = np.random.default_rng(seed)
        dim = self.config.latent_dim
        if label is None:
            return rng.standard_normal((n, dim)).astype(np.float32)
        k = int(np.flatnonzero(self.classes_ == label)[0])
        return rng.multivariate_normal(self.class_means_[k], self.class_covs_[k],
                                       size=n).astype(np.float32)

    def sample(self, n: int, label: int | None = None, seed: int = 0) -> np.ndarray:
        """n images (n, H, W, C) from the prior, or from the latent region of class `label`."""
        if not self.draws_images:
            raise ValueError("this VAE was trained on feature vectors: it draws feature vectors, "
                             "not pixels (sample_vectors), shown as their nearest real images")
        return self.decode(self._draw(n, label, seed))

    def sample_vectors(self, n: int, label: int | None = None, seed: int = 0) -> np.ndarray:
        """n feature vectors (n, D) float32, drawn like `sample` (vector VAEs only)."""
        if self.draws_images:
            raise ValueError("this VAE was trained on images: sample() draws them")
        return self.decode(self._draw(n, label, seed))

    def predict_proba(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError("the VAE embeds images; use a semi-supervised method to classify")

    def _state(self) -> dict[str, Any]:
        state = {"kind": self.kind_, "net": self.net_.state_dict()}
        if hasattr(self, "class_means_"):
            state["class_means"] = torch.from_numpy(self.class_means_)
            state["class_covs"] = torch.from_numpy(self.class_covs_)
        return state

    def _set_state(self, state: dict[str, Any], meta: dict[str, Any]) -> None:
        self.kind_ = state.get("kind", "mlp")   # models saved before conv/feature nets: MLPs
        self.representation_ = VECTORS if self.kind_ == VECTORS else PIXELS
        self.net_ = (VectorVAENet(self.input_shape_[0], self.config) if self.kind_ == VECTORS
                     else self._new_net(np.zeros((0, *self.input_shape_), np.uint8)))
        self.net_.load_state_dict(state["net"])
        self.net_.eval()
        if "class_means" in state:
            self.class_means_ = state["class_means"].numpy()
            self.class_covs_ = state["class_covs"].numpy()


def input_kind(X: np.ndarray) -> str:
    """'vectors' for (N, D) inputs, else 'conv' or 'mlp' by the images' shape (conv_nets)."""
    if X.ndim == 2:
        return VECTORS
    return "conv" if uses_conv_nets(X.shape[1:]) else "mlp"
