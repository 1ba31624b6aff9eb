"""Import: any source -> one uint8 array (N, H, W, C) in the project, plus an import report.

Files are read twice: a cheap header-only pass picks the size and channel count (by default the
most common ones, so one odd image does not resize a whole collection), then a decoding pass
writes each image into a memory-mapped array. Bad files (corrupt, truncated, empty, not images,
decompression bombs) are skipped and listed in the report; they never stop an import.

Writes are ordered so that a crash at any point loses nothing already stored: the new array is
written to a temporary file and swapped in with os.replace, then the image rows are committed;
until that commit the old rows still describe a valid prefix of the file (see collection.py).

Concurrency: an import only ever appends. One import per project runs at a time (import_lock.py:
an flock held from reading the image count to committing the rows; a second import is refused
with ImportBusy, or waits with `wait=True`), so the rows already committed always describe the
same bytes, in every later version of images.npy. The new file has a name of its own (pid and a
random part, project/files.py), is created exclusively (never truncating anyone's file) and is
removed on any failure. Before it is swapped in, `check_append` verifies, as errors that hold
under `python -O`, that the rows about to be committed and the pixels written agree. The old
images.npy is renamed over, never truncated or written in place: a reader that memory-mapped it
keeps reading the same bytes (a truncated mapped file kills its readers with SIGBUS).

Why this module is long: it is the whole import pipeline (configuration, report, the array and
file paths, the append and its consistency checks), each part used only here.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ssl_core.data.collection import ImageCollection
from ssl_core.data.decode import ImageError, ImageLimits, decode_image, probe_image
from ssl_core.data.import_lock import ImportBusy as ImportBusy  # raised by import_source
from ssl_core.data.import_lock import import_lock, remove_stale_temporaries
from ssl_core.data.pixel_file import pixel_file_shape, release, write_pixel_file
from ssl_core.data.sources import ArrayData, FileData, SourceSpec, load_source
from ssl_core.data.zip_archive import ArchiveLimits
from ssl_core.progress import Progress, no_progress, scaled
from ssl_core.project.errors import ProjectError
from ssl_core.project.files import atomic_path
from ssl_core.project.folder import Project
from ssl_core.threads import available_cpus

_THREADS = min(4, available_cpus())  # PIL releases the GIL while decoding
_DECODE_WINDOW = 256        # files decoded per batch of the thread pool (bounds memory)


class ImportFailed(RuntimeError):
    """Nothing could be imported; the message is the report's summary."""


class ImportInconsistent(ImportFailed, ProjectError):
    """The rows an import was about to commit and the pixels it wrote disagree (or the project
    changed under it); nothing was swapped in or committed. A ProjectError: one line for the
    CLI and the app."""


@dataclass(frozen=True)
class ImportConfig:
    size: tuple[int, int] | None = None   # (H, W) to store; None = the most common size...
    max_side: int = 128                   # ...scaled to this longer side: stored as they come,
                                          # 12-Mpx photos give rows no model here can take
    channels: int | None = None           # 1 or 3; None = the most common channel count
    max_files: int = 200_000              # refuse folders / archives with more files
    image_limits: ImageLimits = ImageLimits()
    archive_limits: ArchiveLimits = ArchiveLimits()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "ImportConfig":
        d = dict(d or {})
        if d.get("size") is not None:
            d["size"] = tuple(int(v) for v in d["size"])
        if "image_limits" in d:
            d["image_limits"] = ImageLimits(**d["image_limits"])
        if "archive_limits" in d:
            d["archive_limits"] = ArchiveLimits(**d["archive_limits"])
        return cls(**d)


@dataclass
class ImportReport:
    source: str
    imported: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    size: tuple[int, int] | None = None
    channels: int | None = None
    first_id: int | None = None
    n_with_ground_truth: int = 0
    ground_truth_classes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, max_listed: int = 20) -> str:
        lines = [f"Imported {self.imported:,} images from {self.source}"
                 + (f" as {self.size[0]}x{self.size[1]}x{self.channels}" if self.size else "")
                 + f" in {self.seconds:.1f} s."]
        if self.n_with_ground_truth:
            lines.append(f"{self.n_with_ground_truth:,} come with ground truth in "
                         f"{len(self.ground_truth_classes)} classes (kept for evaluation only).")
        if self.skipped:
            n = len(self.skipped)
            lines.append(f"Skipped {n:,} file{'' if n == 1 else 's'}" + (":" if max_listed else "."))
            lines += [f"  {s['path']}: {s['reason']}" for s in self.skipped[:max_listed]]
            if max_listed and len(self.skipped) > max_listed:
                lines.append(f"  ... and {len(self.skipped) - max_listed:,} more")
        if self.imported == 0:
            lines.append("No image could be imported.")
        return "\n".join(lines)


