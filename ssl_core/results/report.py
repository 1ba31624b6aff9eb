"""The numbers a finished run reports, computed honestly.

- validation: the estimator's own `validation_` (chosen and measured on a split of the user's
  labels), with its interval and the number of labels behind it;
- test: only where the dataset came with ground truth, on evaluation-split images the user did
  NOT label (what the user labeled would flatter the model), of the ground-truth classes that
  have a project class of the same name. The confusion matrix and per-class accuracy use the same images. Nothing here is
  used to choose a model.
"""
from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy.to_dict(), "classes": self.classes,
                "confusion": self.confusion,
                "per_class": {k: v.to_dict() for k, v in self.per_class.items()}}


def test_report(pred_names: np.ndarray, labels: np.ndarray, gt: GroundTruth,
                class_names: list[str]) -> TestReport | None:
    """pred_names (N,) predicted class name per image, labels (N,) the user's class ids (-1 =
    unlabeled), class_names: the project's classes. Test images count when their true class
    has a project class of the same name (the classes the user set up; a user who named their
    classes differently gets no test figure rather than a wrong one). None when the dataset has
    no ground truth, no class name matches, or every such test image was labeled."""
    if not gt.available:
        return None
    names = [n for n in gt.class_names if n in set(class_names)]    # compared classes
    if not names:
        return None
    known = np.isin(np.array(gt.class_names, dtype=object), names)   # (K_gt,) bool
    has = (gt.labels >= 0) & gt.is_test & (labels < 0)               # (N,) bool
    has &= known[np.maximum(gt.labels, 0)]
    if not has.any():
        return None
    truth = np.array(gt.class_names, dtype=object)[gt.labels[has]]  # (M,) names
    pred = np.asarray(pred_names, dtype=object)[has]
    index = {n: i for i, n in enumerate(names)}
    confusion = np.zeros((len(names), len(names) + 1), np.int64)    # (K_gt, K_gt + 1)
    for t, p in zip(truth, pred):
        confusion[index[t], index.get(p, len(names))] += 1
    per_class = {n: accuracy(truth[truth == n], pred[truth == n]) for n in names if (truth == n).any()}
    return TestReport(accuracy(truth, pred), names, confusion.tolist(), per_class)


def gain(summary: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, float] | None:
    """Accuracy points the unlabeled images bought: this run minus the supervised baseline on the
    same labels, on validation (and on the ground-truth test where both have it)."""
    if not baseline:
        return None
    out = {}
    for key in ("validation", "test"):
        mine, theirs = summary.get(key), baseline.get(key)
        if mine and theirs:
            out[key] = 100.0 * (mine["value"] - theirs["value"])
    return out or None
