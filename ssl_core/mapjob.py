"""Job kind 'map': train the VAE on every image, encode them, lay the latents out in 2-D.

Run after each import (and on "Rebuild map"). The results are cached in the project folder:

    models/vae/   the VAE (VAE.save: config.json + weights.pt), replaced as a whole
    latents.npy   (N, latent_dim) float32 posterior means, row i = image id i
    layout.npy    (N, 2) float32 map positions (see layout.py for the frame)
    map.json      n_images, seconds per stage, VAE epochs, warm starts, created_at

A rebuild continues from what is there, so the map changes as little as the new data demands:
the VAE fine-tunes the previous weights when their architecture and image shape match, and the
layout starts from the previous positions (new images at their neighbours' positions).

Writes are atomic (temporary name, then os.replace / rename), so a crash or cancel leaves the
previous map whole. `load_map` is what the app reads; it imports no torch.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic_files import discard, save_model_folder, write_error
from .imagestore import ImageStore
from .project import Project
from .sources import Progress

ENCODE_BATCH = 8192
MIN_VAE_STEPS = 2000    # when params set no epochs. digits (1,797 images) maps at 0.70 2-D kNN
                        # label agreement after 15 epochs, 0.93 after 286 (= 2000 steps)
_REPORT_EVERY_S = 0.5   # progress rows written at most this often during VAE training


class MapFailed(RuntimeError):
    """The map cannot be built (e.g. the project has no images)."""


@dataclass(frozen=True)
class MapData:
    layout: np.ndarray    # (N, 2) float32, row i = image id i
    latents: np.ndarray   # (N, latent_dim) float32
    meta: dict[str, Any]  # map.json ({} if it could not be read)


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
    n_images = ImageStore(project).n_images
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


def run_map_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Job kind 'map' (see worker.py). params (all optional):
    {"vae_budget_s": 60, "vae": {VAEConfig fields}, "layout": {LayoutConfig fields},
     "warm_start": true, "seed": 0}. Returns map.json's content."""
    return build_map(ctx.project, params, ctx.progress)