def import_source(project: Project, spec: SourceSpec, config: ImportConfig = ImportConfig(),
                  progress: Progress | None = None, wait: bool = False) -> ImportReport:
    """Load a source, normalise it and append it to the project's images. Another import into
    the project running: raise ImportBusy, or with `wait` wait for it (saying so in `progress`,
    which may raise to stop waiting)."""
    progress = progress or no_progress
    with import_lock(project, spec.label, wait, waiting=lambda message: progress(0.0, message)):
        remove_stale_temporaries(project)
        return _import_locked(project, spec, config, progress)


def _import_locked(project: Project, spec: SourceSpec, config: ImportConfig,
                   progress: Progress) -> ImportReport:
    t0 = time.perf_counter()
    progress(0.0, f"opening {spec.label}")
    data = load_source(spec, config.archive_limits, config.max_files,
                       config.image_limits.max_file_bytes, progress=scaled(progress, 0.0, 0.3))
    report = ImportReport(source=spec.label)
    store = ImageCollection(project)
    fixed = store.shape  # later imports must match the project's existing image shape
    if isinstance(data, ArrayData):
        shape = fixed or (*(config.size or data.images.shape[1:3]),
                          config.channels or data.images.shape[3])
        progress(0.6, f"writing {len(data.images):,} images")

        def fill(rows: np.ndarray) -> np.ndarray:                 # rows (n, H, W, C) of the file
            step = 4096
            for s in range(0, len(rows), step):
                rows[s:s + step] = _conform_arrays(data.images[s:s + step], shape)
            return np.ones(len(rows), bool)

        _append(project, store, spec.label, len(data.images), shape, fill, data.names, data.gt,
                data.is_test, data.class_names, report, t0)
    else:
        report.skipped += [asdict(s) for s in data.skipped]
        _import_files(project, store, spec.label, data, config, fixed, report, progress, t0)
    if not report.imported:  # otherwise _append timed it when it saved the report
        report.seconds = time.perf_counter() - t0
    progress(1.0, f"imported {report.imported:,} images")
    return report


def _conform_arrays(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Resize / change channels of ready arrays only when the target differs."""
    if images.shape[1:] == tuple(shape):
        return images
    h, w, c = shape
    out = np.empty((len(images), h, w, c), np.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
        pil = ImageOps.fit(pil, (w, h), Image.Resampling.BILINEAR).convert("L" if c == 1 else "RGB")
        out[i] = np.asarray(pil).reshape(h, w, c)
    return out


def _import_files(project, store, label, data: FileData, config, fixed, report, progress, t0):
    items = data.items
    if not items:
        return

    def probe(item):
        try:
            return probe_image(item.read(), config.image_limits)
        except (ImageError, OSError, ValueError) as err:
            return err

    infos = []
    with ThreadPoolExecutor(_THREADS) as pool:
        for i, info in enumerate(pool.map(probe, items)):
            infos.append(info)
            if i % 500 == 0:
                progress(0.3 + 0.2 * i / len(items), f"checking {i:,} / {len(items):,} files")
    good = [(item, info) for item, info in zip(items, infos) if not isinstance(info, Exception)]
    report.skipped += [{"path": item.name, "reason": str(info)}
                       for item, info in zip(items, infos) if isinstance(info, Exception)]
    if not good:
        return
    if fixed:
        h, w, c = fixed
    else:
        h, w = config.size or common_size([(i.height, i.width) for _, i in good], config.max_side)
        c = config.channels or Counter(i.channels for _, i in good).most_common(1)[0][0]

    def decode(pair):
        item, _ = pair
        try:
            return decode_image(item.read(), (h, w), c, config.image_limits)
        except (ImageError, OSError, ValueError) as err:
            return err

    def fill(rows: np.ndarray) -> np.ndarray:
        """Decode every good file straight into its row of the new file (n_good, H, W, C),
        a few at a time (bounded: no list of decoded images)."""
        keep = np.zeros(len(good), bool)
        with ThreadPoolExecutor(_THREADS) as pool:
            for s in range(0, len(good), _DECODE_WINDOW):
                for i, out in enumerate(pool.map(decode, good[s:s + _DECODE_WINDOW]), s):
                    if isinstance(out, Exception):
                        report.skipped.append({"path": good[i][0].name, "reason": str(out)})
                    else:
                        rows[i], keep[i] = out, True
                release(rows, s, min(s + _DECODE_WINDOW, len(good)))
                progress(0.5 + 0.45 * min(1.0, (s + _DECODE_WINDOW) / len(good)),
                         f"decoding {min(s + _DECODE_WINDOW, len(good)):,} / {len(good):,} images")
        return keep

    _append(project, store, label, len(good), (h, w, c), fill, [it.name for it, _ in good],
            np.array([it.gt for it, _ in good], np.int64),
            np.array([it.is_test for it, _ in good], bool), data.class_names, report, t0)


def common_size(sizes: list[tuple[int, int]], max_side: int) -> tuple[int, int]:
    """The (H, W) to store a collection at: its most common size when at least half the images
    have it (a dataset of one size, with a few odd ones out), scaled down to `max_side`. A
    collection of mixed sizes (photos: 188 images in 180 sizes) gets a square of its median
    longer side, at most `max_side`: the most common size there may be a thumbnail that would
    shrink every photo (50x46 won a vote of 3 in one real folder)."""
    size, count = Counter(sizes).most_common(1)[0]
    if count * 2 >= len(sizes):
        return fit_side(size, max_side)
    side = min(max_side, int(np.median([max(h, w) for h, w in sizes])))
    return side, side


def fit_side(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(H, W) scaled down, aspect kept, so that its longer side is at most `max_side`."""
    h, w = size
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def _append(project: Project, store: ImageCollection, source_label: str, n_new: int,
            shape: tuple[int, int, int], fill, names: list[str], gt: np.ndarray,
            is_test: np.ndarray, class_names: list[str], report: ImportReport, t0: float) -> None:
    """Append n_new images of `shape` (H, W, C) to images.npy, written by `fill` straight into
    the new file (see pixel_file.write_pixel_file), and their rows to the database."""
    report.size, report.channels = tuple(shape[:2]), int(shape[2])
    if n_new == 0:
        return
    old = store.images()
    n_old = len(old)
    gt, is_test = np.asarray(gt), np.asarray(is_test)
    with atomic_path(project.images_path, f"{n_new:,} imported images") as tmp:
        keep = write_pixel_file(tmp, old, n_new, shape, fill)   # full disk, read-only: old stays
        check_append(n_old=n_old, n_now=store.n_images, old_shape=old.shape[1:] if n_old else None,
                     shape=shape, file_shape=pixel_file_shape(tmp), keep=keep, names=names,
                     gt=gt, is_test=is_test, n_classes=len(class_names))  # raises: tmp removed
    names = [name for name, k in zip(names, keep) if k]
    gt, is_test = gt[keep], is_test[keep]
    n_new = len(names)
    report.ground_truth_classes = list(class_names) if (gt >= 0).any() else []
    report.n_with_ground_truth = int((gt >= 0).sum())
    if n_new == 0:
        return
    with project.store.write() as conn:
        gt_ids = []
        for name in class_names:
            conn.execute("INSERT OR IGNORE INTO gt_classes (name) VALUES (?)", (name,))
            gt_ids.append(conn.execute("SELECT id FROM gt_classes WHERE name = ?",
                                       (name,)).fetchone()[0])
        if conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] != n_old:   # see the lock
            raise ImportInconsistent("another import changed this project at the same time: "
                                     "import again when it has finished")
        conn.executemany(
            "INSERT INTO images (id, name, source, gt, split) VALUES (?, ?, ?, ?, ?)",
            ((n_old + i, names[i], source_label, gt_ids[gt[i]] if gt[i] >= 0 else None,
              "test" if is_test[i] else "train") for i in range(n_new)))
        report.imported, report.first_id = n_new, n_old
        report.seconds = time.perf_counter() - t0  # saved below, so timed now
        conn.execute("INSERT INTO imports (ts, source, report) VALUES (?, ?, ?)",
                     (time.time(), source_label, json.dumps(asdict(report))))


