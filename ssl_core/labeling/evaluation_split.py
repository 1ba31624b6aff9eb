"""The sealed evaluation split: images whose labels never train, so test accuracy means something.

Where a dataset comes with ground truth (a publisher's test split, digits' fixed 20%, a stable
file-name-hash 20% of class folders; data/sources.py), its evaluation images are *sealed*:
- the label queue never suggests them (`queue.suggestions`);
- a label the user puts on one (a lasso on the map can include any image) is kept in the label
  log — nothing the user did is thrown away — but `training_labels` takes it out of what `fit`
  sees, and the Train page says how many were held back;
- every run of a project is scored on the same sealed images (results/report.py), whatever
  was labeled, so two runs' test accuracies are comparable.
Their pixels stay in the unlabeled pool, as the app imports them: the app's test accuracy is
*transductive* (the benchmark also measures the inductive one, benchmarks/engine.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssl_core.data.collection import GroundTruth, ImageCollection


@dataclass(frozen=True)
class TrainingLabels:
    labels: np.ndarray   # (N,) class id or -1: what fit may see
    n_sealed: int        # labels kept in the log but held out of training (on sealed images)
    n_excluded: int = 0  # labels on duplicate copies the user excluded (quality/marks.py)


def sealed_mask(images: ImageCollection | GroundTruth, n: int | None = None) -> np.ndarray:
    """(N,) bool: the sealed evaluation images of a collection (or of its ground truth), padded
    with False to `n` rows when given (images imported after the ground truth was read)."""
    gt = images.ground_truth() if isinstance(images, ImageCollection) else images
    mask = np.asarray(gt.sealed, bool)
    if n is not None and len(mask) != n:
        out = np.zeros(n, bool)
        out[:min(n, len(mask))] = mask[:n]
        return out
    return mask


def training_labels(labels: np.ndarray, sealed: np.ndarray,
                    excluded: np.ndarray | None = None) -> TrainingLabels:
    """labels (N,) the user's current labels (-1 = none), sealed (N,) bool, excluded (N,) bool
    (duplicate copies the user chose not to keep, or None): the labels fit may see, with those
    on sealed or excluded images set to -1, and how many of each were held out."""
    labels = np.asarray(labels)
    has = labels >= 0
    held = sealed[:len(labels)] & has
    dropped = (np.zeros(len(labels), bool) if excluded is None
               else np.asarray(excluded, bool)[:len(labels)] & has & ~held)
    out = np.where(held | dropped, -1, labels).astype(labels.dtype, copy=False)
    return TrainingLabels(out, int(held.sum()), int(dropped.sum()))


def held_out_note(n_sealed: int) -> str | None:
    """What the UI says about labels on sealed images (None when there are none)."""
    if n_sealed <= 0:
        return None
    return (f"{n_sealed:,} of your labels are on evaluation images (the dataset's test split): "
            "they are kept, but never used for training, so that test accuracy measures "
            "images the model did not learn from.")
