"""Read access to a project's images: pixels, names, and ground truth kept for evaluation.

Pixels live in `images.npy` (an ordinary .npy file, never a pickle), opened memory-mapped so
70,000 images cost no RAM until touched; metadata lives in the `images` table. The .npy file
may hold more rows than the table after an interrupted import (the file is replaced before the
rows are committed): the table is the truth, so everything here slices to its count.

Ground truth is deliberately behind its own method: training code takes labels from
`labels.current_labels`, and only evaluation calls `ground_truth()`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssl_core.project.folder import Project


@dataclass(frozen=True)
class GroundTruth:
    labels: np.ndarray    # (N,) int64 index into class_names, -1 = unknown
    is_test: np.ndarray   # (N,) bool: the fixed evaluation split
    class_names: list[str]

    @property
    def available(self) -> bool:
        return bool((self.labels >= 0).any())

    @property
    def sealed(self) -> np.ndarray:
        """(N,) bool: the sealed evaluation images (ground truth known, evaluation split). Their
        labels never train and every run is scored on them (labeling/evaluation_split.py)."""
        return (self.labels >= 0) & self.is_test


class ImageCollection:
    def __init__(self, project: Project):
        self.project = project

    @property
    def n_images(self) -> int:
        with self.project.store.read() as conn:
            return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def images(self) -> np.ndarray:
        """All images, (N, H, W, C) uint8, read-only and memory-mapped."""
        n = self.n_images
        if n == 0 or not self.project.images_path.is_file():
            return np.zeros((0, 0, 0, 0), np.uint8)
        arr = np.load(self.project.images_path, mmap_mode="r", allow_pickle=False)
        return arr[:n]

    @property
    def shape(self) -> tuple[int, int, int] | None:
        """(H, W, C) of every image, or None before the first import."""
        images = self.images()  # one row count, not two
        return tuple(images.shape[1:]) if len(images) else None

    def names(self) -> list[str]:
        with self.project.store.read() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM images ORDER BY id")]

    def sources(self) -> list[str]:
        with self.project.store.read() as conn:
            return [r[0] for r in conn.execute("SELECT source FROM images ORDER BY id")]

    def ground_truth_classes(self) -> list[str]:
        """Names of the ground-truth classes, [] when no image has ground truth (cheap)."""
        with self.project.store.read() as conn:
            if conn.execute("SELECT 1 FROM images WHERE gt IS NOT NULL LIMIT 1").fetchone() is None:
                return []
            return [r[0] for r in conn.execute("SELECT name FROM gt_classes ORDER BY id")]

    def ground_truth(self) -> GroundTruth:
        """For evaluation only: never pass these labels to a model's fit().

        Ground truth changes only when images are imported, and pages read it on every rerun
        (0.4 s for MNIST row by row), so it is read column-wise and kept per (database, image
        count, class count)."""
        with self.project.store.read() as conn:
            n = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            classes = conn.execute("SELECT id, name FROM gt_classes ORDER BY id").fetchall()
            key = (str(self.project.store.db_path), n, tuple(r["id"] for r in classes))
            if key in _GT_CACHE:
                return _GT_CACHE[key]
            rows = conn.execute("SELECT COALESCE(gt, -1), split = 'test' FROM images ORDER BY id"
                                ).fetchall()
        raw = np.array([tuple(r) for r in rows], dtype=np.int64).reshape(-1, 2)   # (N, 2)
        lookup = {r["id"]: i for i, r in enumerate(classes)}
        ids = np.array(sorted(lookup), dtype=np.int64)
        labels = np.full(len(raw), -1, np.int64)
        known = np.isin(raw[:, 0], ids)
        labels[known] = np.searchsorted(ids, raw[known, 0])        # gt id -> index by id order
        is_test = raw[:, 1].astype(bool)
        labels.setflags(write=False)                              # shared by every caller
        is_test.setflags(write=False)
        truth = GroundTruth(labels, is_test, [r["name"] for r in classes])
        if len(_GT_CACHE) > 8:
            _GT_CACHE.clear()
        _GT_CACHE[key] = truth
        return truth


_GT_CACHE: dict[tuple, GroundTruth] = {}
