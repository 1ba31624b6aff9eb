"""A project's features on disk: computed once, extended after an import, never recomputed.

    <project>/features/<extractor key>.npy    (N, D) float16, row i = image id i
    <project>/features/<extractor key>.json   extractor, rows, dim, seconds, images/s

Images are only ever appended (ids never change), so the first rows of a feature file stay
valid after an import: `ensure_features` extracts only the new images and writes the file
anew (old rows streamed through, atomically, so a reader or a crash never sees half a file).
float16 halves the disk and memory of 1280-D vectors (100,000 images: 256 MB) and changes
the neighbour lists of label propagation by nothing measurable; readers get float32 batches.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ssl_core.features.extractors import FeatureExtractor
from ssl_core.progress import Progress, no_progress
from ssl_core.project.files import atomic_path, release_rows, write_bytes_atomic
from ssl_core.project.folder import Project

COPY_ROWS = 8192            # rows copied at once when a file is extended


def features_key(representation: str, image_shape: tuple[int, ...]) -> str:
    """The file key of a representation's features for images of `image_shape`."""
    from ssl_core.features.extractors import extractor_key

    return extractor_key(representation, image_shape)


def features_path(project: Project, key: str) -> Path:
    return project.root / "features" / f"{key}.npy"


def load_features(project: Project, key: str, n_images: int | None = None) -> np.ndarray | None:
    """The stored features (N, D) float16, memory-mapped; None when there are none, they are
    unreadable, or they cover fewer than `n_images` rows (an import came after them). Rows
    beyond `n_images` (an import that is being written) are cut off."""
    try:
        feats = np.load(features_path(project, key), mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if feats.ndim != 2 or (n_images is not None and len(feats) < n_images):
        return None
    return feats if n_images is None else feats[:n_images]


def ensure_features(project: Project, images: np.ndarray, extractor: FeatureExtractor,
                    progress: Progress | None = None) -> np.ndarray:
    """Features of every row of `images` (the project's (N, H, W, C) uint8 array): the stored
    ones when they cover N rows, else the stored rows extended by the new images' features,
    written atomically. Returns (N, D) float16, memory-mapped. `progress` reports rows done,
    images/s and the time left (and may raise to cancel: nothing is written then)."""
    progress = progress or no_progress
    n = len(images)
    key = extractor.key
    old = load_features(project, key)
    n_old = 0 if old is None or old.shape[1] != extractor.dim else min(len(old), n)
    if n_old == n:
        progress(1.0, f"features of {n:,} images already computed ({extractor.name})")
        return old[:n]
    path = features_path(project, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    todo = n - n_old

    def report(done: int) -> None:
        rate = done / max(time.perf_counter() - t0, 1e-9)
        left = (todo - done) / rate if done else float("nan")
        eta = f", about {_duration(left)} left" if done else ""
        progress(done / todo, f"features ({extractor.name}): {n_old + done:,} / {n:,} images"
                              f" · {rate:.0f} images/s{eta}")

    report(0)
    with atomic_path(path, f"the features ({extractor.name})") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, extractor.dim))
        for s in range(0, n_old, COPY_ROWS):
            out[s:min(s + COPY_ROWS, n_old)] = old[s:min(s + COPY_ROWS, n_old)]
        for s, block in extractor.iter_features(images[n_old:]):       # (B, D) float32
            out[n_old + s:n_old + s + len(block)] = block
            release_rows(out, n_old + s, n_old + s + len(block))   # 244 MB resident at 100k
            report(s + len(block))
        out.flush()
        del out
    seconds = time.perf_counter() - t0
    meta = {"extractor": extractor.name, "key": key, "rows": n, "dim": extractor.dim,
            "extracted_rows": todo, "seconds": round(seconds, 2),
            "images_per_s": round(todo / max(seconds, 1e-9), 1), "created_at": time.time()}
    write_bytes_atomic(path.with_suffix(".json"), json.dumps(meta, indent=2).encode(),
                       f"the features' metadata ({extractor.name})")
    progress(1.0, f"features of {n:,} images ready ({todo:,} new, {meta['images_per_s']:.0f} "
                  f"images/s)")
    return load_features(project, key, n)


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def project_features(project: Project, images: np.ndarray, progress: Progress | None = None
                     ) -> tuple[str, np.ndarray | None]:
    """(representation, features): the project's representation (choice.py) and, unless it is
    'pixels', the features of every image (computed now where missing, else read)."""
    from ssl_core.features.choice import PIXELS, project_representation
    from ssl_core.features.extractors import get_extractor

    if len(images) == 0:
        return PIXELS, None
    representation = project_representation(project.store, tuple(images.shape[1:]))
    if representation == PIXELS:
        return representation, None
    extractor = get_extractor(representation, tuple(images.shape[1:]))
    return representation, ensure_features(project, images, extractor, progress)
