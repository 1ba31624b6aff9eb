"""Job kind 'map': the latent map of a project, from nothing to a UMAP of VAE latents.

1. A provisional map within seconds (latentmap/provisional.py) when there is no map yet, so
   the Map page has something to show and to lasso at once. (After an import the page shows
   the previous map's first rows meanwhile: it stays the seed of the new layout.)
2. The project's features (features/store.py), when its representation is a pretrained
   network: computed once, extended after an import, shared with every training method.
3. A VAE learns from every image without labels: on their pixels (small greyscale images), or
   on their features (centred, L2-normalised, PCA-projected: photos), so that the map groups
   photos by content rather than by colour and layout.
4. Its latent means are laid out in 2-D with UMAP (latentmap/layout.py) and the map files are
   replaced atomically (latentmap/map_files.py): a crash or cancel leaves the previous map.
   In a worker, each file is published only while the worker still owns the job (its claim
   is checked just before the renames), so a worker reaped as dead overwrites nothing.

A rebuild continues from what is there, so the map changes as little as the new data demands:
the VAE fine-tunes the previous weights when their architecture and inputs match, and the
layout starts from the previous (real) positions, new images at their neighbours' positions.
"""
from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ssl_core.data.collection import ImageCollection
from ssl_core.features.choice import PIXELS
from ssl_core.features.store import project_features
from ssl_core.latentmap.map_files import (
    read_layout,
    save_map,
    save_meta,
    save_provisional,
    vae_folder,
)
from ssl_core.latentmap.provisional import provisional_map
from ssl_core.progress import Progress, no_progress, scaled
from ssl_core.project.folder import Project

ENCODE_BATCH = 8192
FEATURE_DIMS = 128          # feature mode: the VAE learns from features projected to this many dims
FEATURE_VAE = {"hidden": (256, 128), "latent_dim": 16}   # its network (vectors, not pixels)
_REPORT_EVERY_S = 0.5       # progress rows written at most this often during VAE training


class MapFailed(RuntimeError):
    """The map cannot be built (e.g. the project has no images)."""


def run_map_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Job kind 'map' (see worker.py). params (all optional):
    {"vae_budget_s": 60, "vae": {VAEConfig fields}, "layout": {LayoutConfig fields},
     "warm_start": true, "provisional": true, "seed": 0}. Returns map.json's content."""
    meta = build_map(ctx.project, params, ctx.progress, getattr(ctx, "check_claim", None))
    _check_quality_next(ctx.project)
    return meta


def _check_quality_next(project: Project) -> None:
    """Start the quality check (duplicates, outliers: jobs/quality_job.py) once the map is
    built, when the images changed since the last one: the features it needs exist now, and the
    Images and Quality pages can warn about what it finds."""
    from ssl_core.jobs import worker
    from ssl_core.quality.compute import quality_keys
    from ssl_core.quality.report import load_report

    keys = quality_keys(project)
    if "duplicates" in load_report(project).stale_parts(keys):
        worker.launch_once(project, "quality", {"n_images": keys["duplicates"]["n_images"]},
                           unless_same="n_images")


