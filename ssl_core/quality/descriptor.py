"""What a near-duplicate is, for images without pretrained features: the transforms that make
one (`near_copy`), and the pixel descriptor made insensitive to them (`pixel_descriptor`).

The transform family (used to calibrate the duplicate threshold on a project's own images, and
by benchmarks/quality_duplicates.py to inject copies): a random non-empty subset of
  - JPEG re-encoding at quality 60-90,
  - a shift of up to 2 px in x and y,
  - a rescale by 0.9-1.1 about the image centre,
  - a crop of 2-6% of each side's length, resized back to the full size.
Shifts and rescales fill with the image's border median (bilinear resampling, PIL).

The pixel descriptor, moment-normalised pixels:
  1. ink weight w = |grey - median of the border pixels|, soft-thresholded by `floor` (w - 0.1,
     at least 0): a light or a dark background both give ink > 0, and JPEG's low ringing in the
     background (which |.| would otherwise turn into ink everywhere) is dropped;
  2. the ink's centre of mass and radius of gyration r give a frame: a window of half-width
     `spread` * r about the centre, resampled to `size` x `size` (shift and scale removed);
  3. a Gaussian blur of `sigma` px (of the output grid), then L2 normalisation (contrast).
Distances between descriptors are Euclidean (0..2).

Why this one: MNIST's dense cluster of 1s holds many natural pairs as close at 28x28 as a
JPEG re-encode, so a descriptor is judged by how many copies it finds before natural pairs come
in. benchmarks/quality_duplicates.py --descriptors runs find_duplicates (same rule, same
calibration) on 70,000 MNIST images + 1,000 copies with each candidate; on tuning seed 100:
    descriptor                              pair precision  pair recall  natural pairs
    this one (28x28, spread 1.9, sigma 0.7)      0.998         0.989            2
    moment-normalised 16x16, no floor, no blur   0.641         0.974          535
    deskewed PCA-50 (models/preprocessing)       0.253         0.847         2443
    raw pixels                                   0.388         0.542          849
Raw pixels never find a shifted copy; deskew + PCA blurs away the detail that tells two 1s
apart; without the floor, JPEG ringing in the background moved the centre and inflated r.
On reported seed 0, the one with the most (50), every natural pair is of the same digit and
near-identical by eye. The sizes (16-28), spreads (1.9-2.6), blurs (0-2 px) and floors (0-0.2)
were explored on seeds 7 and 100 only; seeds 0-2 (the reported rows) were not used for any
choice here. Made for objects on a plain background (digits, glyphs, sketches): where the
content fills the frame, shifts and crops change the content itself and the calibration
reports a lower recall.
"""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SIZE, SPREAD, SIGMA, FLOOR = 28, 1.9, 0.7, 0.1


