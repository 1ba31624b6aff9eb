"""Compute a project's quality report: what the quality job, the CLI and a notebook call.

`quality_keys(project)` says what each part of the report depends on now; `compute_quality`
recomputes the parts whose stored key differs (all of them with `force`) and saves the report.
The spaces:
- duplicates: the project's pretrained features for photos (a copy is re-described by the same
  extractor during calibration), the pixel descriptor of duplicates.py for small greyscale
  images;
- outliers: outliers.outlier_space (features, or a projection of the pixels);
- label errors: the default method's graph stage (label_errors.py), on the labels training
  would see (no evaluation image, no excluded copy). Ground truth never reaches any of them.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ssl_core.data.collection import ImageCollection
from ssl_core.features.choice import PIXELS
from ssl_core.features.store import project_features
from ssl_core.labeling.classes import list_classes
from ssl_core.labeling.evaluation_split import sealed_mask, training_labels
from ssl_core.labeling.label_log import current_labels, labels_version
from ssl_core.progress import Progress, no_progress, scaled
from ssl_core.project.folder import Project
from ssl_core.quality.balance import BalanceReport, label_balance
from ssl_core.quality.marks import excluded_mask
from ssl_core.quality.report import PARTS, QualityReport, load_report, save_report
from ssl_core.results.predictions import load_predictions
from ssl_core.results.runs import list_runs


def _labels_version(project: Project) -> int:
    with project.store.read() as conn:
        return labels_version(conn)


def _latest_run(project: Project) -> int | None:
    done = [r.id for r in list_runs(project.store, limit=20) if r.summary is not None]
    return max(done) if done else None


def quality_keys(project: Project) -> dict[str, dict[str, Any]]:
    """{part: key}: what each part of the report was computed from, as it is now."""
    from ssl_core.features.choice import project_representation

    collection = ImageCollection(project)
    n, shape = collection.n_images, collection.shape
    rep = project_representation(project.store, shape) if shape else PIXELS
    images_key = {"n_images": n, "representation": rep}
    excluded = excluded_mask(project.store, n)
    return {"duplicates": images_key, "outliers": images_key,
            "label_errors": {**images_key, "labels_version": _labels_version(project),
                             "run": _latest_run(project),
                             "excluded": int(excluded.sum())}}


def project_balance(project: Project) -> BalanceReport:
    """Label balance of the labels the next retrain would see, with the latest run's predicted
    class sizes (cheap: the Train page calls it on every rerun)."""
    collection = ImageCollection(project)
    n = collection.n_images
    held = training_labels(current_labels(project.store, n), sealed_mask(collection, n),
                           excluded_mask(project.store, n))
    classes = list_classes(project.store)
    pred = load_predictions(project, n)
    return label_balance(held.labels, [c.id for c in classes], [c.name for c in classes],
                         None if pred is None else pred.labels[:n])


def compute_quality(project: Project, progress: Progress | None = None, check=None,
                    force: bool = False, seed: int = 0) -> QualityReport:
    """Recompute the stale parts of the project's quality report (every part with `force`),
    save it and return it. `progress(fraction, message)` may raise to cancel (nothing is
    written then); `check()` runs just before the report is written (a job's claim)."""
    progress = progress or no_progress
    keys = quality_keys(project)
    report = load_report(project)
    todo = list(PARTS) if force else report.stale_parts(keys)
    if not todo:
        progress(1.0, "the quality report is up to date")
        return report
    collection = ImageCollection(project)
    n = keys["duplicates"]["n_images"]
    if n == 0:
        raise ValueError("the project has no images yet: import some first")
    images = collection.images()[:n]                                       # (N, H, W, C) memmap
    progress(0.0, "features of every image")
    representation, features = project_features(project, images, scaled(progress, 0.0, 0.2))
    features = None if features is None else features[:n]                  # (N, D) float16
    spans = _spans(todo)
    for part in todo:
        t = time.perf_counter()
        sub = scaled(progress, *spans[part])
        if part == "duplicates":
            result = _duplicates(images, features, representation, sub, seed)
        elif part == "outliers":
            result = _outliers(images, features, sub)
        else:
            result = _label_errors(project, collection, images, features, n, sub, seed)
        result["seconds"] = round(time.perf_counter() - t, 2)
        report.parts[part] = {"key": keys[part], "result": result}
    progress(1.0, "saving the quality report")
    save_report(project, report, check)
    return report


def _spans(todo: list[str]) -> dict[str, tuple[float, float]]:
    """Progress span of each part (after the 20% for features), by its rough cost."""
    cost = {"duplicates": 3.0, "outliers": 1.0, "label_errors": 3.0}
    total, start, out = sum(cost[p] for p in todo), 0.2, {}
    for p in todo:
        out[p] = (start, start + 0.8 * cost[p] / total)
        start = out[p][1]
    return out


def _duplicates(images: np.ndarray, features, representation: str, progress, seed: int) -> dict:
    from ssl_core.quality.duplicates import find_duplicates

    describe = None
    if features is not None:
        from ssl_core.features.extractors import get_extractor

        describe = get_extractor(representation, tuple(images.shape[1:])).transform
    got = find_duplicates(images, describe=describe,
                          space=None if features is None else features,
                          seed=seed, progress=progress)
    return got.to_dict()


def _outliers(images: np.ndarray, features, progress) -> dict:
    from ssl_core.quality.outliers import find_outliers, outlier_space

    progress(0.0, "describing every image for the outlier search")
    space = outlier_space(images, features)                                # (N, D)
    progress(0.5, "ranking images by how far they are from every neighbour")
    return find_outliers(space).to_dict()


def _label_errors(project: Project, collection: ImageCollection, images: np.ndarray, features,
                  n: int, progress, seed: int) -> dict:
    from ssl_core.quality.label_errors import find_label_errors

    held = training_labels(current_labels(project.store, n), sealed_mask(collection, n),
                           excluded_mask(project.store, n))
    class_ids = [c.id for c in list_classes(project.store)]
    lookup = {c: i for i, c in enumerate(class_ids)}
    codes = np.array([lookup.get(int(v), -1) for v in held.labels], np.int64)   # (N,)
    got = find_label_errors(images, codes, len(class_ids), features=features, seed=seed,
                            progress=progress).to_dict()
    for issue in got.get("issues", []):          # class codes -> the project's class ids
        issue["given"] = class_ids[int(issue["given"])]
        issue["suggested"] = class_ids[int(issue["suggested"])]
    return got
