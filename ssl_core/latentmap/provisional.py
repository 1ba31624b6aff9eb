"""A first map in seconds, while the real one (VAE latents -> UMAP) is being built.

The real map needs a trained VAE (and, for photos, the pretrained features first): tens of
seconds to minutes. Until it is ready the Map page shows this provisional one, so a user can
look and lasso at once: every image reduced to a few hundred numbers (its stored features when
they exist, else its pixels shrunk to at most 16x16), projected by PCA. The first two principal
axes are the layout; the first `dims` are the latents the page uses for neighbours. It is
written like any map (map_files.py) with `"provisional": true` in map.json, and the map job
replaces it in place when the VAE's map is ready.
"""
from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

SIDE = 16                  # pixels are shrunk to at most SIDE x SIDE before the PCA
SAMPLE = 20_000            # rows the PCA is fitted on
BATCH = 4096


def small_pixels(images: np.ndarray, side: int = SIDE) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, h*w*C) float32 in [0, 1], h, w <= side (block means), read in
    batches from a memory map."""
    n, h, w, c = images.shape
    fh, fw = max(1, -(-h // side)), max(1, -(-w // side))       # block sizes
    oh, ow = h // fh, w // fw
    out = np.empty((n, oh * ow * c), np.float32)
    for s in range(0, n, BATCH):
        x = np.asarray(images[s:s + BATCH, :oh * fh, :ow * fw], np.float32)  # (B, H', W', C)
        x = x.reshape(len(x), oh, fh, ow, fw, c).mean((2, 4))               # (B, oh, ow, C)
        out[s:s + len(x)] = x.reshape(len(x), -1) / 255.0
    return out


def provisional_map(images: np.ndarray, features: np.ndarray | None = None, dims: int = 16,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(layout (N, 2), latents (N, dims)) float32 from stored features (N, D) when given, else
    from shrunk pixels. The layout is centred and scaled to the real map's frame (radius ~1)."""
    x = (np.asarray(features, np.float32) if features is not None
         else small_pixels(images))                                          # (N, D)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, dims), np.float32)
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, min(n, SAMPLE), replace=False)
    mean = x[rows].mean(0)
    with threadpool_limits(1):   # small products: 2 spinning BLAS threads made this 7x slower
        centred = x[rows] - mean                                             # (S, D)
        _, vecs = np.linalg.eigh((centred.T @ centred).astype(np.float64))   # ascending
    axes = vecs[:, ::-1][:, :max(2, min(dims, x.shape[1]))].T.astype(np.float32)   # (d, D)
    z = np.concatenate([(x[s:s + BATCH] - mean) @ axes.T for s in range(0, n, BATCH)])
    if z.shape[1] < 2:
        z = np.hstack([z, np.zeros((n, 2 - z.shape[1]), np.float32)])
    xy = z[:, :2] - z[:, :2].mean(0)
    xy /= float(np.percentile(np.linalg.norm(xy, axis=1), 99)) or 1.0
    latents = np.zeros((n, dims), np.float32)
    latents[:, :min(dims, z.shape[1])] = z[:, :dims]
    return xy.astype(np.float32), latents
