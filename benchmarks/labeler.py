"""Simulated labeler: the app's own suggestion strategies choose which images get labels.

    python -m benchmarks.engine --dataset mnist --data-root DIR --strategy diversity --labels 50 \
        --budget-s 300 --seed 0

What the app does, with ground truth answering for the user: a VAE learns the latent space from
all images (the map's latents); the label queue's `suggest()` picks images from the training
split; the 'user' labels them with their true class; then the default method trains on those
labels. `uncertainty` needs a model, so it runs in rounds: a first `diversity` round, a quick
graph model, then the rest of the labels where that model is least sure. `random` is the
baseline. Prints the engine benchmark's JSON plus `strategy` and the labels per class it ended
with. The whole run, VAE included, counts against `--budget-s`.
"""
from __future__ import annotations

import resource
import time

import numpy as np

from ssl_core.labeling.suggest import suggest
from ssl_core.models.graph_classifier import GraphClassifier
from ssl_core.models.registry import make_estimator
from ssl_core.models.vae import VAE, VAEConfig

VAE_SHARE = 0.15          # of the budget for the latent space (45 s of 300)
FIRST_ROUND = 0.4         # uncertainty: share of the labels picked by diversity first


def run_labeler(data, dataset: str, strategy: str, n_labels: int, budget_s: float, seed: int,
                t0: float) -> dict:
    """`data` is a bench.BenchData; `t0` when loading began (its time counts)."""
    budget_end = t0 + budget_s
    train = ~data.is_test
    vae = VAE.from_config(VAEConfig(), seed).fit(data.images, time_budget_s=VAE_SHARE * budget_s)
    latents = vae.transform(data.images)                               # (N, 16)
    excluded = data.is_test                                            # the user labels training images
    y = np.full(len(data.labels), -1, np.int64)
    if strategy == "uncertainty":
        first = max(2, int(round(FIRST_ROUND * n_labels)))
        _answer(y, data, suggest("diversity", first, latents, y >= 0, seed=seed, exclude=excluded))
        quick = GraphClassifier(random_state=seed).fit(data.images, y)
        proba = np.zeros((len(y), 0)) if len(quick.classes_) < 2 else quick.node_proba_
        picks = suggest("uncertainty", n_labels - first, latents, y >= 0, proba=proba, seed=seed,
                        exclude=excluded)
    else:
        picks = suggest(strategy, n_labels, latents, y >= 0, seed=seed, exclude=excluded)
    _answer(y, data, picks)
    model = make_estimator("default", seed)
    model.fit(data.images, y, time_budget_s=budget_end - time.perf_counter())
    test = data.is_test
    acc = float((model.predict(data.images[test]) == data.labels[test]).mean())
    per_class = np.bincount(y[y >= 0], minlength=int(data.labels.max()) + 1)
    validation = getattr(model, "validation_", None)
    return {"dataset": dataset, "method": "default", "strategy": strategy, "labels": int((y >= 0).sum()),
            "labels_per_class": round(float((y >= 0).sum()) / len(per_class), 2),
            "label_counts": per_class.tolist(), "seed": seed, "budget_s": budget_s,
            "seconds": round(time.perf_counter() - t0, 1), "test_accuracy": round(acc, 4),
            "val_accuracy": None if validation is None else round(validation.value, 4),
            "val_n": None if validation is None else validation.n,
            "train_images": int(train.sum()),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _answer(y: np.ndarray, data, picks: np.ndarray) -> None:
    """The simulated user labels the suggested images with their true classes."""
    y[picks] = data.labels[picks]
