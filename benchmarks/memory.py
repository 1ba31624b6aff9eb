"""Memory and seconds of a large colour project: import, map and a default-method retrain.

    python -m benchmarks.photo_folder --out /tmp/photos          # 188 labelled photos
    python -m benchmarks.memory --n 20000 --photos /tmp/photos --work /tmp/mem20k \
        --out benchmarks/memory.jsonl

1. Synthesises `--n` PNG files from the photos (random crops of 60-100% of the area, flips,
   colour jitter; class subfolders kept as ground truth). Not measured.
2. Imports them (data/importer.py), builds the map (the map job: provisional map, features,
   feature VAE, UMAP) and retrains the default method on 3 labels per class (the train job),
   each in this process through the same code the app's worker runs, one JSON row per stage.
Each row: seconds; the peak resident memory (VmHWM); the peak of anonymous memory (RssAnon:
what the process allocated, without the file pages of the memory-mapped pixels and features,
which are page cache the kernel reclaims); the pixels' bytes; `beyond_pixels_mb` = peak RSS
minus the pixel bytes (an upper bound: it also counts pixel pages never read, as if they were
resident); and `peak_beyond_pixels_mb`, the figure the target (<= 2 GB) is about: the peak over
samples of the resident memory minus the resident pages of the pixel file's own mappings
(both summed from one read of /proc/self/smaps), i.e. everything the process holds besides the uint8 pixels themselves,
shared libraries and the features file included. A sampler thread reads /proc/self/status
(and smaps) every 0.1 s; VmHWM is reset between stages (/proc/self/clear_refs).

    --stages map,train      re-measure stages of a project imported by an earlier run
                            (--fresh-features deletes its stored features first)
Each stage runs in a process of its own, as the app's worker runs each job (a stage measured
after another in one process also carried the first one's memory: ONNX Runtime sessions,
numba's compiled UMAP).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.rows import append_rows, current_commit

LABELS_PER_CLASS = 3


def synthesise(photos: Path, out: Path, n: int, seed: int = 0, side: int = 128) -> None:
    """n PNGs in out/<class>/ made from the photos by crops, flips and colour jitter."""
    from PIL import Image, ImageEnhance, ImageOps

    rng = np.random.default_rng(seed)
    sources = sorted(p for p in photos.glob("*/*.png"))
    for k in range(n):
        src = sources[k % len(sources)]
        im = Image.open(src).convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
        im = im.convert("RGB")
        w, h = im.size
        f = np.sqrt(rng.uniform(0.6, 1.0))
        cw, ch = max(8, int(w * f)), max(8, int(h * f))
        x0, y0 = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        im = ImageOps.fit(im.crop((x0, y0, x0 + cw, y0 + ch)), (side, side))
        if rng.random() < 0.5:
            im = ImageOps.mirror(im)
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.7, 1.3))
        folder = out / src.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        im.save(folder / f"{k:06d}.png", compress_level=1)


class Sampler:
    """Peak VmHWM / RssAnon of this process, sampled by a thread."""

    def __init__(self, pixel_file: str = "images.npy"):
        self.peak_anon = self.peak_beyond = 0
        self.pixel_file = pixel_file
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")     # reset VmHWM to the current RSS
        except OSError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_rss = _status()["VmHWM"]

    def _run(self):
        while not self._stop.wait(0.1):
            self.peak_anon = max(self.peak_anon, _status()["RssAnon"])
            total, pixels = _rss_split(self.pixel_file)
            self.peak_beyond = max(self.peak_beyond, total - pixels)


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _rss_split(suffix: str) -> tuple[int, int]:
    """(resident bytes of all mappings, resident bytes of the mappings of files whose path ends
    with `suffix`), from one read of /proc/self/smaps: one snapshot, so pages the kernel
    reclaims between two reads cannot make the difference look larger than it is."""
    total = pixels = 0
    inside = False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):            # a mapping's header line
                inside = line.rstrip().endswith(suffix)
            elif head == "Rss:":
                size = int(line.split()[1]) * 1024
                total += size
                pixels += size if inside else 0
    return total, pixels


def stage(name: str, fn, rows: list, common: dict, pixel_bytes_fn) -> None:
    t0 = time.perf_counter()
    with Sampler() as s:
        result = fn()
    pixels = pixel_bytes_fn()
    row = {**common, "stage": name, "seconds": round(time.perf_counter() - t0, 1),
           "peak_rss_mb": round(s.peak_rss / 2**20), "peak_anon_mb": round(s.peak_anon / 2**20),
           "pixels_mb": round(pixels / 2**20),
           "beyond_pixels_mb": round((s.peak_rss - pixels) / 2**20),
           "peak_beyond_pixels_mb": round(s.peak_beyond / 2**20),
           "within_target": bool(s.peak_beyond <= 2 * 2**30), **(result or {})}
    rows.append(row)
    print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--photos", required=True, help="python -m benchmarks.photo_folder --out")
    parser.add_argument("--work", required=True, help="a scratch folder (kept for reruns)")
    parser.add_argument("--budget-s", type=float, default=180.0, help="the retrain's budget")
    parser.add_argument("--out", help="append the rows to this JSONL file")
    parser.add_argument("--stages", default="import,map,train",
                        help="which stages to run (map,train: on the project already imported)")
    parser.add_argument("--fresh-features", action="store_true",
                        help="delete the project's stored features first (the map recomputes them)")
    args = parser.parse_args(argv)
    stages = args.stages.split(",")
    if len(stages) > 1:                  # one process per stage, as the app's worker runs jobs
        for name in stages:
            cmd = [sys.executable, "-m", "benchmarks.memory", "--n", str(args.n), "--photos",
                   args.photos, "--work", args.work, "--budget-s", str(args.budget_s),
                   "--stages", name, *(["--out", args.out] if args.out else []),
                   *(["--fresh-features"] if args.fresh_features and name == "map" else [])]
            if subprocess.run(cmd, cwd=Path(__file__).resolve().parent.parent).returncode:
                return 1
        return 0
    work = Path(args.work).expanduser()
    src = work / "images"
    if not (src / ".done").is_file():
        print(f"synthesising {args.n:,} images ...", file=sys.stderr, flush=True)
        synthesise(Path(args.photos).expanduser(), src, args.n)
        (src / ".done").write_text("ok")
    os.environ["LATENTLAB_HOME"] = str(work / "home")

    from ssl_core.data.collection import ImageCollection
    from ssl_core.data.importer import import_source
    from ssl_core.data.sources import SourceSpec
    from ssl_core.jobs import records as jobs
    from ssl_core.jobs.worker import run_job
    from ssl_core.labeling.classes import add_class, list_classes
    from ssl_core.labeling.label_log import set_labels
    from ssl_core.project.folder import Project

    project = Project.named(f"mem{args.n}")
    if ("import" in stages) == bool(ImageCollection(project).n_images):
        raise SystemExit(f"{project.root}: import into an empty project, or --stages map,train "
                         "on an imported one")
    if args.fresh_features:
        import shutil
        shutil.rmtree(project.root / "features", ignore_errors=True)
    commit = current_commit()
    common = {"n_images": args.n, "commit": commit, "load_avg_start": os.getloadavg()[0]}
    rows: list[dict] = []
    images = ImageCollection(project)

    def pixel_bytes() -> int:
        shape = images.shape
        return images.n_images * int(np.prod(shape)) if shape else 0

    def do_import():
        report = import_source(project, SourceSpec("folder", path=str(src)))
        return {"imported": report.imported}

    def job(kind: str, params: dict):
        job_id = jobs.create_job(project.store, kind, params)
        run_job(project, job_id)
        done = jobs.get_job(project.store, job_id)
        if done.status is not jobs.JobStatus.SUCCEEDED:
            raise SystemExit(f"{kind} job {done.status.value}: {done.error}")
        return done.result

    def do_map():
        meta = job("map", {})
        return {"seconds_by_step": meta["seconds"], "representation": meta["representation"]}

    def do_train():
        gt = images.ground_truth()
        rng = np.random.default_rng(0)
        existing = {c.name: c.id for c in list_classes(project.store)}     # a re-run's classes
        for k, name in enumerate(gt.class_names):
            ids = rng.choice(np.flatnonzero((gt.labels == k) & ~gt.is_test), LABELS_PER_CLASS,
                             replace=False)
            cid = existing[name] if name in existing else add_class(project.store, name).id
            set_labels(project.store, ids.tolist(), cid)
        # cold: a re-run must not reuse the previous run's graph (a first retrain has none)
        result = job("train", {"method": "default", "budget_s": args.budget_s,
                               "compare_baseline": False, "warm_start": False})
        return {"test_accuracy": result["test"]["value"], "budget_s": args.budget_s,
                "warm_start": False}

    for name, fn in (("import", do_import), ("map", do_map), ("train", do_train)):
        if name in stages:
            stage(name, fn, rows, common, pixel_bytes)
    append_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
