"""Which project class each ground-truth class is scored as, when the names differ.

A user who calls the digit classes "zero", "one", … (or photos "kitties" for the dataset's
"cat") would get no test accuracy: report.py compares names. The Train page suggests a mapping
by majority overlap — for each ground-truth class, the project class that most of its images
carry (the user's labels, else the latest predictions), one-to-one by the assignment with the
largest total overlap (scipy's Hungarian solver) — and the user confirms or edits it. It is
stored in the project's meta table, used only to score runs, never to train.
"""
from __future__ import annotations

import json

import numpy as np
from scipy.optimize import linear_sum_assignment

from ssl_core.data.collection import GroundTruth
from ssl_core.project.store import Store

META_KEY = "class_mapping"


def load_mapping(store: Store) -> dict[str, str]:
    """The confirmed {ground-truth name: project class name}; {} when none was confirmed."""
    raw = store.get_meta(META_KEY)
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save_mapping(store: Store, mapping: dict[str, str]) -> None:
    """Store the mapping the user confirmed (one project class per ground-truth class at most:
    ValueError when two ground-truth classes point at the same project class)."""
    targets = [v for v in mapping.values() if v]
    if len(targets) != len(set(targets)):
        raise ValueError("each project class can stand for one ground-truth class only")
    store.set_meta(META_KEY, json.dumps({k: v for k, v in mapping.items() if v}, sort_keys=True))


def suggest_mapping(gt: GroundTruth, assigned: np.ndarray, class_names: dict[int, str]
                    ) -> dict[str, str]:
    """{ground-truth name: project class name} by majority overlap. assigned (N,) project class
    id per image (the user's labels where given, else a prediction; -1 = none), class_names:
    {project class id: name}. Pairs without any overlap are left out."""
    assigned = np.asarray(assigned)[:len(gt.labels)]
    ids = sorted(class_names)
    if not gt.available or not ids:
        return {}
    column = {c: j for j, c in enumerate(ids)}
    overlap = np.zeros((len(gt.class_names), len(ids)), np.int64)    # (K_gt, K_project)
    both = (gt.labels[:len(assigned)] >= 0) & np.isin(assigned, ids)
    cols = np.array([column[int(c)] for c in assigned[both]], np.int64)
    np.add.at(overlap, (gt.labels[:len(assigned)][both], cols), 1)
    rows, picks = linear_sum_assignment(overlap, maximize=True)
    return {gt.class_names[r]: class_names[ids[c]] for r, c in zip(rows, picks) if overlap[r, c] > 0}
