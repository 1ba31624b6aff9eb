"""Engine benchmark: one run of one method on one dataset, printed as one JSON line.

    python -m benchmarks.engine --dataset mnist --data-root ../shared/data \
        --labels-per-class 10 --method default --budget-s 180 --seed 0
    python -m benchmarks.engine --dataset mnist --data-root ../shared/data \
        --strategy diversity --labels 50 --budget-s 300 --seed 0      # see labeler.py
    python -m benchmarks.engine --dataset folder --path ~/photos \
        --labels-per-class 3 --method default --budget-s 120 --seed 0   # class subfolders = truth

Protocol (issue 3): labels are drawn at random per class with the seed from the training split;
the test split is the dataset's own (digits: a fixed stratified 20%). The supervised baseline
gets the labeled images only. Two protocols (issue 14), one per run, say which in the row:
- `--protocol transductive` (default; `test_accuracy`): semi-supervised methods get every
  image's pixels — train and test, as the app imports them all — with only the drawn labels;
  the test labels are used for scoring alone.
- `--protocol inductive` (`test_accuracy_inductive`): the evaluation images are withheld from
  fit entirely and predicted afterwards, as the papers score unseen test images.
`--split dev` scores on a fixed development part of the training split (DEV_FRACTION of it,
chosen once by DEV_SEED) and drops the test split altogether: every tuning experiment uses it;
the test split is for the final tables only. `seconds` is wall time from raw pixels (loading, all pretraining, fit, test
predictions), so it must stay within `--budget-s`. `peak_rss_mb` is this process's peak.

A folder (`--dataset folder --path DIR`) is imported exactly as the app imports it (into a
temporary project: sizes, channels, transparency, the stable 20% evaluation split by file-name
hash); its class subfolders are the ground truth. Small folders make a small test split, so
rows also carry `rest_accuracy`: accuracy on every image that got no label (train and test
split; under `--protocol inductive`, the withheld images). `representation` is what the method saw ('auto' resolves per image shape).

`--gen-augment` (issue 17; methods default, vae, baseline) adds generated labelled images to
the classifier's training set (ssl_core/models/generated.py; `--gen-per-class`, `--gen-weight`,
`--gen-min-confidence`, `--gen-source` override the method's defaults). Every row records
`gen_augment` (false without it); with it, the settings, `gen_n_used` (kept in all) and
`gen_note`. With it the baseline is fitted on every image `fit` may see (its classifier still
trains on the labels alone; the generator learns from the unlabeled pixels).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import dataclass

import numpy as np

DATASETS = ("digits", "mnist", "fashion-mnist", "folder")
PREDICT_RESERVE_S = 3.0   # kept for the test-split predictions after fit
SPLITS = ("test", "dev")
PROTOCOLS = ("transductive", "inductive")
DEV_FRACTION = 0.2        # of the training split, scored instead of the test split by --split dev
DEV_SEED = 20261202       # fixed: every dev run of a dataset scores the same images


@dataclass
class BenchData:
    images: np.ndarray   # (N, H, W, C) uint8, train then test
    labels: np.ndarray   # (N,) ground truth
    is_test: np.ndarray  # (N,) bool


def load_bench_data(dataset: str, data_root: str | None, path: str | None = None) -> BenchData:
    from ssl_core.data.sources import SourceSpec, load_source
    if dataset == "folder":
        return _import_folder(path)
    data = load_source(SourceSpec(dataset, data_root=data_root, download=False))
    return BenchData(data.images, data.gt, data.is_test)


def _import_folder(path: str | None) -> BenchData:
    """Import a folder of class subfolders the way the app does, into a temporary project."""
    import tempfile

    from ssl_core.data.collection import ImageCollection
    from ssl_core.data.importer import import_source
    from ssl_core.data.sources import SourceError, SourceSpec
    from ssl_core.project.folder import Project

    if not path:
        raise SourceError("--dataset folder needs --path DIR (class subfolders = ground truth)")
    with tempfile.TemporaryDirectory(prefix="bench-folder-") as tmp:
        project = Project.create(tmp)
        report = import_source(project, SourceSpec("folder", path=path))
        if not report.imported:
            raise SourceError(report.summary())
        store = ImageCollection(project)
        truth = store.ground_truth()
        images = np.array(store.images())                    # (N, H, W, C): a copy, tmp goes
    keep = truth.labels >= 0                                 # top-level files have no truth
    return BenchData(images[keep], truth.labels[keep], truth.is_test[keep])


def development_split(data: BenchData) -> BenchData:
    """The training split alone, with a fixed DEV_FRACTION of it (stratified, DEV_SEED) marked
    as the evaluation part: the test split's images are dropped, never seen by a tuning run."""
    train = np.flatnonzero(~data.is_test)
    labels = data.labels[train]
    rng = np.random.RandomState(DEV_SEED)
    dev = np.zeros(len(train), bool)
    for c in np.unique(labels):
        ids = rng.permutation(np.flatnonzero(labels == c))
        dev[ids[:int(round(DEV_FRACTION * len(ids)))]] = True
    return BenchData(data.images[train], labels, dev)


