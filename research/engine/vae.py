"""Fully-connected VAE (Bernoulli decoder) used as an unsupervised feature learner / generator."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class VAEConfig:
    hidden: tuple[int, int] = (512, 256)  # 784-512-256-z: ~2.6 s per 60k epoch on 2 cores
    latent_dim: int = 16                  # enough for MNIST class structure, keeps kNN cheap
    epochs: int = 15                      # latent kNN quality saturates around 10-20 epochs
    batch_size: int = 256                 # larger batches = better CPU throughput
    lr: float = 2e-3                      # Adam; cosine-decayed to 0
    beta: float = 1.0                     # standard ELBO
    seed: int = 0


class VAE(nn.Module):
    def __init__(self, d_in: int, cfg: VAEConfig):
        super().__init__()
        h1, h2 = cfg.hidden
        self.enc = nn.Sequential(nn.Linear(d_in, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
        self.mu = nn.Linear(h2, cfg.latent_dim)
        self.logvar = nn.Linear(h2, cfg.latent_dim)
        self.dec = nn.Sequential(nn.Linear(cfg.latent_dim, h2), nn.ReLU(), nn.Linear(h2, h1), nn.ReLU(),
                                 nn.Linear(h1, d_in))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)  # (B, h2)
        return self.mu(h), self.logvar(h).clamp(-10, 10)  # (B, z), (B, z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Negative ELBO per example, x (B, D) in [0, 1] -> (B,)."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # (B, z)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return rec, kl


def train_vae(x: np.ndarray, cfg: VAEConfig, time_budget_s: float | None = None,
              verbose: bool = False) -> VAE:
    """x (N, D) float32 in [0, 1]. Stops early when the time budget is spent."""
    torch.manual_seed(cfg.seed)
    rng = np.random.RandomState(cfg.seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    model = VAE(xt.shape[1], cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * (len(x) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.05)
    t0, step = time.time(), 0
    for ep in range(cfg.epochs):
        perm = torch.from_numpy(rng.permutation(len(x)))
        tot = 0.0
        for s in range(0, len(x) - cfg.batch_size + 1, cfg.batch_size):
            rec, kl = model(xt[perm[s:s + cfg.batch_size]])
            loss = (rec + cfg.beta * kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            tot += loss.item()
        if verbose:
            print(f"  vae epoch {ep} loss {tot / (len(x) // cfg.batch_size):.1f} t={time.time() - t0:.0f}s", flush=True)
        if time_budget_s is not None and time.time() - t0 > time_budget_s:
            break
    model.eval()
    return model


@torch.no_grad()
def encode_mean(model: VAE, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """x (N, D) -> posterior means (N, z)."""
    return torch.cat([model.encode(torch.from_numpy(x[s:s + batch]))[0]
                      for s in range(0, len(x), batch)]).numpy()


@torch.no_grad()
def decode(model: VAE, z: np.ndarray) -> np.ndarray:
    """z (N, latent) -> Bernoulli means (N, D) in [0, 1]."""
    return torch.sigmoid(model.dec(torch.from_numpy(z.astype(np.float32)))).numpy()
