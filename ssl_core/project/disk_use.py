"""How much disk a project takes, by part: images, features, runs' models, the map, the
database and the rest. Cheap enough to show on every page load: one os.scandir walk, sizes
from the directory entries' stat (no file is opened); a file that vanishes meanwhile (a job
replacing it) counts as 0."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ssl_core.project.folder import Project

PARTS = ("images", "features", "runs", "map", "database", "other")
_TOP = {"images.npy": "images", "uploads": "images", "features": "features",
        "predictions.npz": "runs", "latents.npy": "map", "layout.npy": "map", "map.json": "map",
        "project.db": "database", "project.db-wal": "database", "project.db-shm": "database"}


@dataclass(frozen=True)
class DiskUse:
    bytes_by_part: dict[str, int]     # every name in PARTS
    bytes_by_run: dict[int, int]      # run id -> size of models/run-<id>/

    @property
    def total(self) -> int:
        return sum(self.bytes_by_part.values())


def tree_bytes(path: str | os.PathLike) -> int:
    """Apparent size of a file, or of every file under a folder (links not followed)."""
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            return os.lstat(path).st_size
    except OSError:
        return 0
    total = 0
    stack = [os.fspath(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def run_folder_id(name: str) -> int | None:
    """'run-12' -> 12; None for any other name (temporary folders, 'vae', ...)."""
    if name.startswith("run-") and name[4:].isdigit():
        return int(name[4:])
    return None


def disk_use(project: Project) -> DiskUse:
    parts = dict.fromkeys(PARTS, 0)
    runs: dict[int, int] = {}
    try:
        entries = list(os.scandir(project.root))
    except OSError:
        return DiskUse(parts, runs)
    for entry in entries:
        if entry.name == "models" and entry.is_dir(follow_symlinks=False):
            for sub in _scan(Path(entry.path)):
                size = tree_bytes(sub.path)
                run_id = run_folder_id(sub.name)
                if run_id is not None:
                    runs[run_id] = size
                parts["runs" if run_id is not None else "map" if sub.name == "vae" else "other"] += size
            continue
        parts[_TOP.get(entry.name, "other")] += tree_bytes(entry.path)
    return DiskUse(parts, runs)


def _scan(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


def human_bytes(n: float) -> str:
    """1234 -> '1.2 kB' (decimal units, as file managers show them)."""
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
    return ""
