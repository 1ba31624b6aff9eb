"""Which images to label next: active-learning suggestions for the label queue.

Three strategies, all returning image ids in the order they should be shown (best first) and
never an image that is already labeled or excluded:

- "diversity": cover the latent space. Works before any model exists. Plain k-center greedy
  picks the point farthest from everything covered so far, which on real data is an outlier
  (a blank scan, a corrupt image), so it is run on a cleaned pool and its picks are moved back
  to typical images:
    1. pool: at most max(POOL_SIZE, 2n) random available images (seeded), so the cost does
       not grow with the collection (70,000 x 16 latents, n=50: tens of milliseconds);
    2. density filter: drop the OUTLIER_FRACTION of the pool whose k-th nearest pool neighbour
       is farthest away (isolated points);
    3. k-center greedy on what is left, seeded with the labeled images (the space they cover
       counts as covered), or with the densest pool point when nothing is labeled yet;
    4. one Lloyd step: each pick's region (the pool points nearer to it than to any other pick
       or labeled image) gets its mean, and the pick becomes the region's member nearest that
       mean: a medoid-like, typical image of the region instead of its edge.
  Trade-off: a cluster smaller than about 1/POOL_SIZE of the collection may miss the pool.
- "uncertainty": the model's least confident images, by `method="margin"` (smallest gap
  between the top two class probabilities) or `"entropy"`. The most uncertain images tend to
  sit in one stretch of one decision boundary, so the UNCERTAIN_FACTOR * n most uncertain are
  taken and k-center greedy (seeded with the labeled images, starting from the single most
  uncertain) spreads the n picks over them.
- "random": a seeded uniform sample, the baseline the other two must beat.
"""
from __future__ import annotations

import numpy as np

STRATEGIES = ("diversity", "uncertainty", "random")
METHODS = ("margin", "entropy")
POOL_SIZE = 3000           # candidate images for "diversity"
OUTLIER_FRACTION = 0.1     # share of the pool dropped as isolated before k-center
DENSITY_K = 5              # neighbour whose distance measures isolation
UNCERTAIN_FACTOR = 4       # "uncertainty" spreads n picks over this many times n candidates
MAX_SEEDS = 20_000         # labeled images used as coverage seeds (a random subset beyond this)
_CHUNK = 1024              # rows per block of pairwise distances (~ 1024 x 20,000 floats)


