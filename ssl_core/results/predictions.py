"""The current model's predictions for every image, kept beside the project's images.

Training jobs write them once per finished run; the map colours by them and the label queue's
uncertainty strategy reads their probabilities. Stored as a plain `.npz` of arrays (loaded with
`allow_pickle=False`) written to a temporary file and renamed, so readers never see half a file
and a killed worker leaves the previous predictions in place. A train job passes its worker's
claim check as `check`, called just before the rename: a worker whose job was reaped publishes
nothing (the temporary file is removed).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssl_core.project.files import write_atomic
from ssl_core.project.folder import Project


@dataclass
class Predictions:
    proba: np.ndarray        # (N, K) float32 class probabilities
    class_ids: np.ndarray    # (K,) int64: the project class id of each column
    run_id: int | None       # the run that made them
    method: str

    @property
    def labels(self) -> np.ndarray:
        """(N,) predicted class id."""
        return self.class_ids[self.proba.argmax(1)]

    @property
    def confidence(self) -> np.ndarray:
        """(N,) probability of the predicted class."""
        return self.proba.max(1)


def predictions_path(project: Project) -> Path:
    return project.root / "predictions.npz"


def save_predictions(project: Project, proba: np.ndarray, class_ids: np.ndarray,
                     run_id: int | None, method: str,
                     check: Callable[[], None] | None = None) -> Path:
    """Replace the predictions; `check()` runs once the file is complete, just before the
    rename, and may raise to publish nothing."""
    meta = json.dumps({"run_id": run_id, "method": method})

    def write(fh) -> None:
        np.savez(fh, proba=np.asarray(proba, np.float32), class_ids=np.asarray(class_ids, np.int64),
                 meta=np.frombuffer(meta.encode(), np.uint8))
        fh.flush()
        if check is not None:
            check()

    return write_atomic(predictions_path(project), write, "the predictions")


def load_predictions(project: Project, n_images: int | None = None) -> Predictions | None:
    """The latest predictions, or None when there are none (or they cover fewer images than
    `n_images`, i.e. images were imported after the run)."""
    path = predictions_path(project)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            pred = Predictions(data["proba"], data["class_ids"], meta.get("run_id"), meta.get("method", ""))
    except (OSError, ValueError, KeyError):
        return None
    if n_images is not None and len(pred.proba) < n_images:
        return None
    return pred
