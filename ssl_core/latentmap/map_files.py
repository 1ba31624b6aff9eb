"""The map's files in the project folder, written by jobs/map_job.py and read by the app:

    models/vae/   the VAE (VAE.save: config.json + weights.pt), replaced as a whole
    latents.npy   (N, latent_dim) float32 posterior means, row i = image id i
    layout.npy    (N, 2) float32 map positions (see layout.py for the frame)
    map.json      n_images, seconds per stage, VAE epochs, warm starts, created_at

All four are written under temporary names first and renamed into place only when every one
of them is complete, so a crash, a cancel or a full disk leaves the previous map whole.
Reading them imports no torch (the Map page stays quick to load). The map job passes its
worker's claim check as `check`, called when every file is complete, just before the renames:
a worker whose job was reaped publishes nothing.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssl_core.data.collection import ImageCollection
from ssl_core.project.files import atomic_folder, atomic_path
from ssl_core.project.folder import Project


@dataclass(frozen=True)
class MapData:
    layout: np.ndarray    # (N, 2) float32, row i = image id i
    latents: np.ndarray   # (N, latent_dim) float32
    meta: dict[str, Any]  # map.json ({} if it could not be read)


def vae_folder(project: Project):
    """Where the map's VAE lives (the Samples page draws from it too)."""
    return project.models_dir / "vae"


def load_map(project: Project, allow_stale: bool = False) -> MapData | None:
    """The cached map, or None when there is none yet or it does not fit the images.

    A map made before the latest import has fewer rows than there are images: it is stale and
    None is returned, unless `allow_stale` (its rows are still right for the first images, so
    a page may show it while the map job catches up). Files that are missing, unreadable or
    disagree with each other also give None.
    """
    try:
        layout = np.load(project.layout_path, allow_pickle=False)
        latents = np.load(project.latents_path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    n_images = ImageCollection(project).n_images
    if (layout.ndim != 2 or layout.shape[1] != 2 or latents.ndim != 2
            or len(latents) != len(layout) or len(layout) > n_images
            or (len(layout) < n_images and not allow_stale)):
        return None
    try:
        meta = json.loads(project.map_meta_path.read_text())
    except (OSError, ValueError):
        meta = {}
    return MapData(layout.astype(np.float32, copy=False), latents.astype(np.float32, copy=False),
                   meta)


def read_layout(project: Project) -> np.ndarray | None:
    """The previous real layout (even a stale one: it seeds the new positions), or None; a
    provisional layout (a PCA projection) seeds nothing."""
    try:
        layout = np.load(project.layout_path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    try:
        provisional = json.loads(project.map_meta_path.read_text()).get("provisional", False)
    except (OSError, ValueError):
        provisional = False
    return layout if layout.ndim == 2 and layout.shape[1] == 2 and not provisional else None


def save_map(project: Project, vae, latents: np.ndarray, layout: np.ndarray,
             extra: dict[str, bytes] | None = None,
             check: Callable[[], None] | None = None) -> None:
    """Write the VAE (anything with `save(folder)`, plus `extra` files beside its own: name ->
    bytes), latents (N, d) and layout (N, 2). Every file is complete before the first rename; a
    failed write raises FileWriteError and leaves the previous map as it was (no temporary file
    behind). map.json follows (save_meta)."""
    with atomic_folder(vae_folder(project), "the map's VAE") as vae_tmp, \
            atomic_path(project.latents_path, "the map (latents.npy)") as latents_tmp, \
            atomic_path(project.layout_path, "the map (layout.npy)") as layout_tmp:
        vae.save(vae_tmp)
        for name, data in (extra or {}).items():
            (vae_tmp / name).write_bytes(data)
        for tmp, array in ((latents_tmp, latents), (layout_tmp, layout)):
            with open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        if check is not None:
            check()                            # before the first rename: may raise, none happen


def save_provisional(project: Project, latents: np.ndarray, layout: np.ndarray,
                     meta: dict[str, Any], check: Callable[[], None] | None = None) -> None:
    """A provisional map (provisional.py): latents and layout, and map.json saying so. The
    map's VAE, if any, is left as it is (the next real map fine-tunes it)."""
    with atomic_path(project.latents_path, "the map (latents.npy)") as latents_tmp, \
            atomic_path(project.layout_path, "the map (layout.npy)") as layout_tmp:
        for tmp, array in ((latents_tmp, latents), (layout_tmp, layout)):
            with open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        if check is not None:
            check()
    save_meta(project, {**meta, "provisional": True}, check)


def save_meta(project: Project, meta: dict[str, Any], check: Callable[[], None] | None = None
              ) -> None:
    """map.json: how the map was made (sizes, seconds per stage, settings)."""
    data = json.dumps(meta, indent=2).encode()
    with atomic_path(project.map_meta_path, "the map (map.json)") as tmp:
        tmp.write_bytes(data)
        if check is not None:
            check()