def suggest(strategy: str, n: int, latents: np.ndarray, labeled: np.ndarray,
            proba: np.ndarray | None = None, seed: int = 0, exclude: np.ndarray | None = None,
            *, method: str = "margin") -> np.ndarray:
    """Up to n image ids (row indices of `latents`) to label next, best first. (M,) int64

    latents (N, d): the latent space; labeled (N,) bool: images that already have a label;
    proba (N, K): class probabilities, required by "uncertainty"; exclude: ids, or an (N,)
    bool mask, of images never to suggest (skipped, already queued). When n is at least the
    number of available images, all of them are returned."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 2:
        raise ValueError(f"latents must have shape (N, d), got {latents.shape}")
    N = len(latents)
    labeled = np.asarray(labeled, dtype=bool)
    if labeled.shape != (N,):
        raise ValueError(f"labeled must have shape ({N},), got {labeled.shape}")
    available = ~labeled                                          # (N,) bool
    if exclude is not None:
        exclude = np.asarray(exclude)
        if exclude.dtype == bool:
            if exclude.shape != (N,):
                raise ValueError(f"an exclude mask must have shape ({N},), got {exclude.shape}")
            available &= ~exclude
        else:
            ids = exclude.astype(np.int64).ravel()
            available[ids[(ids >= 0) & (ids < N)]] = False
    avail = np.flatnonzero(available)                             # (A,) int64
    n = min(int(n), len(avail))
    if n <= 0:
        return np.empty(0, np.int64)
    rng = np.random.default_rng(seed)
    if strategy == "random":
        return rng.permutation(avail)[:n].astype(np.int64)
    if strategy == "uncertainty":
        return _uncertainty(n, latents, labeled, avail, proba, method, rng)
    if n == len(avail):
        return avail.astype(np.int64)
    return _diversity(n, latents, labeled, avail, rng)


def uncertainty_scores(proba: np.ndarray, method: str = "margin") -> np.ndarray:
    """Higher = less confident. margin: 1 - (p_top1 - p_top2); entropy: -sum p log p. (N,)"""
    if method not in METHODS:
        raise ValueError(f"unknown uncertainty method {method!r}: choose margin or entropy")
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)     # (N, K)
    if method == "entropy":
        return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
    if p.shape[1] == 1:
        return 1.0 - p[:, 0]
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]        # (N, 2) second, first
    return 1.0 - (top2[:, 1] - top2[:, 0])


def _uncertainty(n, latents, labeled, avail, proba, method, rng) -> np.ndarray:
    if proba is None:
        raise ValueError("the 'uncertainty' strategy needs class probabilities (proba) from a "
                         "trained model: train a model first, or use 'diversity'")
    proba = np.asarray(proba)
    if proba.ndim != 2 or len(proba) != len(latents):
        raise ValueError(f"proba must have shape ({len(latents)}, K), got {proba.shape}")
    score = uncertainty_scores(proba[avail], method)               # (A,)
    m = min(len(avail), UNCERTAIN_FACTOR * n)
    top = np.argsort(-score, kind="stable")[:m]                     # most uncertain first
    cand = avail[top]                                               # (m,) image ids
    covered = _seed_distances(latents[cand], latents, labeled, rng)  # (m,)
    order = _k_center(latents[cand], n, covered, first=0)
    return cand[order].astype(np.int64)


def _diversity(n, latents, labeled, avail, rng) -> np.ndarray:
    size = max(POOL_SIZE, 2 * n)
    pool = avail if len(avail) <= size else np.sort(rng.choice(avail, size, replace=False))
    z = latents[pool]                                               # (P, d)
    radius = _kth_neighbour_distance(z, min(DENSITY_K, len(z) - 1))  # (P,)
    n_keep = max(n, int(np.ceil(len(z) * (1 - OUTLIER_FRACTION))))
    keep = np.sort(np.argsort(radius, kind="stable")[:n_keep])
    pool, z, radius = pool[keep], z[keep], radius[keep]
    covered = _seed_distances(z, latents, labeled, rng)             # (P,) inf when unlabeled
    first = None if np.isfinite(covered).any() else int(np.argmin(radius))
    centres = _k_center(z, n, covered, first=first)                 # (n,) into pool
    # One Lloyd step, then snap to the member nearest the mean: a typical image, not an edge.
    d = _sq_dist(z, z[centres])                                     # (P, n)
    owner = np.argmin(d, axis=1)
    owned = d[np.arange(len(z)), owner] < covered                   # nearer a pick than a label
    owned[centres] = True
    owner[centres] = np.arange(n)
    picks = np.empty(n, dtype=np.int64)
    for j in range(n):
        members = np.flatnonzero(owned & (owner == j))
        mean = z[members].mean(axis=0, keepdims=True)
        picks[j] = members[np.argmin(_sq_dist(z[members], mean)[:, 0])]
    return pool[picks].astype(np.int64)


def _k_center(z: np.ndarray, n: int, covered: np.ndarray, first: int | None) -> np.ndarray:
    """Greedy k-center: n row indices of z, each the row farthest from everything chosen or
    covered so far. `covered` (P,) is each row's squared distance to the seeds (inf: none);
    `first` forces the first pick."""
    dist = covered.astype(np.float64)                               # (P,) a copy
    chosen: list[int] = []
    for _ in range(n):
        i = first if (first is not None and not chosen) else int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, _sq_dist(z, z[i:i + 1])[:, 0])
        dist[chosen] = -1.0  # never twice, even among duplicates
    return np.asarray(chosen, dtype=np.int64)


def _seed_distances(z: np.ndarray, latents: np.ndarray, labeled: np.ndarray, rng
                    ) -> np.ndarray:
    """Squared distance from each row of z (P, d) to the nearest labeled image; inf when none
    is labeled. Beyond MAX_SEEDS labeled images a random subset stands in for them. (P,)"""
    seeds = np.flatnonzero(labeled)
    if len(seeds) == 0:
        return np.full(len(z), np.inf)
    if len(seeds) > MAX_SEEDS:
        seeds = rng.choice(seeds, MAX_SEEDS, replace=False)
    s = latents[seeds]
    return np.concatenate([_sq_dist(z[i:i + _CHUNK], s).min(axis=1)
                           for i in range(0, len(z), _CHUNK)])


def _kth_neighbour_distance(z: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row (k >= 1). (P,)"""
    if k < 1:
        return np.zeros(len(z), dtype=np.float32)
    out = np.empty(len(z), dtype=np.float32)
    for i in range(0, len(z), _CHUNK):
        d = _sq_dist(z[i:i + _CHUNK], z)                            # (c, P), self at 0
        out[i:i + _CHUNK] = np.partition(d, k, axis=1)[:, k]
    return out


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows, (len(a), len(b)) float32, never negative.
    float32 and in-place: this is the hot loop, and ranking needs no more precision."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    d = a @ b.T
    d *= -2.0
    d += np.einsum("ij,ij->i", a, a)[:, None]
    d += np.einsum("ij,ij->i", b, b)[None, :]
    return np.maximum(d, 0.0, out=d)