def draw_labels(labels: np.ndarray, candidates: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """`per_class` random ids of each class among `candidates` (the training split), seeded."""
    rng = np.random.RandomState(seed)
    picks = [rng.choice(candidates[labels[candidates] == c], per_class, replace=False)
             for c in np.unique(labels[candidates])]
    return np.sort(np.concatenate(picks))


def make_method(method: str, seed: int, dataset: str, baseline_family: str, augment: bool,
                representation: str = "auto", gen_augment: dict | None = None):
    """`gen_augment`: None (off), or the option's settings (None values: the method's own)."""
    from ssl_core.models.generated import gen_augment_for
    from ssl_core.models.registry import make_estimator
    params = {"representation": representation}
    if method == "baseline":
        params.update(family=baseline_family, augment=augment)
    if gen_augment is not None:
        params["gen_augment"] = gen_augment_for(method, **gen_augment)
    return make_estimator(method, seed, **params)


def run(dataset: str, data_root: str | None, labels_per_class: int, method: str, budget_s: float,
        seed: int, baseline_family: str = "cnn", augment: bool = True, path: str | None = None,
        representation: str = "auto", split: str = "test", protocol: str = "transductive",
        gen_augment: dict | None = None) -> dict:
    """One run, as one row. `gen_augment`: None, or generated-image settings (make_method)."""
    from benchmarks.rows import code_changed, current_commit
    from ssl_core.models.representation import feature_matrix, resolve_representation

    if split not in SPLITS or protocol not in PROTOCOLS:
        raise ValueError(f"split must be one of {SPLITS}, protocol one of {PROTOCOLS}")
    t0, load_avg = time.perf_counter(), os.getloadavg()[0]      # a busy machine costs accuracy
    data = load_bench_data(dataset, data_root, path)
    if split == "dev":
        data = development_split(data)
    train_ids = np.flatnonzero(~data.is_test)
    labeled = draw_labels(data.labels, train_ids, labels_per_class, seed)
    y = np.full(len(data.labels), -1, np.int64)
    y[labeled] = data.labels[labeled]
    rep = resolve_representation(representation, data.images.shape[1:])
    model = make_method(method, seed, dataset, baseline_family, augment, rep,  # torch: counted
                        gen_augment)
    feats = feature_matrix(rep, data.images)       # once for fit and predictions (None: pixels)
    features_s = time.perf_counter() - t0
    left = budget_s - (time.perf_counter() - t0) - PREDICT_RESERVE_S
    test = data.is_test
    seen = np.flatnonzero(~test) if protocol == "inductive" else np.arange(len(y))   # fit's images
    rows_of = lambda ids: None if feats is None else feats[ids]  # noqa: E731
    if method == "baseline" and gen_augment is None:   # supervised only: the labeled images alone
        model.fit(data.images[labeled], y[labeled], time_budget_s=left, features=rows_of(labeled))
    elif protocol == "inductive":                 # the evaluation images never reach fit
        model.fit(data.images[seen], y[seen], time_budget_s=left, features=rows_of(seen))
    else:
        model.fit(data.images, y, time_budget_s=left, features=feats)
    pred = np.full(len(y), -1, np.int64)                                       # (N,)
    if protocol == "inductive":                   # unseen images, predicted after fit
        pred[test] = model.predict(data.images[test], features=rows_of(np.flatnonzero(test)))
        rest = test
    else:
        pred[:] = model.predict(data.images, features=feats)
        rest = y < 0
    accuracy = round(float((pred[test] == data.labels[test]).mean()), 4)
    validation = getattr(model, "validation_", None)
    row = {"dataset": dataset, "method": method, "labels_per_class": labels_per_class, "seed": seed,
           "budget_s": budget_s, "seconds": round(time.perf_counter() - t0, 1),
           "split": split, "protocol": protocol,
           "representation": rep, "features_s": round(features_s, 1),
           ("test_accuracy" if protocol == "transductive" else "test_accuracy_inductive"): accuracy,
           "rest_accuracy": round(float((pred[rest] == data.labels[rest]).mean()), 4),
           "n_images": len(data.labels), "n_test": int(test.sum()), "n_fit": len(seen),
           "val_accuracy": None if validation is None else round(validation.value, 4),
           "val_n": None if validation is None else validation.n,
           "validation_of": getattr(model, "validation_of_", None),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "load_avg_start": round(load_avg, 2), "commit": current_commit()}
    if code_changed():
        row["uncommitted_changes"] = True
    if method == "baseline":
        row.update(baseline_family=baseline_family, augment=augment)
    if hasattr(model, "rollbacks_"):
        row["gan_rollbacks"] = model.rollbacks_
    if hasattr(model, "history_"):
        row["stages"] = model.history_
    row.update(gen_row(getattr(model, "gen_augment_", None)))
    return row


def gen_row(record: dict | None) -> dict:
    """A fit's generated-image record (generated.record) as row fields."""
    if not record:
        return {"gen_augment": False}
    return {"gen_augment": True, "gen_source": record["source"],
            "gen_per_class": record["per_class"], "gen_weight": record["weight"],
            "gen_min_confidence": record["min_confidence"], "gen_n_drawn": record["n_drawn"],
            "gen_n_used": record["n_used_total"], "gen_n_used_per_class": record["n_used"],
            "gen_generator": record["generator"], "gen_note": record["note"]}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--data-root", default=None, help="torchvision-style data root (not for digits)")
    p.add_argument("--path", default=None, help="with --dataset folder: a folder of class folders")
    p.add_argument("--representation", default="auto",
                   help="'auto' (by image shape), 'pixels' or a feature extractor name")
    p.add_argument("--split", choices=SPLITS, default="test",
                   help="score on the test split (final tables) or a fixed dev part of train (tuning)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="transductive",
                   help="transductive: the scored images' pixels are in fit's unlabeled pool, as in "
                        "the app; inductive: they are withheld from fit and predicted afterwards")
    p.add_argument("--labels-per-class", type=int, default=10)
    p.add_argument("--method", choices=("default", "baseline", "vae", "gan", "graph"), default="default")
    p.add_argument("--budget-s", type=float, default=180.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline-family", choices=("cnn", "gan", "vae"), default="cnn",
                   help="baseline network: the default's CNN, the GAN's or the VAE's MLP")
    p.add_argument("--no-augment", action="store_true", help="baseline without augmentation")
    p.add_argument("--strategy", choices=("diversity", "uncertainty", "random"), default=None,
                   help="simulated labeler: the app's suggestions choose --labels images to label")
    p.add_argument("--labels", type=int, default=50, help="with --strategy: how many labels in all")
    p.add_argument("--gen-augment", action="store_true",
                   help="add generated labelled images to the classifier's training set "
                        "(methods default, vae, baseline; ssl_core/models/generated.py)")
    p.add_argument("--gen-per-class", type=int, default=None,
                   help="with --gen-augment: examples drawn per class (default: the method's)")
    p.add_argument("--gen-weight", type=float, default=None,
                   help="with --gen-augment: loss weight of a generated example")
    p.add_argument("--gen-min-confidence", type=float, default=None,
                   help="with --gen-augment: keep an example when the classifier gives its class "
                        "at least this probability")
    p.add_argument("--gen-source", choices=("vae", "gan"), default=None,
                   help="with --gen-augment: the generator (default: vae)")
    p.add_argument("--out", default=None, help="also append the JSON line to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.dataset not in ("digits", "folder") and not args.data_root:
        print(f"--data-root is needed for {args.dataset}", file=sys.stderr)
        return 2
    from ssl_core.data.sources import SourceError
    try:
        if args.strategy:
            from benchmarks.labeler import run_labeler
            t0 = time.perf_counter()
            row = run_labeler(load_bench_data(args.dataset, args.data_root, args.path),
                              args.dataset, args.strategy, args.labels, args.budget_s, args.seed, t0)
        else:
            gen = None if not args.gen_augment else {
                "per_class": args.gen_per_class, "weight": args.gen_weight,
                "min_confidence": args.gen_min_confidence, "source": args.gen_source}
            row = run(args.dataset, args.data_root, args.labels_per_class, args.method, args.budget_s,
                      args.seed, args.baseline_family, not args.no_augment, args.path,
                      args.representation, args.split, args.protocol, gen)
    except (SourceError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    line = json.dumps(row)
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
