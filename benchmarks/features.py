"""Feature extraction speed: images/s of the pretrained extractors, as the map and train jobs run
them, with the fidelity of the fast path against eager PyTorch.

    python -m benchmarks.features --photos /tmp/photos --out benchmarks/features.jsonl

The photos (python -m benchmarks.photo_folder) are imported as the app imports them (128x128x3),
repeated to `--n` images. For each input size and backend ('onnxruntime', the default, and
'torch', eager PyTorch), `--reps` timed passes, interleaved (A, B, A, B, ...) so that load
from other processes hits both alike; the first, untimed pass builds (and caches) the exported
graph. One JSON row per pass, with the load average before it. Fidelity: the mean and least
cosine similarity of the fast features to eager PyTorch's, per size.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.rows import append_rows, current_commit


def photo_array(photos: str, n: int) -> np.ndarray:
    """The photos imported as the app does, repeated to n images (N, 128, 128, 3) uint8."""
    from ssl_core.data.collection import ImageCollection
    from ssl_core.data.importer import import_source
    from ssl_core.data.sources import SourceSpec
    from ssl_core.project.folder import Project

    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(tmp)
        import_source(project, SourceSpec("folder", path=photos))
        images = np.array(ImageCollection(project).images())
    return images[np.arange(n) % len(images)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.features", description=__doc__)
    parser.add_argument("--photos", required=True)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--sizes", default="224,192,160,128")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--backends", default="onnxruntime,torch")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    from ssl_core.features.extractors import efficientnet_extractor
    from ssl_core.threads import available_cpus

    images = photo_array(args.photos, args.n)
    cpu = cpu_name()
    commit = current_commit()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        extractors = {b: efficientnet_extractor("lite0", size, "auto" if b == "onnxruntime"
                                                else "torch") for b in args.backends.split(",")}
        reference = {b: e.transform(images[:64]) for b, e in extractors.items()}   # warm-up
        if {"onnxruntime", "torch"} <= set(reference):
            a, b = reference["onnxruntime"], reference["torch"]
            cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            fidelity = {"cosine_mean": round(float(cos.mean()), 6),
                        "cosine_min": round(float(cos.min()), 6)}
        else:
            fidelity = {}
        for rep in range(args.reps):
            for backend, extractor in extractors.items():
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                extractor.transform(images)
                seconds = time.perf_counter() - t0
                row = {"benchmark": "features", "extractor": "efficientnet-lite0", "size": size,
                       "backend": backend, "rep": rep, "n_images": len(images),
                       "seconds": round(seconds, 2), "images_per_s": round(len(images) / seconds, 1),
                       "load_avg_before": round(load, 2), "cpus": available_cpus(),
                       "cpu": cpu, "commit": commit, **(fidelity if backend == "onnxruntime" else {})}
                rows.append(row)
                print(json.dumps(row), flush=True)
    append_rows(args.out, rows)
    return 0


def cpu_name() -> str:
    """The CPU model and the vector extensions int8/bf16 inference depends on (speeds differ
    by machine: CI and development VMs are not always the same kind)."""
    model, flags = "unknown CPU", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "unknown CPU":
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    ext = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model} ({', '.join(ext) or 'no AVX2'})"


if __name__ == "__main__":
    sys.exit(main())