def check_append(*, n_old: int, n_now: int, old_shape: tuple[int, ...] | None,
                 shape: tuple[int, int, int], file_shape: tuple[int, ...], keep: np.ndarray,
                 names: list[str], gt: np.ndarray, is_test: np.ndarray, n_classes: int) -> None:
    """Every check made before a new images.npy is swapped in, as ImportInconsistent (never
    `assert`, which `python -O` removes). n_old: the committed rows the new file starts with;
    n_now: the committed rows now; file_shape: the new file's (N, H, W, C); keep: which of the
    len(names) new images were written ((n,) bool); gt, is_test: one per new image."""
    keep = np.asarray(keep)
    n = len(names)
    problems = []
    if n_now != n_old:
        problems.append(f"the project has {n_now:,} images, {n_old:,} when this import began "
                        "(another import at the same time)")
    if len(shape) != 3 or min(shape) < 1:
        problems.append(f"image shape {tuple(shape)} is not (H, W, C)")
    if old_shape is not None and tuple(old_shape) != tuple(shape):
        problems.append(f"new images are {tuple(shape)}, the project's are {tuple(old_shape)}")
    if tuple(file_shape) != (n_old + n, *shape):
        problems.append(f"the pixel file holds {tuple(file_shape)}, "
                        f"expected {(n_old + n, *shape)}")
    if keep.dtype != bool or keep.shape != (n,):
        problems.append(f"{keep.shape} {keep.dtype} written-image flags for {n:,} images")
    if len(gt) != n or len(is_test) != n:
        problems.append(f"{len(gt):,} ground truths and {len(is_test):,} splits for {n:,} images")
    elif n and not ((np.asarray(gt) >= -1) & (np.asarray(gt) < n_classes)).all():
        problems.append(f"ground truth outside the {n_classes} classes")
    if problems:
        raise ImportInconsistent("import stopped, nothing was changed: " + "; ".join(problems))


def last_import_report(project: Project) -> ImportReport | None:
    with project.store.read() as conn:
        row = conn.execute("SELECT report FROM imports ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    d = json.loads(row["report"])
    d["size"] = tuple(d["size"]) if d.get("size") else None
    return ImportReport(**d)


