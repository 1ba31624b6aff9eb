"""Cheap hand-crafted image features for graph construction."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def pixel_scale(x: np.ndarray) -> float:
    """Max pixel value convention: 16 for sklearn digits (0..16), else 255."""
    return 16.0 if x.max() <= 16 else 255.0


def to_float(x: np.ndarray, scale: float | None = None) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, C, H, W) float32 in [0, 1]."""
    scale = pixel_scale(x) if scale is None else scale
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / scale


def deskew(x: np.ndarray, chunk: int = 10000) -> np.ndarray:
    """Shear each image so its principal axis is vertical (classic MNIST deskewing).

    x (N, C, H, W) float32 -> same shape. Uses intensity moments of channel-mean image.
    """
    n, c, h, w = x.shape
    out = np.empty_like(x)
    ys = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)  # (H, W)
    xs = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    for s in range(0, n, chunk):
        t = torch.from_numpy(x[s:s + chunk])  # (B, C, H, W)
        m = t.mean(1)  # (B, H, W)
        tot = m.sum((1, 2)).clamp_min(1e-6)  # (B,)
        my = (m * ys).sum((1, 2)) / tot
        mx = (m * xs).sum((1, 2)) / tot
        vy = (m * (ys - my[:, None, None]) ** 2).sum((1, 2)) / tot
        cxy = (m * (ys - my[:, None, None]) * (xs - mx[:, None, None])).sum((1, 2)) / tot
        alpha = cxy / vy.clamp_min(1e-6)  # (B,) shear
        # output (centred) pixel (v, u) samples input (v + my, u + alpha*v + mx): shear + centre of mass
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        theta = torch.zeros(t.shape[0], 2, 3)  # (B, 2, 3) in normalised coordinates
        theta[:, 0, 0] = 1.0
        theta[:, 0, 1] = alpha * (h / w)
        theta[:, 0, 2] = (mx - cx) / (w / 2.0)
        theta[:, 1, 1] = 1.0
        theta[:, 1, 2] = (my - cy) / (h / 2.0)
        grid = F.affine_grid(theta, list(t.shape), align_corners=False)
        out[s:s + chunk] = F.grid_sample(t, grid, align_corners=False, padding_mode="zeros").numpy()
    return out
