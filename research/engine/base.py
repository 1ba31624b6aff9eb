"""Shared estimator plumbing: input validation, timing, labeled-validation splits."""
from __future__ import annotations

import time

import numpy as np

from .features import pixel_scale, to_float


class Timer:
    """Wall-clock budget tracker; `left()` is +inf when no budget is set."""

    def __init__(self, budget_s: float | None):
        self.t0 = time.time()
        self.budget_s = budget_s

    def elapsed(self) -> float:
        return time.time() - self.t0

    def left(self) -> float:
        return float("inf") if self.budget_s is None else self.budget_s - self.elapsed()


def check_images(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 3:
        X = X[..., None]
    if X.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {X.shape}")
    return X


def check_targets(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y).astype(np.int64).ravel()
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}")
    if (y >= 0).sum() == 0:
        raise ValueError("no labeled examples (y >= 0)")
    return y


class ImageSSLBase:
    """Common fit-time preprocessing for all semi-supervised image estimators."""

    def _prepare(self, X: np.ndarray, y: np.ndarray):
        X = check_images(X)
        y = check_targets(y, len(X))
        self.classes_ = np.unique(y[y >= 0])  # original label values
        self.n_classes_ = len(self.classes_)
        self.scale_ = pixel_scale(X)
        self.input_shape_ = X.shape[1:]
        yi = np.full(len(y), -1, dtype=np.int64)
        yi[y >= 0] = np.searchsorted(self.classes_, y[y >= 0])  # 0..K-1
        return to_float(X, self.scale_), yi  # (N, C, H, W) float32, (N,)

    def _to_float(self, X: np.ndarray) -> np.ndarray:
        return to_float(check_images(X), self.scale_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))


def holdout_split(labeled: np.ndarray, y: np.ndarray, frac: float, rng: np.random.RandomState):
    """Per-class split of labeled indices into (train, val); val gets round(frac * n_c) >= 1 each."""
    tr, va = [], []
    for c in np.unique(y[labeled]):
        idx = rng.permutation(labeled[y[labeled] == c])
        k = max(1, int(round(frac * len(idx)))) if len(idx) > 1 else 0
        va.append(idx[:k])
        tr.append(idx[k:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))
