"""One training loop for every model: epochs and/or a time budget, progress callbacks,
seeding, CUDA when present.

The trainer knows nothing about the model (after minGPT's Trainer): a model hands it a
`TrainTask` that can take one optimisation step, evaluate itself, and save/restore its state.
Callbacks receive a `TrainProgress` after every step; raising inside a callback (e.g. the
worker's `Cancelled`) stops training at once, and returning `STOP` ends it gracefully — that is
how a background job reports progress and honours cancel without the trainer knowing about jobs.
Data order is a pure function of (seed, epoch). CPU threads are the estimator's business
(training/threads.py): the trainer changes no process-wide setting.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

STOP = "stop"  # a callback returns this to end training after the current step


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: float = 10.0            # upper bound; fractional epochs allowed
    time_budget_s: float | None = None  # wall-clock budget for this fit; None = epochs decide
    eval_every_steps: int = 0           # also evaluate every N steps (0 = at epoch ends only)
    seed: int = 0                       # seeds torch and the data order
    device: str = "auto"                # 'auto' = CUDA when present, else CPU


@dataclass
class TrainProgress:
    epoch: int = 0
    step: int = 0                       # optimisation steps done
    total_steps: int = 0                # steps the epoch limit allows
    elapsed_s: float = 0.0              # this fit's wall time
    losses: dict[str, float] = field(default_factory=dict)   # from the last step
    metrics: dict[str, float] = field(default_factory=dict)  # from the last evaluation
    stopped_by: str = ""                # 'epochs', 'budget', 'callback'
    fit_steps: int = 0                  # steps taken in this fit, for the ETA's rate
    stage: str = ""                     # set by multi-stage estimators, e.g. 'graph', 'cnn 1/2'

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] against the epoch limit."""
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def eta_s(self, budget_s: float | None = None) -> float | None:
        if self.step == 0 or self.elapsed_s <= 0:
            return None
        by_steps = (self.total_steps - self.step) * self.elapsed_s / max(1, self.fit_steps)
        if budget_s is not None:
            return max(0.0, min(by_steps, budget_s - self.elapsed_s))
        return max(0.0, by_steps)


class TrainTask(Protocol):
    """What a model gives the trainer."""
    steps_per_epoch: int

    def train_step(self, step: int, batch_order: np.ndarray) -> dict[str, float]:
        """One optimisation step; `batch_order` is this epoch's permutation of example ids."""

    def epoch_size(self) -> int:
        """Number of examples the epoch permutation runs over."""

    def evaluate(self) -> dict[str, float]:
        """Validation metrics (e.g. {'val_accuracy': 0.97}); {} when there is nothing to check."""


Callback = Callable[[TrainProgress], Any]


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The data order of one epoch, a pure function of (seed, epoch): reproducible."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class Trainer:
    def __init__(self, config: TrainerConfig = TrainerConfig(), callbacks: Iterable[Callback] = ()):
        self.config = config
        self.callbacks = list(callbacks)

    def fit(self, task: TrainTask) -> TrainProgress:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        progress = TrainProgress(total_steps=int(cfg.max_epochs * task.steps_per_epoch))
        t0 = time.perf_counter()
        n = task.epoch_size()
        while True:
            if progress.step >= progress.total_steps:
                progress.stopped_by = "epochs"
                break
            if cfg.time_budget_s is not None and time.perf_counter() - t0 >= cfg.time_budget_s:
                progress.stopped_by = "budget"
                break
            progress.epoch, within = divmod(progress.step, task.steps_per_epoch)
            progress.losses = task.train_step(within, epoch_order(cfg.seed, progress.epoch, n))
            progress.step += 1
            progress.fit_steps += 1
            progress.elapsed_s = time.perf_counter() - t0
            epoch_end = progress.step % task.steps_per_epoch == 0
            if epoch_end or (cfg.eval_every_steps and progress.step % cfg.eval_every_steps == 0):
                progress.metrics = task.evaluate()
            if any(cb(progress) == STOP for cb in self.callbacks):
                progress.stopped_by = "callback"
                break
        progress.metrics = task.evaluate()
        return progress
