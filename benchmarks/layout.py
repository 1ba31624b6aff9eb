"""Time the map pipeline on a public dataset; prints one JSON line.

    python -m benchmarks.layout --dataset mnist --data-root /work/shared/data

Stages: load, VAE training (time budget), encoding, then the layout of the latents in fresh
processes — as the map job runs it: `cold` with an empty numba cache (the first map on a
machine compiles umap-learn), `warm` with the cache that run left (every later map), and
`warm_start` (a rebuild from the previous layout, same latents: how far points move, in units
of the layout's radius ~1). Layout seconds include importing umap. Quality is the 2-D kNN
label agreement (`layout.layout_quality`) with the dataset's labels.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _layout_child(latents_path: str, out_path: str) -> None:
    """In a fresh process: a cold layout, then a warm-started one; timings to out_path."""
    t = time.perf_counter()
    from ssl_core.latentmap.layout import compute_layout

    z = np.load(latents_path, allow_pickle=False)
    xy = compute_layout(z)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    xy2 = compute_layout(z, init=xy)
    warm_seconds = time.perf_counter() - t
    np.save(out_path + ".npy", xy)
    Path(out_path).write_text(json.dumps({
        "seconds": seconds, "warm_start_seconds": warm_seconds,
        "warm_start_mean_shift": float(np.linalg.norm(xy2 - xy, axis=1).mean())}))


def _run_child(latents_path: str, cache_dir: str, out: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    subprocess.run([sys.executable, "-m", "benchmarks.layout", "--child", latents_path, out],
                   check=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(Path(out).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layout", description=__doc__)
    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist or digits")
    parser.add_argument("--data-root", default=None, help="folder with the torchvision files")
    parser.add_argument("--vae-budget", type=float, default=60.0, help="VAE seconds")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _layout_child(*args.child)
        return 0

    from ssl_core.data.sources import SourceSpec, load_source
    from ssl_core.latentmap.layout import layout_quality
    from ssl_core.models.vae import VAE

    result: dict = {"dataset": args.dataset, "load_avg_start": os.getloadavg()[0]}
    t = time.perf_counter()
    data = load_source(SourceSpec(args.dataset, data_root=args.data_root, download=False))
    images = data.images                                                     # (N, H, W, C)
    result.update(n_images=len(images), load_s=time.perf_counter() - t)
    t = time.perf_counter()
    steps = []
    vae = VAE().fit(images, callbacks=[lambda p: steps.append(p.step)],
                    time_budget_s=args.vae_budget)
    result.update(vae_s=time.perf_counter() - t,
                  vae_epochs=len(steps) * min(256, len(images)) / len(images))
    t = time.perf_counter()
    latents = vae.transform(images)                                          # (N, 16)
    result["encode_s"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="layout-bench-") as tmp:
        z_path = os.path.join(tmp, "latents.npy")
        np.save(z_path, latents)
        cache = os.path.join(tmp, "numba-cache")
        cold = _run_child(z_path, cache, os.path.join(tmp, "cold.json"))
        warm = _run_child(z_path, cache, os.path.join(tmp, "warm.json"))
        xy = np.load(os.path.join(tmp, "warm.json.npy"), allow_pickle=False)
    result.update(layout_cold_numba_s=cold["seconds"], layout_warm_numba_s=warm["seconds"],
                  layout_warm_start_s=warm["warm_start_seconds"],
                  warm_start_mean_shift=warm["warm_start_mean_shift"],
                  layout_quality=layout_quality(xy, data.gt),
                  latent_quality=_latent_quality(latents, data.gt),
                  load_avg_end=os.getloadavg()[0])
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


def _latent_quality(latents: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """The same kNN label agreement in the latent space: the ceiling the map is judged by."""
    from ssl_core.neighbours import knn

    nb, _ = knn(latents, k)
    return float((labels[nb] == labels[:, None]).mean())


if __name__ == "__main__":
    sys.exit(main())
