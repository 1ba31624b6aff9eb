"""Cheap, label-free preprocessing before neighbour graphs: deskewing and the PCA projection of
(deskewed) pixels (`PixelProjection`); centring, L2 normalisation and PCA of pretrained features
(`FeatureProjection`).

Deskewing (one moment-based shear per image, the classic MNIST trick) is the single biggest
accuracy gain the engine research found: on MNIST with 10 labels per class, a kNN graph on
deskewed pixels propagates labels to 98.4% instead of 96.7%, and a VAE trained on deskewed
images gives a latent graph 1.7 points better. It costs about a second for 70,000 images.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def deskew(x: torch.Tensor, chunk: int = 10_000) -> torch.Tensor:
    """Shear every image so its principal axis is vertical and centre its mass.

    x (N, C, H, W) float in [0, 1] -> same shape. Moments come from the channel mean, so colour
    images are sheared as a whole. An empty image (no mass) is returned unchanged.
    """
    n, _, h, w = x.shape
    ys = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)   # (H, W)
    xs = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)   # (H, W)
    out = torch.empty_like(x)
    for s in range(0, n, chunk):
        t = x[s:s + chunk].float()                                     # (B, C, H, W)
        m = t.mean(1)                                                  # (B, H, W)
        total = m.sum((1, 2))                                          # (B,)
        safe = total.clamp_min(1e-6)
        my = (m * ys).sum((1, 2)) / safe                               # (B,) centre of mass
        mx = (m * xs).sum((1, 2)) / safe
        dy = ys - my[:, None, None]                                    # (B, H, W)
        vy = (m * dy ** 2).sum((1, 2)) / safe
        cxy = (m * dy * (xs - mx[:, None, None])).sum((1, 2)) / safe
        alpha = torch.where(total > 1e-6, cxy / vy.clamp_min(1e-6), torch.zeros_like(vy))  # shear
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        centre_x = torch.where(total > 1e-6, (mx - cx) / (w / 2.0), torch.zeros_like(mx))
        centre_y = torch.where(total > 1e-6, (my - cy) / (h / 2.0), torch.zeros_like(my))
        # output pixel (v, u), centred, samples input (v + my, u + alpha * v + mx)
        theta = torch.zeros(len(t), 2, 3)                              # (B, 2, 3), normalised coords
        theta[:, 0, 0] = 1.0
        theta[:, 0, 1] = alpha * (h / w)
        theta[:, 0, 2] = centre_x
        theta[:, 1, 1] = 1.0
        theta[:, 1, 2] = centre_y
        grid = F.affine_grid(theta, list(t.shape), align_corners=False)
        out[s:s + chunk] = F.grid_sample(t, grid, align_corners=False, padding_mode="zeros")
    return out


def flat_features(x: torch.Tensor, deskewed: bool) -> np.ndarray:
    """(N, C, H, W) float -> (N, C*H*W) float32 numpy, deskewed first when asked."""
    if deskewed:
        x = deskew(x)
    return np.ascontiguousarray(x.reshape(len(x), -1).numpy(), dtype=np.float32)


class PixelProjection:
    """Pixel mode's graph space: deskew (optional) -> flatten -> PCA; fitted once, reused for
    new images. Takes (N, C, H, W) float tensors in [0, 1]."""
    kind = "pixels"

    def __init__(self, mean: np.ndarray, components: np.ndarray, deskewed: bool):
        self.mean, self.components, self.deskewed = mean, components, deskewed  # (D,), (d, D)

    @classmethod
    def fit(cls, x: torch.Tensor, deskewed: bool, n_components: int, seed: int
            ) -> tuple["PixelProjection", np.ndarray]:
        """x (N, C, H, W) -> (fitted projection, features (N, d))."""
        from sklearn.decomposition import PCA

        flat = flat_features(x, deskewed)                          # (N, D)
        d = max(1, min(n_components, flat.shape[1], len(flat) - 1))
        pca = PCA(d, random_state=seed, svd_solver="randomized" if len(flat) > 2000 else "full")
        feats = pca.fit_transform(flat).astype(np.float32)          # (N, d)
        return cls(pca.mean_.astype(np.float32), pca.components_.astype(np.float32), deskewed), feats

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        return (flat_features(x, self.deskewed) - self.mean) @ self.components.T  # (N, d)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "mean": torch.from_numpy(self.mean),
                "components": torch.from_numpy(self.components), "deskew": self.deskewed}


class FeatureProjection:
    """Feature mode's graph space: centre on the collection mean, L2-normalise ('cl2n': +1-2
    points of label propagation on photos over raw features; PCA-whitening cost 3-7 points,
    docs/photos.md), then a plain (unwhitened) PCA to `n_components` dims so that exact kNN over
    100,000 images stays within seconds. The PCA is fitted on at most `sample` rows and applied
    in chunks: no float copy of all features beyond the (N, d) result."""
    kind = "features"

    def __init__(self, mean: np.ndarray, components: np.ndarray | None):
        self.mean, self.components = mean, components               # (D,), (d, D) or None

    @classmethod
    def fit(cls, feats: np.ndarray, n_components: int, seed: int, sample: int = 20_000,
            chunk: int = 8192) -> tuple["FeatureProjection", np.ndarray]:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(feats), min(sample, len(feats)), replace=False))
        mean = np.asarray(feats[rows], np.float32).mean(0)
        fitted = cls(mean, None)
        components = None
        if 0 < n_components < feats.shape[1] and len(rows) > n_components:
            from sklearn.decomposition import PCA

            pca = PCA(n_components, random_state=seed, svd_solver="randomized")
            pca.fit(fitted._normalised(np.asarray(feats[rows], np.float32)))
            components = pca.components_.astype(np.float32)          # (d, D)
        fitted.components = components
        return fitted, fitted(feats, chunk)

    def _normalised(self, feats: np.ndarray) -> np.ndarray:
        z = np.asarray(feats, np.float32) - self.mean
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)

    def __call__(self, feats: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """feats (N, D), float16 on disk or any float -> (N, d) float32, `chunk` rows at a time:
        whole, the float32 temporaries of 100,000 x 1280 features took 1.2 GB in `predict`."""
        d = len(self.mean) if self.components is None else len(self.components)
        out = np.empty((len(feats), d), np.float32)
        for s in range(0, len(feats), chunk):
            z = self._normalised(feats[s:s + chunk])                     # (chunk, D)
            out[s:s + chunk] = z if self.components is None else z @ self.components.T
        return out

    def state(self) -> dict[str, Any]:
        state = {"kind": self.kind, "mean": torch.from_numpy(self.mean)}
        if self.components is not None:
            state["components"] = torch.from_numpy(self.components)
        return state


def projection_from_state(state: dict[str, Any]) -> PixelProjection | FeatureProjection:
    if state["kind"] == "features":
        comps = state.get("components")
        return FeatureProjection(state["mean"].numpy(), None if comps is None else comps.numpy())
    return PixelProjection(state["mean"].numpy(), state["components"].numpy(), bool(state["deskew"]))
