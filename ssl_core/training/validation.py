"""Honest accuracy: validation splits of the user's labels and confidence intervals.

Models are chosen on a validation split of the labeled images, never on ground truth. With
few labels a single split is noisy, so every accuracy travels with its Wilson interval and the
number of images behind it; the UI shows all three. Test accuracy (against the ground truth of the
sealed evaluation images) is computed with the same function but only ever reported.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Accuracy:
    value: float   # fraction correct
    low: float     # 95% Wilson interval
    high: float
    n: int         # images behind the estimate
    protocol: str | None = None   # how the images were held out, e.g. holdout_protocol(0.2, 0):
                                  # two validations compare only when their protocols are equal

    def to_dict(self) -> dict:
        return asdict(self)

    def with_protocol(self, protocol: str) -> "Accuracy":
        return Accuracy(self.value, self.low, self.high, self.n, protocol)

    def __str__(self) -> str:
        return (f"{100 * self.value:.1f}% (95% CI {100 * self.low:.1f}–{100 * self.high:.1f}%, "
                f"n={self.n})")


def holdout_protocol(val_fraction: float, seed: int) -> str:
    """The protocol name of `stratified_holdout(y, val_fraction, seed)`: the same name means the
    very same held-out labels (the split depends on the labels, the fraction and the seed only)."""
    return f"hold-out {100 * val_fraction:.0f}% of each class's labels (seed {seed})"


def folds_protocol(n_folds: int, seed: int) -> str:
    """The protocol name of `stratified_folds(y, n_folds, seed)`."""
    return f"{n_folds}-fold cross-validation (seed {seed})"


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval: sane at 0% / 100% and for tiny n, unlike the normal interval."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> Accuracy:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    correct, total = int((y_true == y_pred).sum()), int(len(y_true))
    low, high = wilson_interval(correct, total)
    return Accuracy(correct / total if total else float("nan"), low, high, total)


def stratified_holdout(y: np.ndarray, val_fraction: float = 0.2, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Split the labeled indices of y (-1 = unlabeled) into (train_idx, val_idx).

    Each class gives round(val_fraction * count) images to validation, but always keeps at
    least one for training; a class with a single label gives none."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y[y >= 0]):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = min(len(idx) - 1, int(round(val_fraction * len(idx))))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # noqa: E731
    return cat(train), cat(val)


def stratified_folds(y: np.ndarray, n_folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Labeled indices dealt into folds class by class, for cross-validation with few labels."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    offset = 0
    for c in np.unique(y[y >= 0]):
        for j, i in enumerate(rng.permutation(np.flatnonzero(y == c))):
            folds[(offset + j) % n_folds].append(int(i))
        offset += 1  # rotate the start so small classes do not all land in fold 0
    return [np.sort(np.array(f, np.int64)) for f in folds if f]
