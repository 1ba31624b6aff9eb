"""Supervised-only baselines (labeled images only) for each classifier family."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import ImageSSLBase, Timer, holdout_split
from .cnn import DistillConfig, SmallCNN, predict_logits, train_distill
from .mlp import DiscriminatorMLP, EncoderMLP, mlp_logits


@dataclass
class BaselineConfig:
    samples_seen: int = 40000       # ~400 epochs of 100 labeled images; plateaued by then
    batch_size: int = 64            # small labeled set: small batches, more updates
    lr: float = 1e-3                # AdamW
    augment: bool = True            # same +-2 px / 10 deg / 10 % augmentation as the SSL students
    val_fraction: float = 0.2       # per-class hold-out for validation_score_, then refit on all


def build(kind: str, in_ch: int, d_in: int, n_classes: int) -> torch.nn.Module:
    if kind == "cnn":
        return SmallCNN(in_ch, n_classes)
    if kind == "gan":   # Improved-GAN discriminator architecture, no GAN training
        return DiscriminatorMLP(d_in, n_classes)
    if kind == "vae":   # VAE-encoder-shaped MLP, random init, no VAE pretraining
        return EncoderMLP(d_in, n_classes)
    raise ValueError(kind)


class SupervisedClassifier(ImageSSLBase):
    """Trains `kind` in {'cnn', 'gan', 'vae'} on labeled rows only (y = -1 rows are ignored)."""

    def __init__(self, kind: str = "cnn", config: BaselineConfig | None = None, random_state: int = 0,
                 time_budget_s: float | None = None, n_threads: int = 2):
        self.kind = kind
        self.config = config
        self.random_state = random_state
        self.time_budget_s = time_budget_s
        self.n_threads = n_threads

    def _train(self, x, y, idx, seed, budget):
        cfg = self.config or BaselineConfig()
        w = np.zeros(len(x))
        w[idx] = 1.0
        dc = DistillConfig(epochs=cfg.samples_seen / max(len(idx), 1), batch_size=min(cfg.batch_size, len(idx)),
                           lr=cfg.lr, label_smoothing=0.0)
        if not cfg.augment:
            dc.max_shift = dc.max_rot_deg = dc.max_scale = 0.0
        torch.manual_seed(seed)
        model = build(self.kind, x.shape[1], int(np.prod(x.shape[1:])), self.n_classes_)
        return train_distill(x, np.maximum(y, 0), w, dc, self.n_classes_, seed=seed, time_budget_s=budget,
                             model=model)

    def fit(self, X: np.ndarray, y: np.ndarray) -> "SupervisedClassifier":
        torch.set_num_threads(self.n_threads)
        timer = Timer(self.time_budget_s)
        cfg = self.config or BaselineConfig()
        x, yi = self._prepare(X, y)
        labeled = np.flatnonzero(yi >= 0)
        x, yi = x[labeled], yi[labeled]  # supervised only
        idx = np.arange(len(x))
        self.validation_score_ = float("nan")
        if cfg.val_fraction > 0:
            tr, va = holdout_split(idx, yi, cfg.val_fraction, np.random.RandomState(self.random_state))
            m = self._train(x, yi, tr, self.random_state, None if timer.left() == float("inf") else timer.left() / 3)
            self.validation_score_ = float(np.mean(self._logits(m, x[va]).argmax(1) == yi[va]))
        self.model_ = self._train(x, yi, idx, self.random_state, None if timer.left() == float("inf") else timer.left())
        self.fit_seconds_ = timer.elapsed()
        return self

    def _logits(self, model, x):
        return predict_logits(model, x) if self.kind == "cnn" else mlp_logits(model, x)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        lo = self._logits(self.model_, self._to_float(X))
        p = np.exp(lo - lo.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)
