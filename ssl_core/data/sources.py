"""Data sources: where images come from, before they are normalised and stored.

A source yields either ready arrays (the built-in digits and the public datasets) or a list of
files to decode (a folder, an uploaded zip). Ground truth that comes with a source (dataset
labels, class subfolders) travels beside the images for evaluation only — the importer stores
it apart from the user's labels, so training never sees it — and every image gets a place in a
fixed evaluation split: the publisher's test set where there is one, otherwise a stratified
20% chosen by a hash of the file name (stable when more images are added later).
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ssl_core.data.public_datasets import (
    IDX_DATASETS,
    DatasetUnavailable,
    load_cifar10,
    load_idx_dataset,
)
from ssl_core.data.zip_archive import (
    ArchiveError,
    ArchiveLimits,
    Skipped,
    common_root,
    iter_zip,
)
from ssl_core.progress import Progress

SOURCE_KINDS = ("digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "folder", "zip")
_IGNORED = {".ds_store", "thumbs.db", "desktop.ini"}
_SPLIT_DIRS = {"train": False, "training": False, "test": True, "testing": True,
               "val": True, "valid": True, "validation": True}


class SourceError(RuntimeError):
    """A source that cannot be read at all; the message tells the user what to do."""


@dataclass(frozen=True)
class SourceSpec:
    kind: str                     # one of SOURCE_KINDS
    path: str | None = None       # folder or .zip path for 'folder' / 'zip'
    data_root: str | None = None  # torchvision-style data root for the public datasets
    download: bool = True         # public datasets: fetch missing files from the mirrors

    @property
    def label(self) -> str:
        """Short provenance string stored with every image."""
        if self.kind in ("folder", "zip"):
            return f"{self.kind}:{Path(self.path or '').name}"
        return self.kind


@dataclass
class ArrayData:
    images: np.ndarray     # (N, H, W, C) uint8
    gt: np.ndarray         # (N,) int64 ground truth index into class_names, -1 = none
    is_test: np.ndarray    # (N,) bool: the fixed evaluation split
    names: list[str]
    class_names: list[str]


@dataclass
class FileItem:
    name: str                     # path relative to the folder / archive
    gt: int                       # index into FileData.class_names, -1 = none
    is_test: bool
    read: Callable[[], bytes]     # called once per pass; folders re-read, zips hold bytes


@dataclass
class FileData:
    items: list[FileItem]
    class_names: list[str]
    skipped: list[Skipped] = field(default_factory=list)


def load_source(spec: SourceSpec, archive_limits: ArchiveLimits = ArchiveLimits(),
                max_files: int = 200_000, max_file_bytes: int = 64 * 2**20,
                progress: Progress | None = None) -> ArrayData | FileData:
    if spec.kind not in SOURCE_KINDS:
        raise SourceError(f"unknown source {spec.kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
    if spec.kind == "digits":
        return load_digits()
    if spec.kind in IDX_DATASETS or spec.kind == "cifar10":
        if not spec.data_root:
            raise SourceError(f"{spec.kind} needs a data root (--data-root)")
        try:
            loaded = (load_cifar10(spec.data_root, spec.download, progress) if spec.kind == "cifar10"
                      else load_idx_dataset(spec.kind, spec.data_root, spec.download, progress))
        except DatasetUnavailable as err:
            raise SourceError(str(err)) from err
        n_train = int((~loaded.is_test).sum())
        names = [f"train/{i}" for i in range(n_train)] + \
                [f"test/{i}" for i in range(len(loaded.images) - n_train)]
        return ArrayData(loaded.images, loaded.labels, loaded.is_test, names, loaded.classes)
    if not spec.path:
        raise SourceError(f"the {spec.kind} source needs a path (--path)")
    if spec.kind == "folder":
        return load_folder(Path(spec.path), max_files, max_file_bytes)
    return load_zip(Path(spec.path), archive_limits, max_files)


def load_digits() -> ArrayData:
    """scikit-learn's 1,797 8x8 digits (bundled, offline). Values 0..16 are scaled to 0..255;
    the evaluation split is a fixed stratified 20%, the same one the benchmark uses."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # (1797, 8, 8, 1)
    gt = bunch.target.astype(np.int64)
    _, test_idx = train_test_split(np.arange(len(gt)), test_size=0.2, stratify=gt, random_state=0)
    is_test = np.zeros(len(gt), bool)
    is_test[test_idx] = True
    return ArrayData(images, gt, is_test, [f"digits/{i}" for i in range(len(gt))],
                     [str(d) for d in range(10)])


