"""One training loop for every model: epochs and/or a time budget, progress callbacks,
periodic checkpoints with resume, seeding, all CPU cores, CUDA when present.

The trainer knows nothing about the model (after minGPT's Trainer): a model hands it a
`TrainTask` that can take one optimisation step, evaluate itself, and save/restore its state.
Callbacks receive a `TrainProgress` after every step; raising inside a callback (e.g. the
worker's `Cancelled`) stops training at once, and returning `STOP` ends it gracefully — that is
how a background job reports progress and honours cancel without the trainer knowing about jobs.

Checkpoints hold tensors and plain numbers only (no pickled objects) so they load with
`torch.load(..., weights_only=True)`. Data order is derived from (seed, epoch), so a resumed
run sees the same batches it would have seen.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

STOP = "stop"  # a callback returns this to end training after the current step


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: float = 10.0            # upper bound; fractional epochs allowed
    time_budget_s: float | None = None  # wall-clock budget for this fit; None = epochs decide
    eval_every_steps: int = 0           # also evaluate every N steps (0 = at epoch ends only)
    checkpoint_path: str | None = None  # periodic checkpoints go here (None = none)
    checkpoint_every_s: float = 60.0    # how often to checkpoint while training
    seed: int = 0                       # seeds torch and the data order
    device: str = "auto"                # 'auto' = CUDA when present, else CPU
    num_threads: int | None = None      # CPU threads; None = every core


@dataclass
class TrainProgress:
    epoch: int = 0
    step: int = 0                       # optimisation steps done (across resumes)
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

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: tensors, numbers, strings, lists and dicts of those."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


Callback = Callable[[TrainProgress], Any]


class NetOptimiserState:
    """Mixin for tasks made of `net`, `opt` and `sched`: their checkpoint state."""

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def use_all_cores(num_threads: int | None = None) -> None:
    """Every core by default; $LATENTLAB_NUM_THREADS caps it on a shared machine (two busy
    processes each spinning one thread per core slow each other down many times over)."""
    cap = int(os.environ.get("LATENTLAB_NUM_THREADS", "0")) or None
    torch.set_num_threads(num_threads or cap or os.cpu_count() or 1)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The data order of one epoch, a pure function of (seed, epoch): resumable."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class Trainer:
    def __init__(self, config: TrainerConfig = TrainerConfig(), callbacks: Iterable[Callback] = ()):
        self.config = config
        self.callbacks = list(callbacks)

    def fit(self, task: TrainTask, resume: bool = False) -> TrainProgress:
        cfg = self.config
        use_all_cores(cfg.num_threads)
        torch.manual_seed(cfg.seed)
        progress = TrainProgress(total_steps=int(cfg.max_epochs * task.steps_per_epoch))
        if resume and cfg.checkpoint_path and Path(cfg.checkpoint_path).is_file():
            self._restore(task, progress)
        t0 = time.perf_counter()
        last_ckpt = t0
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
            if cfg.checkpoint_path and time.perf_counter() - last_ckpt >= cfg.checkpoint_every_s:
                self.save_checkpoint(task, progress)
                last_ckpt = time.perf_counter()
            if any(cb(progress) == STOP for cb in self.callbacks):
                progress.stopped_by = "callback"
                break
        progress.metrics = task.evaluate()
        if cfg.checkpoint_path:
            self.save_checkpoint(task, progress)
        return progress

    def save_checkpoint(self, task: TrainTask, progress: TrainProgress) -> None:
        """Atomic: written beside, then renamed, so a crash never leaves half a checkpoint."""
        path = Path(self.config.checkpoint_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"task": task.state_dict(), "step": progress.step,
                    "torch_rng": torch.get_rng_state()}, tmp)
        tmp.replace(path)

    def _restore(self, task: TrainTask, progress: TrainProgress) -> None:
        state = torch.load(self.config.checkpoint_path, map_location="cpu", weights_only=True)
        task.load_state_dict(state["task"])
        progress.step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
