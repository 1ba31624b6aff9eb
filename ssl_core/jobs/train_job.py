"""Job kind 'train': fit one method on the project's current labels, in a worker process.

A train job first waits its turn (one fit per project at a time; see retrain.py), then reads
the image count and the labels as they are at that moment, in one read transaction (labeling
and imports go on meanwhile), works on exactly those images (pixels and features sliced to that
count) and fits, warm-started from
the last run of the same method when that run fitted the same images (see the estimators'
`init`). While it fits, `live.LiveReporter` records curves, progress and preview grids. The
model is saved under models/run-<id>/ (written to a temporary folder and renamed, so the
previous model stays in use until the new one is complete), predictions for every image are
replaced atomically, and the run's summary records validation accuracy with its interval and
number of labels, and — only where the dataset came with ground truth — test accuracy, a
confusion matrix and per-class accuracy on the sealed evaluation images (the same ones for
every run; labels the user put on them are kept but never reach fit: evaluation_split.py).
Then, unless asked not to, the supervised baseline is fitted on the same labels so the run
can show what the unlabeled images bought. Every write is fenced by the worker's claim
(worker.py): a worker whose job was reaped adds no metric, model, prediction or summary.

With `gen_augment` (issue 17; methods default, vae, baseline) the classifier also trains on
generated labelled images (ssl_core/models/generated.py). The default method and the baseline
draw them from the project's map VAE when it is a pixel VAE of these images (no second VAE to
train), else from one the fit trains; the run's config and summary record the option and what
it kept, and runs/<id>/generated.png holds a grid of kept images per class for the Train
page. The comparison baseline stays the plain supervised one: the gain is over labels alone.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ssl_core.data.collection import GroundTruth, ImageCollection
from ssl_core.features.choice import AUTO_KEY, META_KEY, PIXELS, default_representation
from ssl_core.features.store import project_features
from ssl_core.jobs.retrain import record_snapshot, wait_for_turn
from ssl_core.jobs.train_progress import LiveReporter, write_generated
from ssl_core.labeling.class_mapping import load_mapping
from ssl_core.labeling.classes import list_classes
from ssl_core.labeling.evaluation_split import sealed_mask, training_labels
from ssl_core.labeling.label_log import labels_snapshot, labels_version
from ssl_core.models.base import ModelFileError
from ssl_core.models.generated import GEN_METHODS, gen_augment_for
from ssl_core.models.registry import load_model, make_estimator
from ssl_core.models.representation_choice import (
    RepresentationChoice,
    choose_by_labels,
    enough_labels,
)
from ssl_core.project.files import atomic_folder
from ssl_core.quality.marks import excluded_mask
from ssl_core.results.predictions import save_predictions
from ssl_core.results.report import gain, test_report
from ssl_core.results.retention import prune_runs
from ssl_core.results.runs import create_run, finish_run, list_runs

DEFAULT_BUDGET_S = {"small": 30.0, "large": 180.0}   # < / >= 5,000 images
BASELINE_SHARE = 0.5          # the comparison baseline gets this share of the run's budget,
BASELINE_MAX_S = 60.0         # at most this many seconds


def default_budget(n_images: int) -> float:
    return DEFAULT_BUDGET_S["small" if n_images < 5000 else "large"]


def baseline_budget(budget_s: float) -> float:
    return min(BASELINE_MAX_S, BASELINE_SHARE * budget_s)


def run_train_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """params: method ('default'), budget_s (by data size), seed (0), warm_start (True),
    compare_baseline (True), gen_augment (False; with it optionally gen_per_class and
    gen_weight: generated labelled images, for the methods in GEN_METHODS)."""
    params = wait_for_turn(ctx)                      # the latest params, coalesced requests applied
    project, store = ctx.project, ctx.project.store
    fence, check = getattr(ctx, "fence", None), getattr(ctx, "check_claim", None)
    images = ImageCollection(project)
    n, current = label_snapshot(ctx)                 # one transaction: count and labels agree
    method = params.get("method", "default")
    seed = int(params.get("seed", 0))
    budget_s = float(params.get("budget_s") or default_budget(n))
    held = training_labels(current, sealed_mask(images, n), excluded_mask(store, n))
    labels = held.labels                  # (N,) class id or -1; never a sealed image's label
    n_labels = int((labels >= 0).sum())
    if len(np.unique(labels[labels >= 0])) < 2:
        raise ValueError("label images of at least 2 classes before training"
                         + (f" ({held.n_sealed} labels on evaluation images do not count)"
                            if held.n_sealed else ""))
    X = images.images()[:n]                        # images imported since are not in this run
    if len(X) != n:
        raise RuntimeError(f"images.npy holds {len(X)} images, the database {n}")
    ctx.progress(0.0, "features of every image")
    representation, features = project_features(project, X, ctx.progress)   # computed once
    features = None if features is None else features[:n]
    gen_cfg = _gen_config(params, method)
    model = make_estimator(method, seed, representation=representation,
                           **({"gen_augment": gen_cfg} if gen_cfg is not None else {}))
    fit_extra = {}
    if gen_cfg is not None and method != "vae" and features is None:
        generator = _map_generator(project, X)
        if generator is not None:
            fit_extra["generator"] = generator
    init, init_run = (_warm_start(project, method, model, representation)
                      if params.get("warm_start", True) else (None, None))
    compare = params.get("compare_baseline", True) and method != "baseline"
    total_s = budget_s + (baseline_budget(budget_s) if compare else 0.0)
    config = {"budget_s": budget_s, "seed": seed, "warm_start_run": init_run,
              "representation": representation}
    if gen_cfg is not None:
        config["gen_augment"] = {"per_class": gen_cfg.per_class, "weight": gen_cfg.weight,
                                 "min_confidence": gen_cfg.min_confidence,
                                 "source": gen_cfg.source}
    run_id = create_run(store, method, config, n_labels, ctx.job_id, fence=fence)
    ctx.progress(0.0, f"training {method} on {n_labels} labels"
                      + (f", warm-started from run {init_run}" if init_run else ""))
    reporter = LiveReporter(ctx, run_id, budget_s, model, span=(0.0, 0.9 * budget_s / total_s))
    model.fit(X, labels, callbacks=[reporter], time_budget_s=budget_s, features=features,
              **({"init": init} if init is not None else {}), **fit_extra)
    ctx.progress(0.9 * budget_s / total_s, "predicting every image")
    proba = model.predict_proba(X, features=features)                   # (N, K)
    folder = _save_atomically(model, project.models_dir, run_id, check)
    save_predictions(project, proba, model.classes_, run_id, method, check=check)
    summary = _summary(model, model.classes_[proba.argmax(1)], images, store, n_labels)
    summary.update(model=str(folder), warm_start_run=init_run, representation=representation,
                   graph_reused=bool(getattr(model, "graph_reused_", False)),
                   n_labels_sealed=held.n_sealed, n_labels_excluded=held.n_excluded)
    if gen_cfg is not None:
        summary["gen_augment"] = _generated(ctx, run_id, model)
    finish_run(store, run_id, summary, fence=fence)                     # accuracy shows now
    if compare:
        summary["baseline"] = _baseline(ctx, X, features, representation, labels, images, store,
                                        seed, budget_s, total_s, n_labels)
        summary["gain"] = gain(summary, summary["baseline"])
        finish_run(store, run_id, summary, fence=fence)
    choice = _decide_representation(ctx, X, labels)          # after the results: for next time
    if choice is not None:
        summary["representation_choice"] = choice.describe()
    pruned = _prune_old_runs(project)
    return {"run_id": run_id, **summary, **({"pruned_runs": pruned} if pruned else {})}


def _gen_config(params: dict[str, Any], method: str):
    """The generated-image option asked for in `params` (None when off). A method without it
    (gan, graph) trains as asked, without it: the page offers it only for GEN_METHODS."""
    if not params.get("gen_augment") or method not in GEN_METHODS:
        return None
    return gen_augment_for(method, per_class=params.get("gen_per_class"),
                           weight=params.get("gen_weight"))


def _map_generator(project, X: np.ndarray):
    """The project's map VAE when it can draw these images (a pixel VAE of the same image
    shape; the fit gives it class regions on a copy), else None: the fit trains its own."""
    from ssl_core.latentmap.map_files import vae_folder
    from ssl_core.models.vae import VAE

    folder = vae_folder(project)
    if not (folder / "config.json").is_file():
        return None
    try:
        vae = VAE.load(folder)
    except (ModelFileError, OSError, KeyError, RuntimeError, ValueError):
        return None
    if not vae.draws_images or tuple(vae.input_shape_) != tuple(X.shape[1:]):
        return None
    return vae


def _generated(ctx, run_id: int, model) -> dict[str, Any] | None:
    """The fit's generated-image record for the summary; its grid goes to generated.png
    (written only while the worker still owns the job)."""
    record = getattr(model, "gen_augment_", None)
    grid = getattr(model, "gen_grid_", None)
    if record is None:
        return None
    check = getattr(ctx, "check_claim", None)
    if grid is not None and record.get("n_used_total"):
        if check is not None:
            check()
        write_generated(ctx.project, run_id, grid)
    return dict(record)


def _prune_old_runs(project) -> list[int]:
    """Old runs' model folders go (results/retention.py: the newest few per method, pinned,
    exported and the current predictions' run stay); a failure to delete never fails the run."""
    try:
        return list(prune_runs(project).deleted)
    except OSError:
        return []


