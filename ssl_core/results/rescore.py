"""Score the latest run again, without retraining, after the class-name mapping changed.

A run whose class names differ from the dataset's ground truth finished with test accuracy
"n/a" (report.py compares names). Once the user confirms a mapping (labeling/class_mapping.py)
the run's saved predictions (predictions.py: every image, the run that made them) are scored
again on the same sealed evaluation images, and that run's summary "test"/"test_report" (and
the gain) are replaced in one transaction: the summary is read and written under the write
lock, so a concurrent writer never interleaves. Only the run whose predictions are on disk can
be re-scored; its supervised baseline kept no predictions, so its test number is kept only when
it was scored with the same mapping, else dropped (the gain then falls back to validation).

Also here, for the Train page and the command line alike: `suggestion` (the mapping suggested
from the user's labels, else the latest predictions), `unmapped` (the ground-truth classes that
score nothing) and `confirm_mapping` (checks a mapping the user chose, then stores it).
"""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from ssl_core.data.collection import ImageCollection
from ssl_core.labeling.class_mapping import load_mapping, save_mapping, suggest_mapping
from ssl_core.labeling.classes import list_classes
from ssl_core.labeling.label_log import current_labels
from ssl_core.project.folder import Project
from ssl_core.results.predictions import load_predictions
from ssl_core.results.report import gain, test_report


def suggestion(project: Project) -> dict[str, str]:
    """suggest_mapping on the project's evidence: each image's class is the user's label where
    given, else the latest prediction ({} without ground truth)."""
    images = ImageCollection(project)
    n = images.n_images
    assigned = current_labels(project.store, n)                              # (N,)
    pred = load_predictions(project, n)
    if pred is not None:
        assigned = np.where(assigned >= 0, assigned, pred.labels[:n])
    names = {c.id: c.name for c in list_classes(project.store)}
    return suggest_mapping(images.ground_truth(), assigned, names)


def unmapped(gt_names: list[str], project_names: list[str], mapping: dict[str, str]) -> list[str]:
    """The ground-truth classes that score nothing: no project class of their name and none
    named for them in the mapping."""
    have = set(project_names)
    return [g for g in gt_names if mapping.get(g, g) not in have]


def confirm_mapping(project: Project, mapping: dict[str, str]) -> dict[str, str]:
    """Check and store {ground-truth name: project class name or ''} ('' = not scored, except
    that a class named like a project class is always compared with it): every name must
    exist, and no project class may stand for two ground-truth classes — counting those
    compared by their common name (report.scored_ids). ValueError, with a message for the
    user, otherwise. Returns what was stored."""
    gt_names = ImageCollection(project).ground_truth_classes()
    project_names = [c.name for c in list_classes(project.store)]
    if not gt_names:
        raise ValueError("this project has no ground truth to score against")
    if unknown := [g for g in mapping if g not in gt_names]:
        raise ValueError(f"not a ground-truth class: {unknown[0]!r} (they are: "
                         + ", ".join(map(repr, gt_names)) + ")")
    if missing := [p for p in mapping.values() if p and p not in project_names]:
        raise ValueError(f"no project class is called {missing[0]!r}")
    scored: dict[str, list[str]] = {}
    for g in gt_names:
        target = mapping.get(g) or g          # '' is dropped on save: the name compares
        if target in project_names:
            scored.setdefault(target, []).append(g)
    for target, sources in scored.items():
        if len(sources) > 1:
            raise ValueError(f"{target!r} would stand for {len(sources)} ground-truth classes ("
                             + ", ".join(map(repr, sources)) + "): each project class can "
                             "stand for one only")
    save_mapping(project.store, mapping)
    return load_mapping(project.store)


def rescore_latest(project: Project) -> tuple[int, dict[str, Any]]:
    """Re-score the run whose predictions are saved with the confirmed mapping: (run id, its
    updated summary). ValueError when there is nothing to re-score (no predictions, or images
    were imported after the run, or the run is gone or unfinished)."""
    store = project.store
    images = ImageCollection(project)
    n = images.n_images
    pred = load_predictions(project, n)
    if pred is None or pred.run_id is None:
        raise ValueError("there are no predictions of a run for every image to re-score: "
                         "retrain first")
    names = {c.id: c.name for c in list_classes(store)}
    pred_names = np.array([names.get(int(p), "") for p in pred.labels[:n]], dtype=object)  # (N,)
    report = test_report(pred_names, images.ground_truth(), list(names.values()),
                         load_mapping(store))
    with store.write() as conn:
        row = conn.execute("SELECT summary FROM runs WHERE id = ?", (pred.run_id,)).fetchone()
        if row is None or not row["summary"]:
            raise ValueError(f"run {pred.run_id}, which made the saved predictions, is not "
                             "finished or no longer exists")
        summary = json.loads(row["summary"])
        summary["test"] = None if report is None else report.accuracy.to_dict()
        summary["test_report"] = None if report is None else report.to_dict()
        base = summary.get("baseline")
        if base and base.get("test"):
            scored_as = (base.get("test_report") or {}).get("mapping")
            if report is None or scored_as != report.mapping:
                base["test"], base["test_report"] = None, None      # scored another way: stale
        if base:
            summary["gain"] = gain(summary, base)
        summary["rescored_at"] = time.time()
        conn.execute("UPDATE runs SET summary = ? WHERE id = ?",
                     (json.dumps(summary), pred.run_id))
    return pred.run_id, summary
