"""kNN graph construction and graph-based label propagation (Poisson / Laplace / spreading)."""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def knn(x: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean kNN by blocked matmul. x (N, D) float32 -> (idx, dist), each (N, k), self excluded."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # (N, D)
    sq = (xt * xt).sum(1)  # (N,)
    n = xt.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, n, chunk):
            q = xt[s:s + chunk]  # (B, D)
            d2 = torch.addmm(sq[None, :], q, xt.T, alpha=-2.0)  # (B, N) = |x|^2 - 2 q.x (|q|^2 added later)
            d2[torch.arange(q.shape[0]), torch.arange(s, s + q.shape[0])] = float("inf")
            v, i = torch.topk(d2, k, dim=1, largest=False)  # (B, k)
            idx[s:s + chunk] = i.numpy()
            dist[s:s + chunk] = (v + sq[s:s + chunk, None]).clamp_min(0).sqrt().numpy()
    return idx, dist


def knn_graph(idx: np.ndarray, dist: np.ndarray, k_scale: int | None = None) -> sp.csr_matrix:
    """Symmetric self-tuning Gaussian weights w_ij = exp(-4 d_ij^2 / (s_i s_j)), s_i = dist to k_scale-th nbr."""
    n, k = idx.shape
    ks = min(k, k_scale or k) - 1
    s = dist[:, ks] + 1e-8  # (N,)
    w = np.exp(-4.0 * dist ** 2 / (s[:, None] * s[idx]))  # (N, k)
    W = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    return ((W + W.T) * 0.5).tocsr()


def _torch_csr(M: sp.csr_matrix) -> torch.Tensor:
    M = M.tocsr().astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(torch.from_numpy(M.indptr.astype(np.int64)),
                                       torch.from_numpy(M.indices.astype(np.int64)),
                                       torch.from_numpy(M.data), size=M.shape)


def poisson_learning(W: sp.csr_matrix, labeled: np.ndarray, y: np.ndarray, n_classes: int,
                     max_iter: int = 500, tol: float = 1e-3, balance: bool = True) -> np.ndarray:
    """Poisson learning (Calder et al. 2020). Returns scores (N, C); argmax = prediction.

    Solves L u = sum_j (onehot_j - mean onehot) delta_{x_j} by the Jacobi-type iteration
    u <- u + D^-1 (b - L u) = P u + D^-1 b, stopped once the random walk started at the
    labels has mixed (L1 distance to the stationary distribution < tol) or after max_iter.
    """
    n = W.shape[0]
    d = np.asarray(W.sum(1)).ravel()  # (N,)
    onehot = np.eye(n_classes, dtype=np.float32)[y]  # (L, C)
    b = np.zeros((n, n_classes), dtype=np.float32)
    np.add.at(b, labeled, onehot - onehot.mean(0))
    Pm = sp.diags(1.0 / d) @ W  # row-stochastic random-walk matrix
    P, Pt = _torch_csr(Pm), _torch_csr(Pm.T)
    db = torch.from_numpy(b / d[:, None].astype(np.float32))  # (N, C)
    u = torch.zeros(n, n_classes)  # (N, C)
    p = torch.zeros(n, 1); p[torch.from_numpy(labeled)] = 1.0 / len(labeled)  # walk distribution
    stationary = torch.from_numpy((d / d.sum()).astype(np.float32))[:, None]
    for it in range(max_iter):
        u = P @ u + db
        if it % 10 == 0:
            p_next = p
            for _ in range(10):
                p_next = Pt @ p_next
            p = p_next
            if (p - stationary).abs().sum() < tol:
                break
    u = u.numpy().astype(np.float64)
    if balance:  # rescale so that predicted class masses follow the label prior
        prior = onehot.mean(0)
        u = u * (prior / np.maximum(np.abs(u).mean(0), 1e-12))
    return u


def laplace_learning(W: sp.csr_matrix, labeled: np.ndarray, y: np.ndarray, n_classes: int,
                     n_iter: int = 500) -> np.ndarray:
    """Harmonic extension (Zhu et al. 2003) by clamped random-walk iteration. (N, C) scores."""
    d = np.asarray(W.sum(1)).ravel()
    P = sp.diags(1.0 / d) @ W
    onehot = np.eye(n_classes)[y]
    u = np.zeros((W.shape[0], n_classes)); u[labeled] = onehot
    for _ in range(n_iter):
        u = P @ u
        u[labeled] = onehot
    return u


def label_spreading(W: sp.csr_matrix, labeled: np.ndarray, y: np.ndarray, n_classes: int,
                    alpha: float = 0.99, n_iter: int = 200) -> np.ndarray:
    """Zhou et al. 2004 label spreading with symmetric normalisation. (N, C) scores."""
    d = np.asarray(W.sum(1)).ravel()
    dm = sp.diags(1.0 / np.sqrt(d))
    S = dm @ W @ dm
    Y = np.zeros((W.shape[0], n_classes)); Y[labeled] = np.eye(n_classes)[y]
    F = Y.copy()
    for _ in range(n_iter):
        F = alpha * (S @ F) + (1 - alpha) * Y
    return F / np.maximum(F.sum(1, keepdims=True), 1e-12)