def label_snapshot(ctx) -> tuple[int, np.ndarray]:
    """(N, labels (N,) class id or -1) read in ONE transaction, so the image count and the
    labels are of the same moment: an import or a label committed meanwhile is in both or in
    neither. It is a (fenced) write transaction because the job notes in the same breath which
    label-log version it trains on: a Retrain pressed later with the same settings and no new
    label is then this job, not a second fit (retrain.py)."""
    with ctx.project.store.write() as conn:
        fence = getattr(ctx, "fence", None)
        if fence is not None:
            fence(conn)
        n, labels = labels_snapshot(conn)
        record_snapshot(conn, ctx.job_id, labels_version(conn))
    return n, labels


def _decide_representation(ctx, X: np.ndarray, labels: np.ndarray) -> RepresentationChoice | None:
    """A small greyscale project left on 'auto' compares pixels with pretrained features on its
    labels once every class has enough of them, and keeps the winner for the next map and
    retrain (representation_choice.py). Runs after this run's results are saved, so they show
    as fast as before; decided once; the user can still choose on the Images page."""
    store = ctx.project.store
    if (store.get_meta(META_KEY, "auto") not in ("auto", "") or store.get_meta(AUTO_KEY)
            or default_representation(tuple(X.shape[1:])) != PIXELS or not enough_labels(labels)):
        return None
    ctx.progress(0.99, "comparing pixels and pretrained features on your labels (for the next "
                       "retrain)")
    choice = choose_by_labels(X, labels)
    with store.write() as conn:
        fence = getattr(ctx, "fence", None)
        if fence is not None:
            fence(conn)
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (AUTO_KEY, choice.to_json()))
    return choice


