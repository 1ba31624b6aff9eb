"""Exports of what the user made, as CSV tables (pandas): the labels, and the latest predictions.

The trained model and an ImageFolder of images are zips: see model_zip.py and imagefolder.py.
Every export is written through project/files.py (a temporary name beside the target, then a
rename), so a reader never sees half an export.

Values are plain text; a spreadsheet app may treat cells starting with '=', '+', '-' or '@' as
formulas, so text cells that start so are prefixed with a quote (CSV injection guard).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ssl_core.data.collection import ImageCollection
from ssl_core.labeling.classes import list_classes
from ssl_core.labeling.label_log import current_labels
from ssl_core.project.files import atomic_path
from ssl_core.project.folder import Project
from ssl_core.results.predictions import load_predictions

NO_PREDICTIONS = ("no predictions yet: train a model first (the Train page, or a 'train' job); "
                  "every finished run writes predictions for all images")


def labels_frame(project: Project) -> pd.DataFrame:
    """Current labels: image_id, name, source, label (class name). Unlabeled images are left out."""
    store = ImageCollection(project)
    labels = current_labels(project.store, store.n_images)
    names = class_names(project)
    ids = (labels >= 0).nonzero()[0]
    image_names, sources = store.names(), store.sources()
    frame = pd.DataFrame({
        "image_id": ids.astype(int),
        "name": [image_names[i] for i in ids],
        "source": [sources[i] for i in ids],
        "label": [names[int(labels[i])] for i in ids],
    })
    return _defused(frame, ("name", "source", "label"))


def predictions_frame(project: Project) -> pd.DataFrame | None:
    """The latest run's prediction for every image: id, name, source, label (the user's label,
    '' when unlabeled), prediction (class name), confidence (probability of the prediction).
    None when there are no predictions yet, or they predate images imported since."""
    store = ImageCollection(project)
    n = store.n_images
    pred = load_predictions(project, n)
    if pred is None or n == 0:
        return None
    labels = current_labels(project.store, n)                            # (N,) class id or -1
    names = class_names(project)
    predicted = pred.labels[:n]                                          # (N,) class id
    frame = pd.DataFrame({
        "id": np.arange(n),
        "name": store.names(),
        "source": store.sources(),
        "label": [names.get(int(c), "") for c in labels],
        "prediction": [names.get(int(c), f"class {int(c)}") for c in predicted],
        "confidence": pred.confidence[:n].astype(np.float64).round(6),
    })
    return _defused(frame, ("name", "source", "label", "prediction"))


def class_names(project: Project) -> dict[int, str]:
    """Class id -> name for every class ever made: predictions of a run may use classes that
    were merged or deleted since, and they still need a name."""
    return {c.id: c.name for c in list_classes(project.store, include_deleted=True)}


def defuse(text: str) -> str:
    """CSV injection guard for one text cell."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _defused(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    for column in columns:
        frame[column] = frame[column].map(defuse)
    return frame


def export_labels(project: Project, out: str | Path) -> int:
    """Write the labels CSV atomically; returns the number of rows."""
    frame = labels_frame(project)
    with atomic_path(out, "the labels CSV") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)


def export_predictions(project: Project, out: str | Path) -> int:
    """Write the predictions CSV atomically; returns the number of rows. ValueError when there
    are no predictions yet."""
    frame = predictions_frame(project)
    if frame is None:
        raise ValueError(NO_PREDICTIONS)
    with atomic_path(out, "the predictions CSV") as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)
