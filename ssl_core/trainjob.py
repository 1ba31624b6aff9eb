"""Job kind 'train': fit one method on the project's current labels, in a worker process.

Reads the labels as they are when the job starts (labeling goes on meanwhile), fits with a
progress callback that reports to the job (and is a cancel point), logs losses and validation
accuracy to the run, saves the model under models/run-<id>/ (written to a temporary folder and
renamed, so the previous model stays usable until the new one is complete), writes predictions
for every image, and records a summary: validation accuracy with its interval and the number of
labels behind it, and — only where the dataset came with ground truth — test accuracy on
evaluation-split images the user did not label.
"""
from __future__ import annotations

import os
import shutil
import time
from typing import Any

import numpy as np

from .imagestore import ImageStore
from .labels import current_labels, list_classes
from .models.registry import make_estimator
from .predictions import save_predictions
from .runs import create_run, finish_run, log_metrics
from .validation import accuracy

DEFAULT_BUDGET_S = {"small": 30.0, "large": 180.0}   # < / >= 5,000 images


def default_budget(n_images: int) -> float:
    return DEFAULT_BUDGET_S["small" if n_images < 5000 else "large"]


class _Reporter:
    """Trainer callback: job progress from the time budget (or the steps), metrics every ~2 s."""

    def __init__(self, ctx, store, run_id: int, budget_s: float):
        self.ctx, self.store, self.run_id, self.budget_s = ctx, store, run_id, budget_s
        self.t0 = time.perf_counter()
        self.last_log = 0.0
        self.step = 0

    def __call__(self, progress) -> None:
        self.step += 1
        elapsed = time.perf_counter() - self.t0
        fraction = min(0.95, max(elapsed / self.budget_s, 0.0))
        now = time.perf_counter()
        if now - self.last_log >= 2.0 or progress.stage in ("done", "graph"):
            self.last_log = now
            values = {**progress.losses, **{k: v for k, v in progress.metrics.items()
                                            if isinstance(v, (int, float))}}
            if values:
                log_metrics(self.store, self.run_id, self.step, values)
            self.ctx.progress(fraction, f"{progress.stage or 'training'} · {elapsed:.0f} s of "
                                        f"≤ {self.budget_s:.0f} s")
        else:
            self.ctx.check_cancelled()


def run_train_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """params: method ('default'), budget_s (by data size), seed (0)."""
    project, store = ctx.project, ctx.project.store
    images = ImageStore(project)
    n = images.n_images
    method = params.get("method", "default")
    budget_s = float(params.get("budget_s") or default_budget(n))
    labels = current_labels(store, n)                                   # (N,) class id or -1
    n_labels = int((labels >= 0).sum())
    if len(np.unique(labels[labels >= 0])) < 2:
        raise ValueError("label images of at least 2 classes before training")
    run_id = create_run(store, method, {"budget_s": budget_s, "seed": params.get("seed", 0)},
                        n_labels, ctx.job_id)
    ctx.progress(0.0, f"training {method} on {n_labels} labels")
    model = make_estimator(method, int(params.get("seed", 0)))
    X = images.images()
    model.fit(X, labels, callbacks=[_Reporter(ctx, store, run_id, budget_s)], time_budget_s=budget_s)
    ctx.progress(0.96, "predicting every image")
    proba = model.predict_proba(X)                                      # (N, K)
    folder = _save_atomically(model, project.models_dir, run_id)
    save_predictions(project, proba, model.classes_, run_id, method)
    summary = _summary(model, proba, labels, images, store, folder, n_labels)
    finish_run(store, run_id, summary)
    return {"run_id": run_id, **summary}


def _save_atomically(model, models_dir, run_id: int):
    final = models_dir / f"run-{run_id}"
    tmp = models_dir / f".run-{run_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp)
    os.replace(tmp, final)
    return final


def _summary(model, proba, labels, images: ImageStore, store, folder, n_labels: int) -> dict[str, Any]:
    summary: dict[str, Any] = {"model": str(folder), "n_labels": n_labels,
                               "validation": None if getattr(model, "validation_", None) is None
                               else model.validation_.to_dict()}
    gt = images.ground_truth()
    test = _test_accuracy(model.classes_[proba.argmax(1)], labels, gt, store)
    summary["test"] = None if test is None else test.to_dict()
    return summary


def _test_accuracy(pred: np.ndarray, labels: np.ndarray, gt, store):
    """Accuracy on evaluation-split images with ground truth that the user did not label,
    matching project classes to ground-truth classes by name. None when not measurable."""
    names = {c.id: c.name for c in list_classes(store)}
    if not gt.available:
        return None
    gt_names = np.array(gt.class_names, dtype=object)
    has = (gt.labels >= 0) & gt.is_test & (labels < 0)
    if not has.any():
        return None
    pred_names = np.array([names.get(int(p), "") for p in pred], dtype=object)
    return accuracy(gt_names[gt.labels[has]], pred_names[has])
