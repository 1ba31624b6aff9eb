"""The latent map: UMAP (McInnes, Healy & Melville 2018) of the VAE latents to 2-D.

`compute_layout` runs UMAP's own steps with umap-learn's kernels — fuzzy neighbour graph
(smooth_knn_dist, compute_membership_strengths, fuzzy union), then the epochs of attraction /
negative-sampling repulsion — driven from here rather than through `umap.UMAP`, because:

* speed on 2 CPU cores: `umap.UMAP()` with defaults takes ~50-75 s on 70,000 x 16 latents.
  Most of that is numba compilation repeated in every process (pynndescent ~26 s, umap's
  uncached graph and epoch kernels ~6.5 s), then 200 epochs. Here the kNN comes from
  `ssl_core.neighbours.knn` (torch, ~2.5 s), umap's kernels are recompiled once with numba's on-disk cache
  (`$NUMBA_CACHE_DIR`), the init is PCA instead of a spectral embedding, and 100 epochs map
  MNIST as well as 200 (same 2-D kNN label agreement).
* progress and cancellation after every few epochs (a callback may raise to stop).
* warm start: a previous layout is the initial position, with fewer epochs and a lower
  learning rate, and the result is aligned back onto it (similarity Procrustes), so that after
  a VAE retrain clusters stay where the user saw them; appended images start at the mean
  position of their already-placed neighbours.

Output coordinates are float32, centred, in a fixed unit (10 of UMAP's): 99 % of the points
fall within radius ~1-1.7 (1.1 on MNIST). A warm-started layout keeps its previous frame.
umap-learn is pinned (0.5.12): the kernel signatures used below are private to it, and
tests/test_layout.py exercises them.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ssl_core.neighbours import knn
from ssl_core.progress import Progress, no_progress
from ssl_core.threads import torch_threads

_MIN_POINTS = 5  # below this a graph layout means nothing: the PCA projection is returned
_UNIT = 10.0     # UMAP's units per output unit: outputs stay in the units the epochs settle in


@dataclass(frozen=True)
class LayoutConfig:
    n_neighbors: int = 15            # UMAP's default: local structure without shattering clusters
    min_dist: float = 0.1            # UMAP's default: how tightly points may pack
    spread: float = 1.0
    n_epochs: int | None = None      # None: 500 to 10k points, then 5M/N, at least 100
    warm_epochs_fraction: float = 0.4  # a warm start runs this fraction of the cold epochs...
    learning_rate: float = 1.0
    warm_learning_rate: float = 0.05   # ...at this initial step size, so clusters move little
    negative_sample_rate: int = 5
    knn_probes: int = 8              # cells each point searches (neighbours.knn): 8 finds ~98 %
    seed: int = 0
    parallel: bool = True            # Hogwild epochs on every core: ~2x faster, not reproducible

    def epochs(self, n: int, warm: bool) -> int:
        cold = self.n_epochs or int(np.clip(5_000_000 // max(n, 1), 100, 500))
        return max(10, int(round(cold * self.warm_epochs_fraction))) if warm else cold


def compute_layout(latents: np.ndarray, config: LayoutConfig = LayoutConfig(),
                   init: np.ndarray | None = None, progress: Progress | None = None) -> np.ndarray:
    """latents (N, d) -> positions (N, 2) float32.

    `init` (M, 2), M <= N: the previous layout of the first M points (rows are image ids, and
    images are only ever appended); it is ignored when M > N or it is not finite.
    """
    progress = progress or no_progress
    x = np.ascontiguousarray(latents, dtype=np.float32)                        # (N, d)
    n = len(x)
    warm = (init is not None and 0 < len(init) <= n and np.shape(init)[1:] == (2,)
            and bool(np.isfinite(init).all()))
    if n < _MIN_POINTS:
        xy = _pca2(x) if n else np.zeros((0, 2), np.float32)
        return xy / (float(np.abs(xy).max(initial=0.0)) or 1.0)
    with _all_cores():
        return _layout(x, config, init if warm else None, progress)


def _layout(x: np.ndarray, config: LayoutConfig, init: np.ndarray | None,
            progress: Progress) -> np.ndarray:
    """compute_layout's steps, for x (N, d) with N >= _MIN_POINTS; init already checked."""
    n, warm = len(x), init is not None
    progress(0.0, f"finding the neighbours of {n:,} points")
    idx, dist = _with_self(*knn(x, config.n_neighbors - 1, n_probe=config.knn_probes,
                                seed=config.seed))                           # (N, k)
    progress(0.15, "building the neighbour graph")
    graph = _fuzzy_graph(idx, dist)                                             # (N, N)
    rng = np.random.RandomState(config.seed)
    if warm:
        old = np.asarray(init, np.float32)
        start = _place_new(old, idx, n) * _UNIT   # back in UMAP's units, where it settled
    else:
        start = _to_box(_pca2(x), 10.0)  # UMAP's own initial range
    start += rng.normal(scale=1e-3, size=start.shape).astype(np.float32)  # splits duplicates
    xy = _optimise(start, graph, config.epochs(n, warm),
                   config.warm_learning_rate if warm else config.learning_rate, config, rng,
                   lambda f, msg: progress(0.2 + 0.8 * f, msg))
    out = _align(xy, old) if warm else _normalise(xy)
    progress(1.0, "map done")
    return out.astype(np.float32)


