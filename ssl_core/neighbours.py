"""k nearest neighbours: the one implementation every part of Latentlab uses.

One convention everywhere: Euclidean distance, nearest first, a point is never its own
neighbour, (indices int64, distances float32). Callers that want UMAP's convention (each point
its own first neighbour) prepend it themselves (latentmap/layout.py).

- `knn(x, k)`: the neighbours of every row of x among the others. Exact by blocked matrix
  products up to `exact_below` rows (and whenever `exact=True`: the label-propagation graphs,
  where every missed neighbour costs accuracy); above, an inverted-file index (below) that
  finds ~98% of the exact neighbours several times faster (the map's layout).
- `knn_query(queries, base, k)`: the neighbours of new points among fitted ones (exact). Small
  queries (a click on the map) run in numpy, so the Map page never imports torch (2 s).
- `nearest_neighbours(x, i, k)`: the k rows nearest to row i, for one clicked image.

The inverted-file index, and why: UMAP's usual kNN backend, pynndescent, spends ~26 s compiling
numba code in every new process on our 2-core machine before it searches 70,000 points in
~1.5 s, and an exact blocked search takes ~20 s there for 16-D latents, memory-bound on the
(B, N) distance blocks. The index does it in ~2.5 s on one core in plain torch:
  1. k-means (on a sample) splits the points into ~sqrt(N) cells;
  2. every query picks its own `n_probe` nearest cells (query-centric probing: a point near a
     cell border also searches across the border, which grouping queries by their own cell
     misses — that bias cut the map into k-means-shaped islands);
  3. each cell is compared in one matrix product with every query that probes it, keeping
     each query's k best per probed cell; the best k of those are the answer.
On 70,000 MNIST VAE latents (16-D), 8 probes of 265 cells find 98% of the exact 15 neighbours;
the UMAP map built from them scores as well as one built from exact neighbours.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from ssl_core.threads import one_thread_per_worker

if TYPE_CHECKING:
    import torch

EXACT_BELOW = 8192        # rows up to which `knn` is exact unless told otherwise
BLOCK_CELLS = 1 << 25     # distances an exact search computes at once (128 MB of float32)
_NUMPY_QUERY_CELLS = 4_000_000   # knn_query in numpy up to this many (query, base) pairs


def knn(x: np.ndarray, k: int, *, exact: bool | None = None, n_probe: int = 8,
        exact_below: int = EXACT_BELOW, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x (N, D) -> indices (N, k) int64 and distances (N, k) float32 of each row's k nearest
    other rows, nearest first. k is capped at N - 1. `exact`: None = exact up to `exact_below`
    rows, approximate (inverted-file index) above; True / False force it. Where the index
    finds fewer than k neighbours the missing ones are -1 at distance inf."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))           # (N, D)
    n = len(xt)
    k = max(0, min(k, n - 1))
    if k == 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    if exact is None:
        exact = n <= exact_below
    with torch.no_grad():
        idx, dist = (_exact_self(xt, k + 1) if exact
                     else _inverted_file(xt, k + 1, n_probe, seed))               # (N, k + 1)
    return _drop_self(idx, dist, k)


def knn_query(queries: np.ndarray, base: np.ndarray, k: int, chunk: int = 1024
              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN of new points among fitted ones: queries (M, D), base (N, D) -> indices (M, k)
    int64, distances (M, k) float32, nearest first. A query identical to a base point finds it
    first at distance 0 (it is not excluded: the query is not a row of base). Candidates come
    from the fast |q|^2 - 2 q.b + |b|^2 form; their distances are then computed directly, so
    they do not depend on how the products were blocked (an identical point is at exactly 0)."""
    queries = np.asarray(queries, dtype=np.float32)
    base = np.asarray(base, dtype=np.float32)
    k = min(k, len(base))
    if len(queries) == 0 or k == 0:
        return np.zeros((len(queries), k), np.int64), np.zeros((len(queries), k), np.float32)
    if len(queries) * len(base) <= _NUMPY_QUERY_CELLS:
        d2 = (base * base).sum(1)[None] - 2.0 * queries @ base.T                 # (M, N)
        idx = (np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(base)
               else np.broadcast_to(np.arange(len(base)), d2.shape))            # (M, k)
    else:
        import torch

        b = torch.from_numpy(np.ascontiguousarray(base))                        # (N, D)
        bsq = (b * b).sum(1)                                                     # (N,)
        parts, rows = [], max(1, min(chunk, BLOCK_CELLS // len(base)))          # bounded block
        with torch.no_grad():
            for s in range(0, len(queries), rows):
                q = torch.from_numpy(np.ascontiguousarray(queries[s:s + rows]))
                d2 = torch.addmm(bsq[None, :], q, b.T, alpha=-2.0)              # (B, N)
                parts.append(torch.topk(d2, k, dim=1, largest=False).indices.numpy())
        idx = np.concatenate(parts)                                              # (M, k)
    dist = np.empty(idx.shape, np.float32)
    for s in range(0, len(idx), chunk):              # (B, k, D) at a time: bounded memory
        diff = base[idx[s:s + chunk]] - queries[s:s + chunk, None, :]
        dist[s:s + chunk] = np.sqrt((diff * diff).sum(-1))                      # exact
    order = np.lexsort((idx, dist), axis=1)                                      # by distance, id
    return (np.take_along_axis(idx, order, 1).astype(np.int64),
            np.take_along_axis(dist, order, 1).astype(np.float32))


def nearest_neighbours(x: np.ndarray, i: int, k: int) -> np.ndarray:
    """Ids (k,) of the k rows of x (N, D) nearest to row i, nearest first (ties by id), without
    i itself. One query against 70,000 rows takes ~2 ms in numpy."""
    x = np.asarray(x, dtype=np.float32)
    k = min(k, len(x) - 1)
    if k <= 0:
        return np.zeros(0, np.int64)
    d2 = ((x - x[i]) ** 2).sum(1)                                              # (N,)
    d2[i] = np.inf
    near = np.argpartition(d2, k - 1)[:k]                                      # (k,) unordered
    return near[np.lexsort((near, d2[near]))].astype(np.int64)


def _drop_self(idx: "torch.Tensor", dist: "torch.Tensor", k: int) -> tuple[np.ndarray, np.ndarray]:
    """From k + 1 neighbours that usually include the point itself, keep k others: the point's
    own entry where present (duplicates of it may come first), else the farthest."""
    idx, dist = idx.numpy(), dist.numpy()
    n = len(idx)
    own = idx == np.arange(n)[:, None]                                        # (N, k + 1)
    drop = np.where(own.any(1), own.argmax(1), k)                             # (N,)
    keep = np.ones_like(own)
    keep[np.arange(n), drop] = False
    return (idx[keep].reshape(n, k).astype(np.int64),
            dist[keep].reshape(n, k).astype(np.float32))


def _exact_self(xt: "torch.Tensor", k: int) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Exact k nearest rows (self included, first) by blocked matrix products. (N, k) each.
    Blocks hold at most BLOCK_CELLS distances: 2,048 rows against 100,000 took 0.8 GB."""
    import torch

    chunk = max(64, min(2048, BLOCK_CELLS // max(1, len(xt))))
    sq = (xt * xt).sum(1)                                                      # (N,)
    idx, dist = [], []
    for s in range(0, len(xt), chunk):
        q = xt[s:s + chunk]                                                    # (B, D)
        d2 = torch.addmm(sq[None, :], q, xt.T, alpha=-2.0)                     # (B, N), no |q|^2
        d2[torch.arange(len(q)), torch.arange(s, s + len(q))] = -float("inf")  # self first
        v, i = torch.topk(d2, k, dim=1, largest=False)                         # (B, k)
        idx.append(i)
        dist.append((v + sq[s:s + len(q), None]).clamp_min(0).sqrt())
    dist = torch.cat(dist)
    dist[:, 0] = 0.0
    return torch.cat(idx), dist


def _kmeans(x: "torch.Tensor", n_clusters: int, iters: int = 10, sample: int = 20_000,
            seed: int = 0) -> "torch.Tensor":
    """Lloyd's k-means on a random sample of x (N, D) -> centroids (n_clusters, D)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    xs = x[torch.randperm(len(x), generator=gen)[:max(sample, n_clusters)]]     # (S, D)
    centroids = xs[torch.randperm(len(xs), generator=gen)[:n_clusters]].clone()  # (C, D)
    for _ in range(iters):
        nearest = torch.cdist(xs, centroids).argmin(1)                          # (S,)
        sums = torch.zeros_like(centroids).index_add_(0, nearest, xs)
        counts = torch.bincount(nearest, minlength=n_clusters).to(xs.dtype)
        filled = counts > 0                                  # empty cells keep their centroid
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


def _inverted_file(xt: "torch.Tensor", k: int, n_probe: int, seed: int, block: int = 4096
                   ) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Approximate k nearest rows (self included) with the inverted-file index described in the
    module docstring. (N, k) each; -1 / inf where the probed cells held fewer than k points."""
    import torch

    n = len(xt)
    n_cells = max(1, int(round(np.sqrt(n))))
    n_probe = min(n_probe, n_cells)
    with one_thread_per_worker() as workers:   # see threads.py: never changes a fixed app count
        centroids = _kmeans(xt, n_cells, seed=seed)
        probes = torch.cdist(xt, centroids).topk(n_probe, largest=False).indices  # (N, P)
        members = torch.argsort(probes[:, 0])       # points sorted by their own (nearest) cell
        starts, counts = _segments(probes[:, 0], n_cells)
        pairs = torch.argsort(probes.reshape(-1))    # (query, probe slot) pairs sorted by cell
        pair_starts, pair_counts = _segments(probes.reshape(-1), n_cells)
        sq = (xt * xt).sum(1)                                                   # (N,)
        best_d = torch.full((n, n_probe, k), float("inf"))                      # (N, P, k)
        best_i = torch.zeros((n, n_probe, k), dtype=torch.int64)

        def search(cell: int, s: int) -> None:  # one block of the queries probing one cell
            pts = members[starts[cell]:starts[cell] + counts[cell]]             # (M,)
            kk = min(k, len(pts))
            block_pairs = pairs[pair_starts[cell] + s:
                                pair_starts[cell] + min(s + block, pair_counts[cell])]
            query, slot = block_pairs // n_probe, block_pairs % n_probe         # (B,) each
            d2 = torch.addmm(sq[pts][None, :], xt[query], xt[pts].T, alpha=-2.0)  # (B, M)
            v, j = torch.topk(d2, kk, dim=1, largest=False)                     # (B, kk)
            best_d[query, slot, :kk] = v       # (query, slot) pairs are unique: no write races
            best_i[query, slot, :kk] = pts[j]

        tasks = [(cell, s) for cell in range(n_cells) if counts[cell]
                 for s in range(0, pair_counts[cell], block)]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda task: search(*task), tasks))
    v, j = torch.topk(best_d.reshape(n, -1), k, dim=1, largest=False)           # (N, k)
    idx = torch.gather(best_i.reshape(n, -1), 1, j)                             # (N, k)
    # Exact distances (the |q|^2 - 2 q.p + |p|^2 form loses precision near 0), re-sorted.
    dist = (xt[idx] - xt[:, None, :]).pow(2).sum(-1).sqrt()                     # (N, k)
    missing = torch.isinf(v)
    idx[missing], dist[missing] = -1, float("inf")
    dist, order = dist.sort(dim=1, stable=True)
    return torch.gather(idx, 1, order), dist


def _segments(labels: "torch.Tensor", n: int) -> tuple[list[int], list[int]]:
    """Start and length of each label's run in argsort(labels)."""
    import torch

    counts = torch.bincount(labels, minlength=n)
    return (torch.cumsum(counts, 0) - counts).tolist(), counts.tolist()