def _warm_start(project, method: str, model, representation: str) -> tuple[Any, int | None]:
    """The newest finished run of `method` on the same representation whose model loads, when
    the estimator can start from one (its fit takes `init`); (None, None) otherwise."""
    if not getattr(model, "warm_startable", False):
        return None, None
    for run in list_runs(project.store, limit=20):
        if (run.method != method or not run.summary
                or run.summary.get("representation", "pixels") != representation):
            continue
        folder = project.models_dir / f"run-{run.id}"
        try:
            return load_model(folder), run.id
        except (ModelFileError, OSError, KeyError, RuntimeError):
            continue                                   # removed or damaged: try an older one
    return None, None


def _baseline(ctx, X, features, representation: str, labels, images, store, seed: int,
              budget_s: float, total_s: float, n_labels: int) -> dict[str, Any]:
    """The supervised-only baseline on the same labels (same augmentation), for the gain."""
    seconds = baseline_budget(budget_s)
    ctx.progress(0.9 * budget_s / total_s, "supervised baseline on the same labels, for comparison")
    base = make_estimator("baseline", seed, representation=representation)
    reporter = LiveReporter(ctx, 0, seconds, base, label="baseline: ", record=False,
                            span=(0.9 * budget_s / total_s, 0.99))
    base.fit(X, labels, callbacks=[reporter], time_budget_s=seconds, features=features)
    pred = base.predict(X, features=features)
    return {**_summary(base, pred, images, store, n_labels), "budget_s": seconds}


def _save_atomically(model, models_dir, run_id: int, check=None):
    """Save into a temporary folder, then rename it into place: the previous model stays the
    one in use if the write fails (FileWriteError), or if `check()` raises just before the
    rename (the worker lost its job)."""
    final = models_dir / f"run-{run_id}"
    with atomic_folder(final, f"the model of run {run_id}") as tmp:
        model.save(tmp)
        if check is not None:
            check()
    return final


def _summary(model, pred: np.ndarray, images: ImageCollection, store, n_labels: int) -> dict[str, Any]:
    """pred (N,) predicted class ids. Validation from the model; test from ground truth only,
    on the sealed evaluation images (transductive: their pixels were in the unlabeled pool)."""
    validation = getattr(model, "validation_", None)
    names = {c.id: c.name for c in list_classes(store)}
    pred_names = np.array([names.get(int(p), "") for p in pred], dtype=object)
    gt = images.ground_truth()
    if len(gt.labels) != len(pred):                 # images imported since the snapshot
        gt = GroundTruth(gt.labels[:len(pred)], gt.is_test[:len(pred)], gt.class_names)
    report = test_report(pred_names, gt, list(names.values()), load_mapping(store))
    return {"n_labels": n_labels,
            "validation": None if validation is None else validation.to_dict(),
            "validation_of": getattr(model, "validation_of_", None),
            "test": None if report is None else report.accuracy.to_dict(),
            "test_report": None if report is None else report.to_dict()}