@torch.no_grad()
def pixel_descriptor(images: np.ndarray, *, size: int = SIZE, spread: float = SPREAD,
                     sigma: float = SIGMA, floor: float = FLOOR) -> np.ndarray:
    """images (B, H, W, C) uint8 -> (B, size * size) float32 unit rows (see module docstring).
    Images larger than 2 * size are first area-averaged (aspect kept) so the frame does not
    alias. An image with no ink (uniform) gives a zero row."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().mean(-1) / 255.0  # (B, H, W)
    b, h, w = x.shape
    if max(h, w) > 2 * size:
        f = 2 * size / max(h, w)
        x = F.interpolate(x[:, None], size=(max(1, round(h * f)), max(1, round(w * f))),
                          mode="area")[:, 0]
        b, h, w = x.shape
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], 1)          # (B, 2H+2W)
    ink = ((x - border.median(1).values[:, None, None]).abs() - floor).clamp_min(0)
    ys = torch.arange(h, dtype=torch.float32)[:, None]                            # (H, 1)
    xs = torch.arange(w, dtype=torch.float32)[None, :]                            # (1, W)
    mass = ink.sum((1, 2)).clamp_min(1e-6)                                        # (B,)
    my = (ink * ys).sum((1, 2)) / mass                                            # (B,)
    mx = (ink * xs).sum((1, 2)) / mass
    r2 = (ink * ((ys - my[:, None, None]) ** 2 + (xs - mx[:, None, None]) ** 2)).sum((1, 2))
    half = spread * torch.sqrt(r2 / mass).clamp_min(0.5)                          # (B,) px
    theta = torch.zeros(b, 2, 3)                  # output grid -> input, normalised coords
    theta[:, 0, 0] = half / (w / 2)
    theta[:, 1, 1] = half / (h / 2)
    theta[:, 0, 2] = (mx + 0.5) / (w / 2) - 1
    theta[:, 1, 2] = (my + 0.5) / (h / 2) - 1
    grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
    out = F.grid_sample(ink[:, None], grid, align_corners=False, padding_mode="zeros")
    out = _blur(out, sigma * size / 28).reshape(b, -1)                            # (B, S*S)
    return F.normalize(out, dim=1).numpy()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of x (B, 1, H, W), zero padding."""
    if sigma <= 0:
        return x
    r = int(np.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, r))
    return F.conv2d(x, k.view(1, 1, -1, 1), padding=(r, 0))


# ---- the transforms ------------------------------------------------------------------------

def _fill(image: np.ndarray) -> int | tuple[int, ...]:
    """The median border colour of image (H, W, C), as PIL wants a fill."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])    # (P, C)
    med = np.median(border, axis=0).round().astype(int)
    return int(med[0]) if len(med) == 1 else tuple(int(v) for v in med)


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)


def _array(img: Image.Image, channels: int) -> np.ndarray:
    a = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return a[..., None] if channels == 1 else a


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """image (H, W, C) uint8, re-encoded as JPEG at `quality` and decoded."""
    buf = io.BytesIO()
    _pil(image).save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    return _array(Image.open(buf), image.shape[2])


def affine(image: np.ndarray, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0
           ) -> np.ndarray:
    """image (H, W, C) rescaled by `scale` about its centre, then shifted by (dx, dy) px."""
    h, w = image.shape[:2]
    cx, cy = w / 2, h / 2             # output (u, v) samples input ((u - cx - dx) / s + cx, ..)
    coeffs = (1 / scale, 0, cx - (cx + dx) / scale, 0, 1 / scale, cy - (cy + dy) / scale)
    out = _pil(image).transform((w, h), Image.AFFINE, coeffs, resample=Image.BILINEAR,
                                fillcolor=_fill(image))
    return _array(out, image.shape[2])


def crop(image: np.ndarray, frac: float, left: float, top: float) -> np.ndarray:
    """Cut `frac` of each side's length (left / top: the share of it taken from the left / top,
    0..1), resized back to the full size."""
    h, w = image.shape[:2]
    x0, y0 = left * frac * w, top * frac * h
    box = (x0, y0, x0 + (1 - frac) * w, y0 + (1 - frac) * h)
    return _array(_pil(image).resize((w, h), Image.BILINEAR, box=box), image.shape[2])


def near_copy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A near-duplicate of image (H, W, C) uint8 by a random non-empty subset of the family in
    the module docstring (each transform with probability 1/2, redrawn if none)."""
    ops: list[str] = []
    while not ops:
        ops = [op for op in ("shift", "scale", "crop", "jpeg") if rng.random() < 0.5]
    out = image
    if "shift" in ops or "scale" in ops:
        dx, dy = rng.integers(-2, 3, 2) if "shift" in ops else (0, 0)
        out = affine(out, rng.uniform(0.9, 1.1) if "scale" in ops else 1.0, int(dx), int(dy))
    if "crop" in ops:
        out = crop(out, rng.uniform(0.02, 0.06), rng.random(), rng.random())
    if "jpeg" in ops:
        out = jpeg(out, int(rng.integers(60, 91)))
    return out
