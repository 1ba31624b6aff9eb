"""What a feature-space model draws, shown as the real images nearest to its draws.

A VAE or GAN that learned from pretrained features (photos) generates feature vectors or
latent points, not pixels: there is no picture to decode. What it has learned still shows: draw
points where it puts a class, and show the project's real image nearest to each draw (in the
same space). A class whose draws land on images of that class was learned; draws that land on
other classes show the confusion. Pixel-space models keep their decoded pictures (samples.py).
"""
from __future__ import annotations

import numpy as np

from ssl_core.labeling.classes import LabelClass
from ssl_core.neighbours import knn_query
from ssl_core.results.samples import ClassGrid, Grid


def draws_images(model) -> bool:
    """Whether a generative model draws pictures (pixel space) or only vectors (features)."""
    return bool(getattr(model, "draws_images", True))


def nearest_images(points: np.ndarray, space: np.ndarray, images: np.ndarray,
                   distinct: bool = True) -> np.ndarray:
    """The real images (n, H, W, C) nearest to each point (n, d) in `space` (N, d), the i-th
    row of space being images[i]; with `distinct`, each image is used once where possible."""
    k = min(len(space), max(1, len(points)) if distinct else 1)
    idx, _ = knn_query(points, space, k)                                       # (n, k)
    chosen, used = [], set()
    for row in idx:
        pick = next((int(i) for i in row if int(i) not in used), int(row[0]))
        used.add(pick)
        chosen.append(pick)
    return np.asarray(images[chosen])                                          # (n, H, W, C)


def vae_class_neighbours(vae, latents: np.ndarray, images: np.ndarray, labels: np.ndarray,
                         classes: list[LabelClass], n: int = 8, seed: int = 0) -> list[ClassGrid]:
    """One row per class: n points drawn from the Gaussian of its labeled images' latents (the
    VAE's class region, fitted to the current labels), each shown as the nearest real image.
    latents (N, z) are the map's (row i = image i), labels (N,) class id or -1."""
    labels = np.asarray(labels)[:len(latents)]
    labeled = np.flatnonzero(labels >= 0)
    counts = {c.id: int((labels == c.id).sum()) for c in classes}
    if len(labeled):
        vae.set_class_regions(latents[labeled], labels[labeled])
    rng = np.random.default_rng(seed)
    rows = []
    for c in classes:
        if counts[c.id] == 0:
            rows.append(ClassGrid(c.id, c.name, None, "no labeled images yet"))
            continue
        k = int(np.flatnonzero(vae.classes_ == c.id)[0])
        z = rng.multivariate_normal(vae.class_means_[k], vae.class_covs_[k], size=n)
        note = (f"nearest real images to {n} draws from the region of its "
                f"{counts[c.id]:,} labeled image{'s' if counts[c.id] > 1 else ''}")
        rows.append(ClassGrid(c.id, c.name, Grid(nearest_images(z.astype(np.float32), latents,
                                                                images), n), note))
    return rows


def latent_path(latents: np.ndarray, images: np.ndarray, a: int, b: int, steps: int = 10) -> Grid:
    """One row: image a, the real images nearest to `steps` points on the straight line between
    a's and b's latents, image b (a feature-space VAE's interpolation)."""
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    points = (1 - t) * latents[a] + t * latents[b]                              # (steps, z)
    frames = nearest_images(points, latents, images, distinct=False)
    ends = np.asarray(images[[a, b]])
    return Grid(np.concatenate([ends[:1], frames, ends[1:]]), steps + 2, gap_after=(0, steps))


def gan_class_neighbours(gan, space: np.ndarray, images: np.ndarray, classes: list[LabelClass],
                         n: int = 8, seed: int = 0) -> list[ClassGrid]:
    """One row per class of a feature-space GAN: its generated vectors the discriminator finds
    most likely of the class, each shown as the nearest real image in `space` (N, d), the
    GAN's own feature space of the project's images (`gan.graph_space`)."""
    by_id = {c.id: c for c in classes}
    rows = []
    for cid in (int(c) for c in gan.classes_):
        name = by_id[cid].name if cid in by_id else f"class {cid}"
        vectors = gan.sample_vectors(n, label=cid, seed=seed)                  # (n, d)
        rows.append(ClassGrid(cid, name, Grid(nearest_images(vectors, space, images), n),
                              "" if cid in by_id else "deleted or merged since this run"))
    known = {int(c) for c in gan.classes_}
    rows += [ClassGrid(c.id, c.name, None, "not in this run (it had no labels then): train again")
             for c in classes if c.id not in known]
    return rows


def gan_generated_neighbours(gan, space: np.ndarray, images: np.ndarray, n: int = 48,
                             seed: int = 0, cols: int = 12) -> Grid:
    """n generated vectors of a feature-space GAN, each as its nearest real image."""
    return Grid(nearest_images(gan.sample_vectors(n, seed=seed), space, images), min(cols, n))
