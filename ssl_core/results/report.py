"""The numbers a finished run reports, computed honestly.

- validation: the estimator's own `validation_` (chosen and measured on a split of the user's
  labels), with its interval and the number of labels behind it;
- test: only where the dataset came with ground truth, on *every* sealed evaluation image
  (labeling/evaluation_split.py: their labels never train, so labeling one does not remove it
  from the test set and every run of a project is scored on the same images), of the
  ground-truth classes that have a project class — by the same name, or by the class-name
  mapping the user confirmed. Transductive: the test pixels were in fit's unlabeled pool, as
  the app imports every image. The confusion matrix and per-class accuracy use the same
  images; `ids_digest` fingerprints them. Nothing here is used to choose a model.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssl_core.data.collection import GroundTruth
from ssl_core.training.validation import Accuracy, accuracy


@dataclass(frozen=True)
class TestReport:
    accuracy: Accuracy
    classes: list[str]              # row/column names of the matrix (ground-truth names)
    confusion: list[list[int]]      # [true][predicted] counts; last column: predicted as
                                    # a project class with no ground-truth counterpart
    per_class: dict[str, Accuracy]  # recall per ground-truth class with its interval
    mapping: dict[str, str]         # ground-truth name -> the project class it is scored as
    ids_digest: str                 # sha256 of the scored image ids: same images, same digest
    transductive: bool = True       # the scored images' pixels were in fit's unlabeled pool

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy.to_dict(), "classes": self.classes,
                "confusion": self.confusion,
                "per_class": {k: v.to_dict() for k, v in self.per_class.items()},
                "mapping": self.mapping, "ids_digest": self.ids_digest,
                "transductive": self.transductive}


def scored_ids(gt: GroundTruth, class_names: list[str],
               mapping: dict[str, str] | None = None) -> tuple[np.ndarray, dict[str, str]]:
    """The sealed evaluation images a run is scored on, (M,) ids, and {ground-truth name:
    project class name} of the compared classes: a ground-truth class counts when the mapping
    names a project class for it, or else a project class has its name."""
    project = set(class_names)
    target = {g: (mapping or {}).get(g, g) for g in gt.class_names}
    target = {g: p for g, p in target.items() if p in project}
    if not gt.available or not target:
        return np.zeros(0, np.int64), {}
    known = np.array([g in target for g in gt.class_names], bool)     # (K_gt,)
    has = gt.sealed & known[np.maximum(gt.labels, 0)]                 # (N,) bool
    return np.flatnonzero(has), target


def test_report(pred_names: np.ndarray, gt: GroundTruth, class_names: list[str],
                mapping: dict[str, str] | None = None) -> TestReport | None:
    """pred_names (N,) predicted class name per image, class_names: the project's classes,
    mapping: {ground-truth name: project class name} the user confirmed (the Train page
    suggests one when names differ; same names need none). Scored on every sealed image whose
    true class has a project class, labeled or not (their labels never trained). None when the
    dataset has no ground truth or no class corresponds."""
    ids, target = scored_ids(gt, class_names, mapping)
    if len(ids) == 0:
        return None
    names = [g for g in gt.class_names if g in target]                # compared, gt order
    truth = np.array(gt.class_names, dtype=object)[gt.labels[ids]]   # (M,) gt names
    pred = np.asarray(pred_names, dtype=object)[ids]                  # (M,) project names
    expected = np.array([target[t] for t in truth], dtype=object)    # (M,) project names
    column = {target[g]: i for i, g in enumerate(names)}              # project name -> column
    confusion = np.zeros((len(names), len(names) + 1), np.int64)     # (K_gt, K_gt + 1)
    for t, p in zip(truth, pred):
        confusion[names.index(t), column.get(p, len(names))] += 1
    per_class = {g: accuracy(expected[truth == g], pred[truth == g]) for g in names
                 if (truth == g).any()}
    digest = hashlib.sha256(ids.astype(np.int64).tobytes()).hexdigest()[:16]
    return TestReport(accuracy(expected, pred), names, confusion.tolist(), per_class,
                      {g: target[g] for g in names}, digest)


def gain(summary: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, float] | None:
    """Accuracy points the unlabeled images bought: this run minus the supervised baseline on the
    same labels, like with like only —
    - "test": both scored on the same sealed images (equal `ids_digest`);
    - "validation": both measured on the very same held-out labels (equal protocol, e.g. one
      stratified 20% hold-out with the same seed). A cross-validated graph against a hold-out
      network is not compared: that difference would mix the two protocols' luck.
    None when nothing compares."""
    if not baseline:
        return None
    out = {}
    mine, theirs = summary.get("test_report"), baseline.get("test_report")
    if mine and theirs and mine.get("ids_digest") == theirs.get("ids_digest"):
        out["test"] = 100.0 * (mine["accuracy"]["value"] - theirs["accuracy"]["value"])
    mine, theirs = summary.get("validation"), baseline.get("validation")
    if mine and theirs and mine.get("protocol") and mine.get("protocol") == theirs.get("protocol"):
        out["validation"] = 100.0 * (mine["value"] - theirs["value"])
    return out or None
