"""Outliers: the images least like the rest of the collection, ranked.

`outlier_space(images, features)` gives one row per image: the project's pretrained features
(L2-normalised, PCA-projected to 256 dims) for photos; for pixel projects the pixels themselves
in [0, 1] (area-averaged down to at most 784 values per image), read in batches.
`outlier_scores(space)` scores every row, higher = odder; `find_outliers` ranks them.

The score, by measurement (benchmarks/quality_duplicates.py --outlier-methods: 200
Fashion-MNIST images mixed into the 70,000 MNIST images, the share of them in the top 400 of
the ranking; chosen on tuning seed 100, not the reported seeds 0-2): "residual", the distance of
each row from the subspace of the first RESIDUAL_DIMS principal components of the collection
(0.82 on seed 100; on the reported seeds 0-2: 0.90 / 0.85 / 0.915, ~2 s with outlier_space).
It asks "is this image made of the same patterns as the collection?", which a foreign image
fails as a whole. The kNN scores in the same pixel space ranked far lower:
"knn", the mean distance to the k = 10 nearest rows, 0.19; "relative", that divided by the
neighbours' own mean kNN distances (as in LOF), 0.02. Likely why: a foreign group of 200 has
~20 look-alikes per class, so its members are each other's neighbours, while bold or unusual
digits sit far from theirs. Both remain available (`method=`): an isolated odd image (noise)
is what they do find. In tuning runs 100 components ranked better than 50 and about
as well as 150.
The subspace is cross-fitted: the rows are halved at random and each half is measured against
a PCA of (a sample of) the other half, so that a few strong outliers cannot each take a
component of their own and hide (5 noise images among 1,800 digits did, with one PCA fitted on
all rows: tests/test_quality_outliers.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("residual", "knn", "relative")
RESIDUAL_DIMS = 100       # principal components that count as "the collection's patterns"
PIXEL_VALUES = 784        # pixel spaces are area-averaged down to at most this many values
FEATURE_DIMS = 256        # feature spaces are PCA-projected to this many dims
BATCH = 4096
_FIT_ROWS = 10_000        # a PCA is fitted on at most this many rows (a seeded sample)


@dataclass(frozen=True)
class OutlierReport:
    ids: list[int]          # image ids, oddest first (the top `len(ids)`)
    scores: list[float]     # their scores, same order
    method: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"ids": self.ids, "scores": self.scores, "method": self.method,
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OutlierReport":
        return cls([int(i) for i in d["ids"]], [float(s) for s in d["scores"]],
                   str(d.get("method", "residual")), float(d.get("seconds", 0.0)))


def _pca(rows: np.ndarray, n_components: int, seed: int, among: np.ndarray | None = None):
    """A PCA of at most _FIT_ROWS seeded rows of `rows` (N, D) (of the ids `among`, default
    all), or None when there is no room for one (n_components >= D or too few rows)."""
    from sklearn.decomposition import PCA

    among = np.arange(len(rows)) if among is None else among
    if len(among) < 2:
        return None
    pick = np.sort(np.random.default_rng(seed).choice(among, min(len(among), _FIT_ROWS),
                                                      replace=False))
    n_components = min(n_components, len(pick) - 1)
    if n_components < 1 or n_components >= rows.shape[1]:
        return None
    return PCA(n_components, random_state=seed, svd_solver="randomized").fit(
        np.asarray(rows[pick], np.float32))


def outlier_space(images: np.ndarray, features: np.ndarray | None = None, *, seed: int = 0
                  ) -> np.ndarray:
    """(N, D) float32 rows to score: features (N, F) -> L2-normalised, PCA-projected to
    FEATURE_DIMS; else images (N, H, W, C) uint8 -> pixels / 255, area-averaged to at most
    PIXEL_VALUES values. Both read BATCH rows at a time (a memmap is never copied whole)."""
    if features is not None:
        def unit(rows):
            z = np.asarray(rows, np.float32)
            return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        pick = np.sort(np.random.default_rng(seed).choice(
            len(features), min(len(features), _FIT_ROWS), replace=False))
        pca = (_pca(unit(features[pick]), FEATURE_DIMS, seed)
               if features.shape[1] > FEATURE_DIMS else None)
        return _batched(len(features), lambda s: (
            unit(features[s:s + BATCH]) if pca is None
            else pca.transform(unit(features[s:s + BATCH]))))
    n, h, w, c = images.shape
    f = min(1.0, float(np.sqrt(PIXEL_VALUES / (h * w * c))))
    size = (max(1, int(h * f)), max(1, int(w * f)))

    def pixels(s: int) -> np.ndarray:
        x = np.asarray(images[s:s + BATCH], np.float32) / 255.0                 # (B, H, W, C)
        if f < 1.0:
            import torch
            import torch.nn.functional as F

            t = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=size, mode="area")
            x = t.permute(0, 2, 3, 1).numpy()
        return x.reshape(len(x), -1)
    return _batched(n, pixels)


def _batched(n: int, rows_at) -> np.ndarray:
    """(n, D) float32 filled from rows_at(start) -> (B, D), one batch at a time in place."""
    out = np.zeros((0, 1), np.float32)
    for s in range(0, n, BATCH):
        rows = rows_at(s)
        if s == 0:
            out = np.empty((n, rows.shape[1]), np.float32)
        out[s:s + len(rows)] = rows
    return out


def outlier_scores(space: np.ndarray, k: int = 10, *, method: str = "residual", seed: int = 0
                   ) -> np.ndarray:
    """space (N, D) -> (N,) float32, higher = odder (module docstring). k: neighbours for the
    kNN methods."""
    if method not in METHODS:
        raise ValueError(f"unknown outlier method {method!r}: one of {METHODS}")
    n = len(space)
    if n < 2:
        return np.zeros(n, np.float32)
    if method == "residual":
        out = _crossfit_residuals(space, seed)
        if out is not None:
            return out
        method = "knn"          # too few rows or dims for a subspace: distances instead
    from ssl_core.neighbours import knn

    idx, dist = knn(np.asarray(space, np.float32), k, seed=seed)                  # (N, k)
    dist = np.where(np.isfinite(dist), dist, np.nan)
    mean = np.nan_to_num(np.nanmean(dist, axis=1), nan=0.0)                      # (N,)
    if method == "knn":
        return mean.astype(np.float32)
    around = mean[np.maximum(idx, 0)].mean(1)                                    # (N,)
    return (mean / np.maximum(around, 1e-12)).astype(np.float32)


def _crossfit_residuals(space: np.ndarray, seed: int) -> np.ndarray | None:
    """(N,) distance of each row from the principal subspace of the other half's rows (a
    seeded random halving): an outlier never shapes the subspace it is measured against, which
    a PCA fitted on all rows lets a few strong outliers do (each takes a component)."""
    half = np.random.default_rng(seed).random(len(space)) < 0.5                   # (N,)
    out = np.empty(len(space), np.float32)
    for side in (True, False):
        pca = _pca(space, RESIDUAL_DIMS, seed, np.flatnonzero(half == side))
        if pca is None:
            return None
        for part in np.array_split(np.flatnonzero(half != side),
                                   max(1, int(np.ceil(len(space) / BATCH)))):
            x = np.asarray(space[part], np.float32)                             # (B, D)
            out[part] = np.linalg.norm(x - pca.inverse_transform(pca.transform(x)), axis=1)
    return out


def find_outliers(space: np.ndarray, top: int | None = 1000, *, k: int = 10,
                  method: str = "residual", seed: int = 0) -> OutlierReport:
    """The `top` oddest rows of space (N, D) (None: all), oddest first; ties by id."""
    start = time.perf_counter()
    scores = outlier_scores(space, k, method=method, seed=seed)                  # (N,)
    order = np.lexsort((np.arange(len(scores)), -scores))
    order = order if top is None else order[:top]
    return OutlierReport([int(i) for i in order], [round(float(scores[i]), 5) for i in order],
                         method, round(time.perf_counter() - start, 2))
