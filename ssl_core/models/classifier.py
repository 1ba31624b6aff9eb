"""Training and inference for every classifier network (SmallCNN, the MLPs of mlp.py) on
(possibly weighted, possibly pseudo-) labels.

`train_classifier` is shared: the baseline calls it with the user's labels only; the
semi-supervised pipeline calls it with confident pseudo-labels for the unlabeled images as
well. Both get the same augmentation, so the gap between them is what the unlabeled images buy.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ssl_core.models.base import to_tensor
from ssl_core.models.cnn import SmallCNN, random_affine
from ssl_core.threads import torch_threads
from ssl_core.training.schedules import BudgetSchedule
from ssl_core.training.trainer import Callback, Trainer, TrainerConfig, resolve_device


@dataclass(frozen=True)
class ClassifierConfig:
    width: tuple[int, int, int] = (32, 64, 128)  # conv channels; ~4k images/s on 2 cores at 28x28
    hidden: int = 128                 # embedding size before the class head
    epochs: float = 6.0               # passes over the (pseudo-)labeled images
    min_steps: int = 300              # few labels: train at least this many steps anyway
    batch_size: int = 128             # good CPU throughput for small convs
    lr: float = 3e-3                  # AdamW peak rate of a one-cycle schedule
    weight_decay: float = 5e-4        # mild regularisation against label noise
    max_shift_px: float = 2.0         # translations: the main invariance of centred images
    max_rotation_deg: float = 10.0    # small rotations, cheap robustness
    max_scale: float = 0.1            # +-10% zoom
    label_smoothing: float = 0.1      # limits memorising wrong pseudo-labels
    feature_noise: float = 0.0        # feature vectors (2-D inputs): Gaussian noise instead of
                                      # the image augmentations above


class ClassifierTask:
    """TrainTask: weighted cross-entropy on augmented images; zero-weight images are skipped.
    The learning rate follows a one-cycle schedule over steps or the time budget, whichever
    runs out first, so a budget-cut run still ends annealed."""

    def __init__(self, net: SmallCNN, x: torch.Tensor, targets: np.ndarray, weights: np.ndarray,
                 cfg: ClassifierConfig, epochs: float, val: tuple[torch.Tensor, np.ndarray] | None,
                 device: torch.device, seed: int, budget_s: float | None = None):
        self.net, self.x, self.cfg, self.val, self.device = net, x, cfg, val, device
        self.keep = np.flatnonzero(weights > 0)                  # (M,) ids that train
        self.targets = torch.from_numpy(targets.astype(np.int64))
        self.weights = torch.from_numpy(weights.astype(np.float32))
        self.batch = min(cfg.batch_size, len(self.keep))
        self.steps_per_epoch = max(1, len(self.keep) // self.batch)
        self.total_steps = max(cfg.min_steps, int(epochs * self.steps_per_epoch))
        self.opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = BudgetSchedule(self.opt, cfg.lr, self.total_steps, budget_s)
        self.gen = torch.Generator().manual_seed(seed)

    def epoch_size(self) -> int:
        return len(self.keep)

    def train_step(self, step: int, batch_order: np.ndarray) -> dict[str, float]:
        self.net.train()
        ids = torch.from_numpy(self.keep[batch_order[step * self.batch:(step + 1) * self.batch]])
        c = self.cfg
        xb = self.x[ids]
        if xb.ndim == 4:                                                       # (B, C, H, W)
            xb = random_affine(xb, c.max_shift_px, c.max_rotation_deg, c.max_scale, self.gen)
            xb = xb.to(self.device).contiguous(memory_format=torch.channels_last)
        else:                                                                  # (B, D) features
            if c.feature_noise > 0:
                xb = xb + c.feature_noise * torch.randn(xb.shape, generator=self.gen)
            xb = xb.to(self.device)
        w = self.weights[ids].to(self.device)                                  # (B,)
        loss = F.cross_entropy(self.net(xb), self.targets[ids].to(self.device), reduction="none",
                               label_smoothing=c.label_smoothing)
        loss = (loss * w).sum() / w.sum()                                     # scalar
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return {"loss": loss.item()}

    def evaluate(self) -> dict[str, float]:
        if self.val is None or len(self.val[1]) == 0:
            return {}
        pred = predict_logits(self.net, self.val[0], self.device).argmax(1).numpy()
        return {"val_accuracy": float((pred == self.val[1]).mean())}


@torch.no_grad()
def predict_logits(net: torch.nn.Module, x: torch.Tensor | np.ndarray,
                   device: torch.device | None = None, batch: int = 1024) -> torch.Tensor:
    """x -> (N, K) logits on the CPU; x as for forward_all."""
    return forward_all(net, x, device, batch)[0]


@torch.no_grad()
def forward_all(net: torch.nn.Module, x: torch.Tensor | np.ndarray,
                device: torch.device | None = None, batch: int = 1024
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass: x -> logits (N, K) and embeddings (N, hidden), on the CPU. x is a float tensor
    (images (N, C, H, W) or feature vectors (N, D)), or the uint8 images (N, H, W, C)
    themselves, converted one batch at a time (no float copy of a whole collection)."""
    net.eval()
    device = device or next(net.parameters()).device
    logits, embeddings = [], []
    for s in range(0, len(x), batch):
        xb = x[s:s + batch]
        xb = (to_tensor(xb) if isinstance(xb, np.ndarray) else xb).to(device)
        h = net.embedding(xb.contiguous(memory_format=torch.channels_last) if xb.ndim == 4 else xb)
        embeddings.append(h.cpu())
        logits.append(net.head(h).cpu())
    if not logits:
        return torch.zeros(0, net.head.out_features), torch.zeros(0, net.head.in_features)
    return torch.cat(logits), torch.cat(embeddings)


def train_classifier(x: torch.Tensor, targets: np.ndarray, weights: np.ndarray, n_classes: int,
                     cfg: ClassifierConfig, trainer: TrainerConfig,
                     callbacks: Iterable[Callback] = (), val: tuple[torch.Tensor, np.ndarray] | None = None,
                     net: torch.nn.Module | None = None) -> torch.nn.Module:
    """Train (or warm-start) a network on x with targets (N,) and weights (N,): images
    (N, C, H, W) (default network: a SmallCNN) or feature vectors (N, D) (pass `net`)."""
    device = resolve_device(trainer.device)
    torch.manual_seed(trainer.seed)
    net = (net or SmallCNN(x.shape[1], n_classes, cfg.width, cfg.hidden)).to(device)
    if x.ndim == 4:
        net = net.to(memory_format=torch.channels_last)
    task = ClassifierTask(net, x, targets, weights, cfg, cfg.epochs, val, device, trainer.seed,
                          budget_s=trainer.time_budget_s)
    epochs = task.total_steps / task.steps_per_epoch
    # feature vectors make tiny matrix products: one thread (two spin-waiting threads made a
    # 300-step head on 188 photos take 41 s instead of 3 s on a busy 2-core machine)
    with torch_threads(1 if x.ndim == 2 else None):
        Trainer(replace(trainer, max_epochs=epochs), callbacks).fit(task)
    net.eval()
    return net