def build_map(project: Project, params: dict[str, Any] | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
    """Everything the map job does; `progress` may raise (the worker's Cancelled) to stop."""
    from .layout import LayoutConfig, compute_layout
    from .models.vae import VAE, VAEConfig, with_min_steps

    params = params or {}
    progress = progress or (lambda fraction, message: None)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    progress(0.0, "loading images")
    images = ImageStore(project).images()                                     # (N, H, W, C)
    if len(images) == 0:
        raise MapFailed("the project has no images yet: import some first")
    vae_params = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in params.get("vae", {}).items()}
    vae_cfg = VAEConfig(**vae_params)
    if "epochs" not in vae_params:  # small sets need more epochs for enough optimiser steps
        vae_cfg = with_min_steps(vae_cfg, len(images), MIN_VAE_STEPS)
    warm = bool(params.get("warm_start", True))
    vae = _previous_vae(project, images.shape[1:], vae_cfg) if warm else None
    vae_warm = vae is not None
    if vae is None:
        vae = VAE(vae_cfg, random_state=int(params.get("seed", 0)))
    vae.config = vae_cfg
    seconds["load"] = time.perf_counter() - t

    t = time.perf_counter()
    budget = float(params.get("vae_budget_s", 60.0))
    trained = {"epochs": 0.0}

    def on_step(p) -> None:  # TrainProgress after every step: report twice a second
        trained["epochs"] = p.step / max(1, p.total_steps) * vae_cfg.epochs
        if p.step == 1 or p.elapsed_s - trained.get("reported", 0.0) >= _REPORT_EVERY_S:
            trained["reported"] = p.elapsed_s
            frac = max(p.fraction, p.elapsed_s / budget if budget > 0 else 0.0)
            progress(0.02 + 0.6 * min(1.0, frac), f"training the VAE: epoch "
                     f"{trained['epochs']:.1f} of {vae_cfg.epochs:g} ({p.elapsed_s:.0f} s)")

    progress(0.02, "training the VAE" + (" (from the previous one)" if vae_warm else ""))
    vae.fit(images, callbacks=[on_step], time_budget_s=budget, warm_start=vae_warm)
    seconds["vae"] = time.perf_counter() - t

    t = time.perf_counter()
    latents = np.zeros((len(images), vae_cfg.latent_dim), np.float32)        # (N, latent_dim)
    for s in range(0, len(images), ENCODE_BATCH):
        progress(0.62 + 0.06 * s / len(images), f"encoding images {s:,} / {len(images):,}")
        latents[s:s + ENCODE_BATCH] = vae.transform(images[s:s + ENCODE_BATCH])
    seconds["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    previous = _read_layout(project) if warm else None
    layout_cfg = LayoutConfig(**params.get("layout", {}))
    layout = compute_layout(latents, layout_cfg, init=previous,
                            progress=lambda f, msg: progress(0.68 + 0.3 * f, msg))  # (N, 2)
    seconds["layout"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(0.98, "saving the map")
    _save_map(project, vae, latents, layout)
    now = time.time()
    meta = {"n_images": len(images), "latent_dim": vae_cfg.latent_dim,
            "vae_epochs": round(trained["epochs"], 3), "vae_warm_start": vae_warm,
            "layout_warm_start": previous is not None, "created_at": now,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(now)),
            "vae_config": dataclasses.asdict(vae_cfg),
            "layout_config": dataclasses.asdict(layout_cfg)}
    seconds["save"] = time.perf_counter() - t
    meta["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    _atomic_write(project.map_meta_path, json.dumps(meta, indent=2).encode())
    progress(1.0, f"map of {len(images):,} images ready")
    return meta


def _previous_vae(project: Project, image_shape: tuple[int, ...], cfg):
    """The project's saved VAE if it can be fine-tuned with `cfg` on these images, else None."""
    from .models.base import ModelFileError
    from .models.vae import VAE

    folder = project.models_dir / "vae"
    if not (folder / "config.json").is_file():
        return None
    try:
        vae = VAE.load(folder)
    except ModelFileError:
        return None
    same_net = (tuple(vae.config.hidden) == tuple(cfg.hidden)
                and vae.config.latent_dim == cfg.latent_dim
                and getattr(vae.config, "deskew", False) == getattr(cfg, "deskew", False))
    return vae if same_net and tuple(vae.input_shape_) == tuple(image_shape) else None


def _read_layout(project: Project) -> np.ndarray | None:
    """The previous layout (even a stale one: it seeds the new positions), or None."""
    try:
        layout = np.load(project.layout_path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return layout if layout.ndim == 2 and layout.shape[1] == 2 else None


def _save_map(project: Project, vae, latents: np.ndarray, layout: np.ndarray) -> None:
    """Write the VAE, latents and layout under temporary names first, then rename them into
    place: a full disk or read-only folder fails while writing, before any rename, so the
    previous map stays whole and consistent (StoreError, temporary files removed). Renames
    need no space; a crash between them leaves a VAE newer than the latents, which the next
    rebuild fine-tunes anyway."""
    folder = project.models_dir / "vae"
    folder.parent.mkdir(parents=True, exist_ok=True)
    vae_tmp = folder.with_name(f".{folder.name}.new-{os.getpid()}")
    staged: list[tuple[Path, Path]] = []
    try:
        save_model_folder(vae, vae_tmp, "the map's VAE")
        staged.append((vae_tmp, folder))
        for path, array in ((project.latents_path, latents), (project.layout_path, layout)):
            staged.append((_stage(path, lambda fh, a=array: np.save(fh, a, allow_pickle=False)),
                           path))
    except BaseException:
        for tmp, _ in staged:
            discard(tmp)
        raise
    _swap_folder(vae_tmp, folder)
    for tmp, path in staged[1:]:
        os.replace(tmp, path)


def _swap_folder(new: Path, folder: Path) -> None:
    """Rename the old folder aside, `new` into place, delete the old: a crash leaves either
    whole (at worst under the aside name, and the next run trains from scratch)."""
    aside = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    shutil.rmtree(aside, ignore_errors=True)
    if folder.exists():
        folder.rename(aside)
    new.rename(folder)
    shutil.rmtree(aside, ignore_errors=True)


def _atomic_write(path: Path, data: bytes) -> None:
    os.replace(_stage(path, lambda fh: fh.write(data)), path)


def _stage(path: Path, write) -> Path:
    """write(fh) into a temporary file beside `path`, fsynced; returns its name for the caller
    to rename over `path` (atomic on POSIX). On OSError the temporary file is removed and a
    StoreError says why."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        discard(tmp)
        raise write_error(err, path.parent, f"the map ({path.name})") from err
    return tmp
