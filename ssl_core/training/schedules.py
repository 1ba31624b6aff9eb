"""Learning-rate schedules that finish on time.

A schedule defined over steps alone breaks under a time budget: when the machine is slower than
planned (two busy processes on two cores can run 3x slower), the budget cuts training before the
learning rate has annealed, and the un-annealed model is clearly worse. Here progress is
max(step / total_steps, elapsed / budget), so the rate reaches its end value exactly when either
the steps or the time run out — measured in the engine research as the difference between a
CNN student that holds its accuracy under contention and one that loses a point.
"""
from __future__ import annotations

import math
import time

import torch


def one_cycle(progress: float, warmup: float = 0.15) -> float:
    """Multiplier: linear warm-up from 0.1 to 1, then cosine decay to 0 (progress in [0, 1])."""
    if progress < warmup:
        return 0.1 + 0.9 * progress / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))


def flat_then_linear(progress: float, flat: float = 0.5) -> float:
    """Multiplier: constant for the first `flat` of training, then linear to 0 (the Improved-GAN
    recipe's decay, which keeps the adversarial game stable early on)."""
    return min(1.0, (1.0 - progress) / (1.0 - flat)) if progress < 1 else 0.0


SHAPES = {"one_cycle": one_cycle, "flat_then_linear": flat_then_linear}


class BudgetSchedule:
    """Sets the learning rate of every param group of `optimizers` before each step."""

    def __init__(self, optimizers: torch.optim.Optimizer | list[torch.optim.Optimizer],
                 peak_lr: float, total_steps: int, budget_s: float | None = None,
                 shape: str = "one_cycle"):
        self.optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        self.peak_lr = peak_lr
        self.total_steps = max(1, total_steps)
        self.budget_s = budget_s
        self.shape = SHAPES[shape]
        self.steps = 0
        self._t0 = time.perf_counter()
        self._apply()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def progress(self) -> float:
        p = self.steps / self.total_steps
        if self.budget_s:
            p = max(p, self.elapsed() / self.budget_s)
        return min(1.0, p)

    def lr(self) -> float:
        return self.peak_lr * self.shape(self.progress())

    def _apply(self) -> None:
        lr = self.lr()
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = lr

    def step(self) -> None:
        """Call after each optimiser step: sets the rate for the next one."""
        self.steps += 1
        self._apply()