def _with_self(idx: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's kNN convention: each point is its own first neighbour, at distance 0."""
    n = len(idx)
    return (np.hstack([np.arange(n, dtype=np.int64)[:, None], idx]),
            np.hstack([np.zeros((n, 1), np.float32), dist]))


def layout_quality(xy: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each labelled point's k nearest 2-D neighbours (among labelled points)
    that share its label: 1.0 = every class a clean island; chance = sum of squared class
    shares (0.1 for ten balanced classes). Labels < 0 are left out."""
    from sklearn.neighbors import KDTree

    keep = np.asarray(labels) >= 0
    pts, lab = np.asarray(xy, np.float64)[keep], np.asarray(labels)[keep]
    k = min(k, len(pts) - 1)
    if k < 1:
        return float("nan")
    nb = KDTree(pts).query(pts, k=k + 1, return_distance=False)[:, 1:]        # (L, k)
    return float((lab[nb] == lab[:, None]).mean())


# -- UMAP's steps ------------------------------------------------------------------------

def _fuzzy_graph(idx: np.ndarray, dist: np.ndarray) -> sp.coo_matrix:
    """UMAP's fuzzy simplicial set: per-point membership strengths from the kNN distances,
    symmetrised by fuzzy union (a + b - ab). (N, N) sparse."""
    n, k = idx.shape
    dist = np.ascontiguousarray(dist, dtype=np.float32)
    sigmas, rhos = _kernel("smooth_knn_dist")(dist, float(k), 64, 1.0, 1.0)
    rows, cols, vals, _ = _kernel("compute_membership_strengths")(idx, dist, sigmas, rhos,
                                                                  False, False)
    g = sp.coo_matrix((vals, (rows, cols)), shape=(n, n))
    g.eliminate_zeros()
    t = g.transpose()
    g = (g + t - g.multiply(t)).tocoo()
    g.eliminate_zeros()
    return g


def _optimise(xy: np.ndarray, graph: sp.coo_matrix, n_epochs: int, alpha0: float,
              cfg: LayoutConfig, rng: np.random.RandomState, progress: Progress) -> np.ndarray:
    """UMAP's stochastic gradient epochs (umap.layouts.optimize_layout_euclidean, densMAP off)."""
    from umap.umap_ import find_ab_params, make_epochs_per_sample

    graph = graph.copy()
    graph.sum_duplicates()
    graph.data[graph.data < graph.data.max() / float(max(n_epochs, 11))] = 0.0  # < 1 sample
    graph.eliminate_zeros()
    head, tail = graph.row, graph.col                                          # (E,) each
    per_sample = make_epochs_per_sample(graph.data, n_epochs)                  # (E,) float64
    per_negative = per_sample / cfg.negative_sample_rate
    next_negative, next_sample = per_negative.copy(), per_sample.copy()
    a, b = find_ab_params(cfg.spread, cfg.min_dist)
    xy = np.ascontiguousarray(xy, dtype=np.float32)                            # (N, 2)
    n = len(xy)
    rng_state = rng.randint(np.iinfo(np.int32).min + 1, np.iinfo(np.int32).max - 1, 3)
    rng_per_point = (np.full((n, 3), rng_state, dtype=np.int64)
                     + xy[:, 0].astype(np.float64).view(np.int64).reshape(-1, 1))  # (N, 3)
    zeros = np.zeros(1, np.float32)
    epoch_fn = _kernel("_optimize_layout_euclidean_single_epoch", parallel=cfg.parallel)
    report_every = max(1, n_epochs // 20)
    alpha = alpha0
    last_good = xy.copy()                                                      # (N, 2)
    for epoch in range(n_epochs):
        epoch_fn(xy, xy, head, tail, n, per_sample, a, b, rng_per_point, 1.0, 2, True, alpha,
                 per_negative, next_negative, next_sample, epoch, False, zeros, zeros, 0, 0, 0,
                 0, zeros, zeros, 0)
        alpha = alpha0 * (1.0 - epoch / n_epochs)
        if epoch % report_every == 0 or epoch == n_epochs - 1:
            _restore_non_finite(xy, last_good, rng)
            progress(epoch / n_epochs, f"layout epoch {epoch} / {n_epochs}")
    return xy


def _restore_non_finite(xy: np.ndarray, last_good: np.ndarray,
                        rng: np.random.RandomState) -> None:
    """Put rows of xy (N, 2) that became NaN/inf back where they were at the last check, nudged
    so they do not meet the same fate, then make xy the new last good state (both in place).

    A NaN spreads along graph edges through attraction, and a map with NaN rows cannot be
    drawn, so the epochs repair rather than fail. Where a row has no finite last position it
    goes to the mean of the finite rows. (The NaN maps CI saw twice came from `_place_new`
    reading uninitialised memory, now fixed; umap's epoch kernel is compiled with fastmath,
    so this stays as a guard.)"""
    bad = ~np.isfinite(xy).all(1)                                              # (N,)
    if bad.any():
        fallback = np.where(np.isfinite(last_good[bad]), last_good[bad],
                            np.nanmean(np.where(bad[:, None], np.nan, xy), 0))  # (B, 2)
        xy[bad] = np.nan_to_num(fallback) + rng.normal(scale=1e-3, size=(int(bad.sum()), 2))
    last_good[:] = xy


@functools.cache
def _kernel(name: str, parallel: bool = True):
    """One of umap-learn's numba kernels, recompiled with cache=True.

    umap compiles these without numba's on-disk cache, which costs ~6.5 s in every new
    process (each job runs in one); with the cache, later processes load them in ~0.1 s.
    Falls back to umap's own function when no cache folder is writable."""
    import numba
    from umap import layouts, umap_

    if name == "_optimize_layout_euclidean_single_epoch":
        original = (layouts._nb_optimize_layout_euclidean_single_epoch_parallel if parallel
                    else layouts._nb_optimize_layout_euclidean_single_epoch)
    else:
        original = getattr(umap_, name)
    options = {k: v for k, v in original.targetoptions.items() if k in ("parallel", "fastmath")}
    try:
        return numba.njit(cache=True, locals=original.locals, **options)(original.py_func)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return original


@contextmanager
def _all_cores() -> Iterator[None]:
    """Every available core for torch (kNN) and numba (epochs), capped by
    $LATENTLAB_NUM_THREADS, for this call only (both counts are restored)."""
    import numba

    before = numba.get_num_threads()
    with torch_threads() as n:
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
        try:
            yield
        finally:
            numba.set_num_threads(before)


# -- initial positions and output frame ----------------------------------------------------

def _pca2(x: np.ndarray) -> np.ndarray:
    """(N, d) -> (N, 2) projection on the two main axes, signs fixed (deterministic)."""
    xc = (x - x.mean(0)).astype(np.float64)
    if x.shape[1] < 2:
        xc = np.hstack([xc, np.zeros((len(x), 2 - x.shape[1]))])
    _, vecs = np.linalg.eigh(xc.T @ xc)
    axes = vecs[:, ::-1][:, :2]                                                # (d, 2)
    axes *= np.sign(axes[np.abs(axes).argmax(0), [0, 1]])
    return (xc @ axes).astype(np.float32)


def _place_new(old: np.ndarray, idx: np.ndarray, n: int, sweeps: int = 10) -> np.ndarray:
    """Positions (N, 2): the M old ones, then each new point at the mean of its placed kNN
    (sweeps let chains of new points reach old ones); the rest at the old centroid."""
    m = len(old)
    xy = np.full((n, 2), np.nan, np.float32)  # NaN = not placed yet; never read (masked below)
    xy[:m] = old
    placed = np.arange(n) < m
    for _ in range(sweeps):
        todo = np.flatnonzero(~placed)
        if not len(todo):
            break
        nb = np.maximum(idx[todo], 0)                                           # (T, k)
        ok = (idx[todo] >= 0) & placed[nb]                                      # (T, k)
        has = ok.any(1)
        if not has.any():
            break
        okh = ok[has][..., None]                                                # (H, k, 1)
        # np.where, not a 0/1 weight: 0 * an unplaced row's NaN is NaN (this read np.empty's
        # garbage once and CI got a NaN map)
        total = np.where(okh, xy[nb[has]], 0.0).sum(1)                          # (H, 2)
        xy[todo[has]] = total / okh.sum(1)
        placed[todo[has]] = True
    xy[~placed] = old.mean(0)
    return xy


def _to_box(xy: np.ndarray, size: float) -> np.ndarray:
    """Shift and scale uniformly (aspect kept) into [0, size]^2, UMAP's working range."""
    lo = xy.min(0)
    extent = float((xy.max(0) - lo).max()) or 1.0
    return ((xy - lo) * (size / extent)).astype(np.float32)


def _normalise(xy: np.ndarray) -> np.ndarray:
    """Centre on the mean; one output unit = 10 of UMAP's (99 % of the points then lie within
    radius ~1-1.7). A fixed unit, not a fixed radius: a warm start must put the previous
    layout back at the scale the epochs settle at, or every point moves as it re-expands."""
    return ((xy - xy.mean(0)) / _UNIT).astype(np.float32)


def _align(xy: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Map xy (N, 2) by the similarity (scale, rotation, shift; no mirror) that best fits its
    first M rows onto ref (M, 2) in least squares (Umeyama 1991)."""
    m = len(ref)
    mx, mr = xy[:m].mean(0), ref.mean(0)
    X, R = (xy[:m] - mx).astype(np.float64), (ref - mr).astype(np.float64)
    if m < 3 or (X ** 2).sum() < 1e-12:       # nothing to fit a rotation and scale to
        return ((xy - mx) / _UNIT + mr).astype(np.float32)
    u, s, vt = np.linalg.svd(X.T @ R)
    d = np.array([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = (u * d) @ vt                                                         # (2, 2)
    scale = (s * d).sum() / max((X ** 2).sum(), 1e-12)
    return ((xy - mx) @ rot * scale + mr).astype(np.float32)