def build_map(project: Project, params: dict[str, Any] | None = None,
              progress: Progress | None = None,
              check: Callable[[], None] | None = None) -> dict[str, Any]:
    """Everything the map job does; `progress` may raise (the worker's Cancelled) to stop;
    `check()` runs just before each file is published and may raise (a lost job claim)."""
    from ssl_core.latentmap.layout import LayoutConfig, compute_layout

    params = params or {}
    progress = progress or no_progress
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    progress(0.0, "loading images")
    images = ImageCollection(project).images()                                 # (N, H, W, C)
    if len(images) == 0:
        raise MapFailed("the project has no images yet: import some first")
    if params.get("provisional", True) and read_layout(project) is None:
        _provisional(project, images, progress, check)
    seconds["provisional"] = time.perf_counter() - t

    t = time.perf_counter()
    representation, features = project_features(project, images, scaled(progress, 0.02, 0.3))
    seconds["features"] = time.perf_counter() - t

    t = time.perf_counter()
    warm = bool(params.get("warm_start", True))
    inputs, projection = _vae_inputs(project, images, features, warm)         # pixels or (N, d)
    vae, vae_cfg, vae_warm = _vae(project, inputs, representation, params, warm)
    epochs = vae.planned_epochs(len(inputs))          # at least the VAE's minimum steps
    budget = float(params.get("vae_budget_s", 60.0))
    trained = {"epochs": 0.0}

    def on_step(p) -> None:  # TrainProgress after every step: report twice a second
        trained["epochs"] = p.step / max(1, p.total_steps) * epochs
        if p.step == 1 or p.elapsed_s - trained.get("reported", 0.0) >= _REPORT_EVERY_S:
            trained["reported"] = p.elapsed_s
            frac = max(p.fraction, p.elapsed_s / budget if budget > 0 else 0.0)
            progress(0.3 + 0.4 * min(1.0, frac), f"training the VAE: epoch "
                     f"{trained['epochs']:.1f} of {epochs:g} ({p.elapsed_s:.0f} s)")

    progress(0.3, "training the VAE" + (" (from the previous one)" if vae_warm else ""))
    vae.fit(inputs, callbacks=[on_step], time_budget_s=budget, warm_start=vae_warm)
    seconds["vae"] = time.perf_counter() - t

    t = time.perf_counter()
    latents = np.zeros((len(inputs), vae_cfg.latent_dim), np.float32)        # (N, latent_dim)
    for s in range(0, len(inputs), ENCODE_BATCH):
        progress(0.7 + 0.04 * s / len(inputs), f"encoding images {s:,} / {len(inputs):,}")
        latents[s:s + ENCODE_BATCH] = vae.transform(inputs[s:s + ENCODE_BATCH])
    seconds["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    previous = read_layout(project) if warm else None
    layout_cfg = LayoutConfig(**params.get("layout", {}))
    layout = compute_layout(latents, layout_cfg, init=previous,
                            progress=lambda f, msg: progress(0.74 + 0.24 * f, msg))  # (N, 2)
    seconds["layout"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(0.98, "saving the map")
    save_map(project, vae, latents, layout,
             extra=None if projection is None else {"projection.pt": _state_bytes(projection)},
             check=check)
    now = time.time()
    seconds["save"] = time.perf_counter() - t
    meta = {"n_images": len(images), "latent_dim": vae_cfg.latent_dim,
            "representation": representation, "provisional": False,
            "vae_epochs": round(trained["epochs"], 3), "vae_warm_start": vae_warm,
            "layout_warm_start": previous is not None, "created_at": now,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(now)),
            "vae_config": dataclasses.asdict(vae_cfg),
            "layout_config": dataclasses.asdict(layout_cfg)}
    meta["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    save_meta(project, meta, check)
    progress(1.0, f"map of {len(images):,} images ready")
    return meta


def _provisional(project: Project, images: np.ndarray, progress: Progress,
                 check: Callable[[], None] | None = None) -> None:
    """Write the provisional map (PCA of shrunk pixels) so the page can show it at once."""
    t = time.perf_counter()
    progress(0.01, f"a first map of {len(images):,} images")
    layout, latents = provisional_map(images)
    now = time.time()
    save_provisional(project, latents, layout, {
        "n_images": len(images), "latent_dim": latents.shape[1], "representation": "pixels (PCA)",
        "created_at": now, "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(now)),
        "seconds": {"provisional": round(time.perf_counter() - t, 3)}}, check)


def _vae_inputs(project: Project, images: np.ndarray, features: np.ndarray | None, warm: bool):
    """(what the VAE learns from, the feature projection or None): the images themselves in
    pixel mode; in feature mode the projected features (N, FEATURE_DIMS) float32, with the
    previous map's projection when a warm start can keep using it."""
    if features is None:
        return images, None
    from ssl_core.models.preprocessing import FeatureProjection

    projection = _previous_projection(project, features.shape[1]) if warm else None
    if projection is None:
        projection, z = FeatureProjection.fit(features, FEATURE_DIMS, seed=0)
    else:
        z = np.concatenate([projection(features[s:s + ENCODE_BATCH])
                            for s in range(0, len(features), ENCODE_BATCH)])
    return z.astype(np.float32), projection


def _vae(project: Project, inputs: np.ndarray, representation: str, params: dict, warm: bool):
    """(VAE, its config, warm-started?) for these inputs: the previous map's VAE when it can be
    fine-tuned with the same settings, else a new one."""
    from ssl_core.models.vae import VAE, VAEConfig

    given = {k: tuple(v) if isinstance(v, list) else v for k, v in params.get("vae", {}).items()}
    defaults = {} if representation == PIXELS else FEATURE_VAE
    cfg = VAEConfig(**{**defaults, **given})
    vae = _previous_vae(project, tuple(inputs.shape[1:]), cfg) if warm else None
    if vae is None:
        return VAE.from_config(cfg, random_state=int(params.get("seed", 0))), cfg, False
    vae.set_params(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})
    return vae, cfg, True


def _previous_vae(project: Project, input_shape: tuple[int, ...], cfg):
    """The project's saved VAE if it can be fine-tuned with `cfg` on inputs of `input_shape`
    (images (H, W, C) or vectors (d,)), else None."""
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
    return vae if same_net and tuple(vae.input_shape_) == tuple(input_shape) else None


def _previous_projection(project: Project, dim: int):
    """The feature projection the map's VAE was trained with, if there is one of this width."""
    import torch

    from ssl_core.models.preprocessing import projection_from_state

    path = vae_folder(project) / "projection.pt"
    try:
        projection = projection_from_state(torch.load(path, map_location="cpu",
                                                      weights_only=True))
    except Exception:      # missing, damaged or not a plain weights file: fit a new projection
        return None
    return projection if getattr(projection, "kind", "") == "features" and \
        len(projection.mean) == dim else None


def _state_bytes(projection) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(projection.state(), buffer)
    return buffer.getvalue()