def hash_split(name: str) -> bool:
    """A stable 1-in-5 evaluation split from the file name (same answer on every import)."""
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).digest()[0] % 5 == 0


def _is_junk(rel: PurePosixPath) -> bool:
    return (any(part.startswith(".") or part == "__MACOSX" for part in rel.parts)
            or rel.name.lower() in _IGNORED)


def _ground_truth(rels: list[PurePosixPath]) -> tuple[list[int], list[bool], list[str]]:
    """Class subfolders become ground truth; files at the top level are unlabeled.
    A layout train/<class>/..., test/<class>/... keeps the folder's own split."""
    split_layout = bool(rels) and all(len(r.parts) >= 3 and r.parts[0].lower() in _SPLIT_DIRS
                                      for r in rels)
    depth = 1 if split_layout else 0
    class_names = sorted({r.parts[depth] for r in rels if len(r.parts) > depth + 1})
    index = {c: i for i, c in enumerate(class_names)}
    gts, tests = [], []
    for r in rels:
        gts.append(index[r.parts[depth]] if len(r.parts) > depth + 1 else -1)
        tests.append(_SPLIT_DIRS[r.parts[0].lower()] if split_layout else hash_split(str(r)))
    return gts, tests, class_names


def load_folder(root: Path, max_files: int, max_file_bytes: int) -> FileData:
    root = root.expanduser()
    if not root.is_dir():
        raise SourceError(f"{root} is not a folder")
    rels: list[PurePosixPath] = []
    skipped: list[Skipped] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fname in sorted(filenames):
            full = Path(dirpath) / fname
            rel = PurePosixPath(full.relative_to(root).as_posix())
            if _is_junk(rel):
                continue
            if full.is_symlink() or not full.is_file():
                skipped.append(Skipped(str(rel), "not a regular file (symlink or device)"))
                continue
            rels.append(rel)
            if len(rels) > max_files:
                raise SourceError(f"{root} holds more than {max_files:,} files (the file-count "
                                  f"limit); import a smaller folder or raise the limit")
    gts, tests, class_names = _ground_truth(rels)

    def reader(path: Path) -> Callable[[], bytes]:
        def read() -> bytes:
            size = path.stat().st_size
            if size > max_file_bytes:
                raise ValueError(f"file too large: {size / 2**20:.1f} MB exceeds "
                                 f"{max_file_bytes / 2**20:.0f} MB")
            return path.read_bytes()
        return read

    items = [FileItem(str(r), g, t, reader(root / r)) for r, g, t in zip(rels, gts, tests)]
    return FileData(items, class_names, skipped)


def load_zip(path: Path, limits: ArchiveLimits, max_files: int) -> FileData:
    """Every member of a (possibly nested) zip, read through the archive guards."""
    skipped: list[Skipped] = []
    members = []
    try:
        for member in iter_zip(path, limits, skipped):
            members.append(member)
            if len(members) > max_files:
                raise SourceError(f"{path.name} holds more than {max_files:,} files (the "
                                  f"file-count limit); split it or raise the limit")
    except ArchiveError as err:
        raise SourceError(f"{path.name}: {err}") from err
    prefix = common_root([m.path for m in members])
    rels = [PurePosixPath(m.path[len(prefix):]) for m in members]
    keep = [i for i, r in enumerate(rels) if not _is_junk(r)]
    rels = [rels[i] for i in keep]
    gts, tests, class_names = _ground_truth(rels)
    items = [FileItem(str(r), g, t, (lambda data=members[i].data: data))
             for i, r, g, t in zip(keep, rels, gts, tests)]
    return FileData(items, class_names, skipped)
