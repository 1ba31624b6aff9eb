"""What the map's points are coloured by: current label, prediction, confidence, ground truth
or 'suggested next'. Pure functions of arrays, so they are cheap on every rerun."""
from __future__ import annotations

import numpy as np

from ssl_core.data.collection import GroundTruth
from ssl_core.labeling.classes import PALETTE, LabelClass
from ssl_core.results.predictions import Predictions
from ui.map_figure import Colouring

MODES = ("label", "prediction", "confidence", "ground truth", "suggested next", "quality flag")
FLAG_COLOURS = ("#d62728", "#7f7f7f", "#9467bd", "#1f77b4", "#ff7f0e")   # one per quality FLAGS


def _codes_for(values: np.ndarray, class_ids: list[int]) -> np.ndarray:
    """(N,) class ids (-1 none) -> (N,) index into class_ids (-1 none or unknown)."""
    lookup = {c: i for i, c in enumerate(class_ids)}
    out = np.full(len(values), -1, np.int64)
    for cid, i in lookup.items():
        out[values == cid] = i
    return out


def colouring(mode: str, labels: np.ndarray, classes: list[LabelClass],
              predictions: Predictions | None, gt: GroundTruth | None,
              suggested: np.ndarray | None, flags: np.ndarray | None = None
              ) -> tuple[Colouring, str | None]:
    """Returns the colouring and a note: why the mode cannot be shown yet, or (ground truth)
    that it is for evaluation only. `flags` (N,): index into quality FLAGS, -1 none (the
    'quality flag' mode; None when no quality check ran)."""
    ids = [c.id for c in classes]
    names = [c.name for c in classes]
    colors = [c.color for c in classes]
    by_label = Colouring(_codes_for(labels, ids), names, colors)
    if mode == "prediction" or mode == "confidence":
        if predictions is None:
            return by_label, "No predictions yet: train a model (Train page) to colour by them."
        if mode == "confidence":
            return Colouring(by_label.codes, names, colors, continuous=predictions.confidence,
                             continuous_name="confidence"), None
        pred = _codes_for(predictions.labels, ids)
        return Colouring(pred, names, colors, none_name="no prediction"), None
    if mode == "ground truth":
        if gt is None or not gt.available:
            return by_label, "This dataset came without ground truth."
        gt_colors = [PALETTE[i % len(PALETTE)] for i in range(len(gt.class_names))]
        return Colouring(gt.labels, list(gt.class_names), gt_colors, none_name="unknown"), (
            "Ground truth that came with the dataset — **for evaluation only**: it shows how well "
            "the map separates the classes, and never trains a model. Labels you put on its "
            f"{int(gt.sealed.sum()):,} evaluation images (the test split) are kept but not used "
            "for training.")
    if mode == "suggested next":
        codes = np.full(len(labels), -1, np.int64)
        if suggested is not None and len(suggested):
            codes[suggested] = 0
        return Colouring(codes, ["suggested next"], ["#d62728"], none_name="other"), (
            None if suggested is not None and len(suggested) else "Open the Label queue to get suggestions.")
    if mode == "quality flag":
        from ssl_core.quality.report import FLAGS

        if flags is None:
            return by_label, "No quality check yet: run it on the Quality page."
        return Colouring(np.asarray(flags), list(FLAGS), list(FLAG_COLOURS), none_name="no flag"), (
            f"{int((np.asarray(flags) >= 0).sum()):,} images flagged by the last quality check "
            "(Quality page): suspected label errors, excluded copies, duplicates, outliers.")
    return by_label, None


def quality_flags(project, labels: np.ndarray) -> np.ndarray | None:
    """(N,) index into quality FLAGS of each of the first len(labels) images, -1 for none;
    None when no quality check ran yet."""
    from ssl_core.quality.marks import excluded_mask, kept_labels
    from ssl_core.quality.report import image_flags, load_report

    report = load_report(project)
    if not report.parts:
        return None
    n = len(labels)
    return image_flags(report, n, labels, kept_labels(project.store), excluded_mask(project.store, n))
