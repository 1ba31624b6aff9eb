"""Thumbnails: tile images into one contact sheet, so a page of 100 images is one PNG rather
than 100 separate image elements (far cheaper for the browser and the websocket)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def upscale_factor(height: int, target: int = 56) -> int:
    """Integer nearest-neighbour factor that brings tiny images (8x8 digits) to a visible size."""
    return max(1, target // max(1, height))


def contact_sheet(images: np.ndarray, cols: int = 12, pad: int = 2, scale: int | None = None,
                  background: int = 255) -> np.ndarray:
    """(n, H, W, C) uint8 -> one (rows*(H*s+pad)+pad, cols*(W*s+pad)+pad, C) uint8 grid."""
    n, h, w, c = images.shape
    if n == 0:
        return np.full((h or 1, w or 1, c or 1), background, np.uint8)
    s = scale or upscale_factor(h)
    big = images.repeat(s, axis=1).repeat(s, axis=2) if s > 1 else images  # (n, H*s, W*s, C)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    th, tw = h * s + pad, w * s + pad
    sheet = np.full((rows * th + pad, cols * tw + pad, c), background, np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        sheet[pad + r * th: pad + r * th + h * s, pad + q * tw: pad + q * tw + w * s] = big[i]
    return sheet


def to_png(image: np.ndarray) -> bytes:
    """(H, W, C) uint8 -> PNG bytes."""
    arr = image[..., 0] if image.shape[-1] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
