"""Label balance: how many labels each class has, how big the model thinks each class is, and
the warnings a user should see before training.

Two warnings, checked on the labels `fit` will see (evaluation and excluded images taken out):
- a class with fewer than MIN_LABELS labels: nothing can be held out to validate it, and one
  example is a poor description of a class (it will be learned, badly, or not at all);
- the largest class has more than MAX_RATIO times the labels of the smallest: every method
  here weights labels equally, so a 10:1 imbalance pulls predictions toward the big class.
Cheap (a bincount), so the Train page computes it on every rerun rather than waiting for the
quality job.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

MIN_LABELS = 2
MAX_RATIO = 10.0


@dataclass(frozen=True)
class ClassBalance:
    class_id: int
    name: str
    n_labels: int
    n_predicted: int | None = None   # images the latest run predicts as this class


@dataclass(frozen=True)
class BalanceReport:
    classes: list[ClassBalance]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"classes": [asdict(c) for c in self.classes], "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, d: dict) -> "BalanceReport":
        return cls([ClassBalance(**c) for c in d["classes"]], list(d.get("warnings", [])))


def label_balance(labels: np.ndarray, class_ids: list[int], class_names: list[str],
                  predicted: np.ndarray | None = None) -> BalanceReport:
    """labels (N,) class id or -1 (the labels training will see), the project's live classes
    (ids and names, in order), predicted (N,) class ids of the latest run or None."""
    labels = np.asarray(labels)
    counts = {c: int(v) for c, v in zip(*np.unique(labels[labels >= 0], return_counts=True))}
    pred_counts = ({} if predicted is None else
                   {c: int(v) for c, v in zip(*np.unique(np.asarray(predicted), return_counts=True))})
    classes = [ClassBalance(int(c), name, counts.get(c, 0),
                            None if predicted is None else pred_counts.get(c, 0))
               for c, name in zip(class_ids, class_names)]
    return BalanceReport(classes, balance_warnings(classes))


def balance_warnings(classes: list[ClassBalance]) -> list[str]:
    """The warnings for these classes (empty when the labels look balanced enough)."""
    out = []
    few = [c for c in classes if c.n_labels < MIN_LABELS]
    if few:
        listed = ", ".join(f"'{c.name}' ({c.n_labels})" for c in few[:8])
        more = f" and {len(few) - 8} more" if len(few) > 8 else ""
        out.append(f"{len(few)} class{'es have' if len(few) > 1 else ' has'} fewer than "
                   f"{MIN_LABELS} labels: {listed}{more}. Label at least {MIN_LABELS} images "
                   "of every class, or it is learned from one example or not at all.")
    labeled = [c for c in classes if c.n_labels > 0]
    if len(labeled) >= 2:
        big = max(labeled, key=lambda c: c.n_labels)
        small = min(labeled, key=lambda c: c.n_labels)
        ratio = big.n_labels / small.n_labels
        if ratio > MAX_RATIO:
            out.append(f"The labels are unbalanced: '{big.name}' has {big.n_labels} labels, "
                       f"{ratio:.0f}× the {small.n_labels} of '{small.name}'. Predictions lean "
                       "toward the big classes: label more of the small ones.")
    return out
