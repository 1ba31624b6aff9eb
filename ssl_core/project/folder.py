"""A project: one folder holding everything Latentlab knows about one image collection.

    <home>/projects/<name>/
        project.db      SQLite store: images' metadata, classes, label log, jobs, runs, metrics
        images.npy      all images, (N, H, W, C) uint8, memory-mapped; row i is image id i
        latents.npy     VAE latents of every image, (N, d) float32 (jobs/map_job.py)
        layout.npy      2-D map positions, (N, 2) float32; map.json: how they were made
        models/         trained models (state_dict .pt + config .json)
        logs/           one log file per background job
        uploads/        uploaded archives waiting to be imported
        exports/        files prepared for download on the Export page (the ImageFolder zip)

<home> is $LATENTLAB_HOME, or ~/.latentlab when it is not set.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ssl_core.project.files import FileWriteError
from ssl_core.project.store import Store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def latentlab_home() -> Path:
    return Path(os.environ.get("LATENTLAB_HOME") or Path.home() / ".latentlab").expanduser()


def projects_dir() -> Path:
    return latentlab_home() / "projects"


def default_data_root() -> Path:
    """Where torchvision datasets are looked for / downloaded to unless the user says otherwise."""
    return Path(os.environ.get("LATENTLAB_DATA_ROOT") or latentlab_home() / "data").expanduser()


def valid_project_name(name: str) -> bool:
    """Project names become folder names: letters, digits, '_', '-', '.', no path tricks."""
    return bool(_NAME.match(name)) and ".." not in name


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def db_path(self) -> Path:
        return self.root / "project.db"

    @property
    def images_path(self) -> Path:
        return self.root / "images.npy"

    @property
    def latents_path(self) -> Path:
        return self.root / "latents.npy"

    @property
    def layout_path(self) -> Path:
        return self.root / "layout.npy"

    @property
    def map_meta_path(self) -> Path:
        return self.root / "map.json"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    @cached_property
    def store(self) -> Store:
        return Store(self.db_path)

    @classmethod
    def create(cls, root: str | Path) -> "Project":
        """Create (or reopen) a project folder with an initialised database."""
        root = Path(root).expanduser().resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FileWriteError(f"cannot create the project folder {root}: {err.strerror}") from err
        project = cls(root)
        project.store.initialise()
        return project

    @classmethod
    def open(cls, root: str | Path) -> "Project":
        root = Path(root).expanduser().resolve()
        if not (root / "project.db").is_file():
            raise FileNotFoundError(f"{root} is not a Latentlab project (no project.db)")
        return cls(root)

    @classmethod
    def named(cls, name: str) -> "Project":
        """The project called `name` under the Latentlab home, created if missing."""
        if not valid_project_name(name):
            raise ValueError("a project name uses letters, digits, '_', '-' or '.' "
                             "(at most 64, starting with a letter or digit)")
        return cls.create(projects_dir() / name)


def list_projects() -> list[Project]:
    base = projects_dir()
    if not base.is_dir():
        return []
    return [Project(p.resolve()) for p in sorted(base.iterdir()) if (p / "project.db").is_file()]
