"""Exports of what the user made: labels as CSV (pandas), one row per labeled image."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .imagestore import ImageStore
from .labels import current_labels, list_classes
from .project import Project


def labels_frame(project: Project) -> pd.DataFrame:
    """Current labels: image_id, name, source, label (class name). Unlabeled images are left out.

    Values are plain text; a spreadsheet app may treat cells starting with '=', '+', '-' or '@'
    as formulas, so those are prefixed with a quote (CSV injection guard)."""
    store = ImageStore(project)
    labels = current_labels(project.store, store.n_images)
    names = {c.id: c.name for c in list_classes(project.store)}
    ids = (labels >= 0).nonzero()[0]
    image_names, sources = store.names(), store.sources()
    frame = pd.DataFrame({
        "image_id": ids.astype(int),
        "name": [image_names[i] for i in ids],
        "source": [sources[i] for i in ids],
        "label": [names[int(labels[i])] for i in ids],
    })
    for column in ("name", "source", "label"):
        frame[column] = frame[column].map(_defuse)
    return frame


def _defuse(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_labels(project: Project, out: str | Path) -> int:
    """Write the labels CSV atomically; returns the number of rows."""
    frame = labels_frame(project)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(out)
    return len(frame)
