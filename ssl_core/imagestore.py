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

from .project import Project


@dataclass(frozen=True)
class GroundTruth:
    labels: np.ndarray    # (N,) int64 index into class_names, -1 = unknown
    is_test: np.ndarray   # (N,) bool: the fixed evaluation split
    class_names: list[str]

    @property
    def available(self) -> bool:
        return bool((self.labels >= 0).any())


class ImageStore:
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
        """For evaluation only: never pass these labels to a model's fit()."""
        with self.project.store.read() as conn:
            rows = conn.execute("SELECT gt, split FROM images ORDER BY id").fetchall()
            classes = conn.execute("SELECT id, name FROM gt_classes ORDER BY id").fetchall()
        index = {r["id"]: i for i, r in enumerate(classes)}
        labels = np.array([index.get(r["gt"], -1) if r["gt"] is not None else -1 for r in rows],
                          dtype=np.int64)
        is_test = np.array([r["split"] == "test" for r in rows], dtype=bool)
        return GroundTruth(labels, is_test, [r["name"] for r in classes])
