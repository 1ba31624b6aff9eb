"""Job kind 'map': train the VAE on every image, encode them, lay the latents out in 2-D.

Run after each import (and on "Rebuild map"). The results are the map files of
latentmap/map_files.py. A rebuild continues from what is there, so the map changes as little as
the new data demands: the VAE fine-tunes the previous weights when their architecture and image
shape match, and the layout starts from the previous positions (new images at their
neighbours' positions). The files are replaced atomically, so a crash or cancel leaves the
previous map whole.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from ssl_core.data.collection import ImageCollection
from ssl_core.latentmap.map_files import read_layout, save_map, save_meta, vae_folder
from ssl_core.progress import Progress, no_progress
from ssl_core.project.folder import Project

ENCODE_BATCH = 8192
_REPORT_EVERY_S = 0.5   # progress rows written at most this often during VAE training


class MapFailed(RuntimeError):
    """The map cannot be built (e.g. the project has no images)."""


def run_map_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Job kind 'map' (see worker.py). params (all optional):
    {"vae_budget_s": 60, "vae": {VAEConfig fields}, "layout": {LayoutConfig fields},
     "warm_start": true, "seed": 0}. Returns map.json's content."""
    return build_map(ctx.project, params, ctx.progress)


def build_map(project: Project, params: dict[str, Any] | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
    """Everything the map job does; `progress` may raise (the worker's Cancelled) to stop."""
    from ssl_core.latentmap.layout import LayoutConfig, compute_layout
    from ssl_core.models.vae import VAE, VAEConfig

    params = params or {}
    progress = progress or no_progress
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    progress(0.0, "loading images")
    images = ImageCollection(project).images()                                     # (N, H, W, C)
    if len(images) == 0:
        raise MapFailed("the project has no images yet: import some first")
    vae_params = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in params.get("vae", {}).items()}
    vae_cfg = VAEConfig(**vae_params)
    warm = bool(params.get("warm_start", True))
    vae = _previous_vae(project, images.shape[1:], vae_cfg) if warm else None
    vae_warm = vae is not None
    if vae is None:
        vae = VAE.from_config(vae_cfg, random_state=int(params.get("seed", 0)))
    vae.set_params(**{f.name: getattr(vae_cfg, f.name) for f in dataclasses.fields(vae_cfg)})
    epochs = vae.planned_epochs(len(images))          # at least the VAE's minimum steps
    seconds["load"] = time.perf_counter() - t

    t = time.perf_counter()
    budget = float(params.get("vae_budget_s", 60.0))
    trained = {"epochs": 0.0}

    def on_step(p) -> None:  # TrainProgress after every step: report twice a second
        trained["epochs"] = p.step / max(1, p.total_steps) * epochs
        if p.step == 1 or p.elapsed_s - trained.get("reported", 0.0) >= _REPORT_EVERY_S:
            trained["reported"] = p.elapsed_s
            frac = max(p.fraction, p.elapsed_s / budget if budget > 0 else 0.0)
            progress(0.02 + 0.6 * min(1.0, frac), f"training the VAE: epoch "
                     f"{trained['epochs']:.1f} of {epochs:g} ({p.elapsed_s:.0f} s)")

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
    previous = read_layout(project) if warm else None
    layout_cfg = LayoutConfig(**params.get("layout", {}))
    layout = compute_layout(latents, layout_cfg, init=previous,
                            progress=lambda f, msg: progress(0.68 + 0.3 * f, msg))  # (N, 2)
    seconds["layout"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(0.98, "saving the map")
    save_map(project, vae, latents, layout)
    now = time.time()
    seconds["save"] = time.perf_counter() - t
    meta = {"n_images": len(images), "latent_dim": vae_cfg.latent_dim,
            "vae_epochs": round(trained["epochs"], 3), "vae_warm_start": vae_warm,
            "layout_warm_start": previous is not None, "created_at": now,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(now)),
            "vae_config": dataclasses.asdict(vae_cfg),
            "layout_config": dataclasses.asdict(layout_cfg)}
    meta["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    save_meta(project, meta)
    progress(1.0, f"map of {len(images):,} images ready")
    return meta


def _previous_vae(project: Project, image_shape: tuple[int, ...], cfg):
    """The project's saved VAE if it can be fine-tuned with `cfg` on these images, else None."""
    from ssl_core.models.base import ModelFileError
    from ssl_core.models.vae import VAE

    folder = vae_folder(project)
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
