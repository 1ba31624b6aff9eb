"""Small CPU-friendly CNN, shift augmentation and a pseudo-label distillation trainer."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCNN(nn.Module):
    """conv3x3 c1 -> pool -> c2 -> pool -> c3 -> pool -> fc -> classes; (B, C, H, W) -> (B, K)."""

    def __init__(self, in_ch: int = 1, n_classes: int = 10, width: tuple[int, int, int] = (32, 64, 128),
                 hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        c1, c2, c3 = width

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True))

        self.features = nn.Sequential(block(in_ch, c1), nn.MaxPool2d(2), block(c1, c2), nn.MaxPool2d(2),
                                      block(c2, c3), nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(c3, hidden), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor, return_embedding: bool = False):
        h = self.embed(self.features(x))  # (B, hidden)
        logits = self.head(self.drop(h))  # (B, K)
        return (logits, h) if return_embedding else logits


def random_shift(x: torch.Tensor, max_shift: float = 2.0, max_rot_deg: float = 0.0,
                 max_scale: float = 0.0) -> torch.Tensor:
    """Random per-sample translation (pixels), optional rotation/scale. (B, C, H, W) -> same."""
    b, _, h, w = x.shape
    ang = (torch.rand(b) * 2 - 1) * max_rot_deg * np.pi / 180
    sc = 1 + (torch.rand(b) * 2 - 1) * max_scale
    tx = (torch.rand(b) * 2 - 1) * max_shift * 2 / w
    ty = (torch.rand(b) * 2 - 1) * max_shift * 2 / h
    theta = torch.stack([torch.stack([sc * torch.cos(ang), -sc * torch.sin(ang), tx], 1),
                         torch.stack([sc * torch.sin(ang), sc * torch.cos(ang), ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def one_cycle(progress: float, warmup: float = 0.15) -> float:
    """LR multiplier: linear warm-up then cosine decay to 0 over progress in [0, 1]."""
    if progress < warmup:
        return 0.1 + 0.9 * progress / warmup
    return 0.5 * (1 + np.cos(np.pi * (progress - warmup) / (1 - warmup)))


@dataclass
class DistillConfig:
    epochs: float = 6.0            # passes over all images; a few suffice on pseudo-labels
    batch_size: int = 128          # best CPU throughput for channels_last small convs
    lr: float = 3e-3               # Adam with one-cycle schedule converges in few epochs
    weight_decay: float = 5e-4     # mild regularisation against pseudo-label noise
    max_shift: float = 2.0         # +-2 px translations: the main MNIST invariance
    max_rot_deg: float = 10.0      # small rotations add robustness cheaply
    max_scale: float = 0.1         # +-10 % zoom
    label_smoothing: float = 0.1   # soft targets limit memorisation of wrong pseudo-labels
    labeled_weight: float = 3.0    # true labels count more than pseudo-labels
    width: tuple[int, int, int] = (32, 64, 128)  # ~4k img/s training on 2 cores
    hidden: int = 128              # embedding size (used for the next graph round)


def train_distill(x: np.ndarray, targets: np.ndarray, weights: np.ndarray, cfg: DistillConfig,
                  n_classes: int, seed: int = 0, time_budget_s: float | None = None,
                  model: SmallCNN | None = None, verbose: bool = False) -> SmallCNN:
    """Train on (x (N, C, H, W) float32, targets (N,) int, weights (N,) >= 0); zero weight = skipped."""
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    keep = np.flatnonzero(weights > 0)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(targets.astype(np.int64))
    wt = torch.from_numpy(weights.astype(np.float32))
    if model is None:
        model = SmallCNN(x.shape[1], n_classes, cfg.width, cfg.hidden)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bs = min(cfg.batch_size, len(keep))  # guards tiny labeled sets (inner loop must run)
    total = max(1, int(cfg.epochs * len(keep)) // bs)
    t0 = time.time()
    model.train()
    step, progress = 0, 0.0
    while progress < 1.0:
        perm = keep[rng.permutation(len(keep))]
        for s in range(0, len(perm) - bs + 1, bs):
            # progress = max(step fraction, time fraction): the schedule anneals inside the budget
            progress = step / total
            if time_budget_s is not None:
                progress = max(progress, (time.time() - t0) / time_budget_s)
            if progress >= 1.0:
                break
            for g in opt.param_groups:
                g["lr"] = cfg.lr * one_cycle(progress)
            bi = torch.from_numpy(perm[s:s + bs])
            xb = random_shift(xt[bi], cfg.max_shift, cfg.max_rot_deg, cfg.max_scale)
            xb = xb.contiguous(memory_format=torch.channels_last)  # (B, C, H, W)
            loss = F.cross_entropy(model(xb), yt[bi], reduction="none", label_smoothing=cfg.label_smoothing)
            loss = (loss * wt[bi]).sum() / wt[bi].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if verbose and step % 500 == 0:
                print(f"  step {step}/{total} loss {loss.item():.3f} t={time.time() - t0:.0f}s", flush=True)
    model.steps_trained_ = step
    model.eval()
    return model


@torch.no_grad()
def predict_logits(model: SmallCNN, x: np.ndarray, batch: int = 2048, embedding: bool = False):
    """x (N, C, H, W) float32 -> logits (N, K) [, embedding (N, hidden)]."""
    model.eval()
    outs, embs = [], []
    for s in range(0, len(x), batch):
        xb = torch.from_numpy(x[s:s + batch]).contiguous(memory_format=torch.channels_last)
        lo, h = model(xb, return_embedding=True)
        outs.append(lo)
        embs.append(h)
    lo = torch.cat(outs).numpy()
    return (lo, torch.cat(embs).numpy()) if embedding else lo
