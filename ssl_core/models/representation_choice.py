"""Pixels or pretrained features for small greyscale images: decided on the user's own labels.

Why: benchmarks/representation.jsonl shows no rule of image shape that holds. On 28x28
greyscale images, pixels win on handwritten digits (MNIST 95.8% vs 84.3% with 3 labels per
class, digits 95.0% vs 74.9%) and lose on clothing (Fashion-MNIST 63.5% vs 75.3%). Colour
photos are no contest (25.9% vs 86.5%), so they always get features. For small greyscale
projects the train job therefore asks the labels: once every class has MIN_LABELS_PER_CLASS
labels, the graph stage is cross-validated on the labeled images with each representation, on
the labeled images plus a sample of unlabeled ones (the graph needs them; features of a sample
cost seconds, not the minutes of a whole 70,000-image set), and the better one is kept for the
project (ties: pixels, which cost nothing). The user's explicit choice always wins.
"""
from __future__ import annotations

import math

import numpy as np

from ssl_core.features.choice import (
    MIN_LABELS_PER_CLASS,
    PIXELS,
    PRETRAINED_DEFAULT,
    RepresentationChoice,
    enough_labels,
)
from ssl_core.models.graph_classifier import GraphClassifier

__all__ = ["MIN_LABELS_PER_CLASS", "RepresentationChoice", "choose_by_labels", "enough_labels"]

SAMPLE = 1500            # images in the comparison graphs (all labeled ones included):
                         # features of 1,500 small images take ~8 s on 2 cores


def choose_by_labels(X: np.ndarray, labels: np.ndarray,
                     candidates: tuple[str, ...] = (PIXELS, PRETRAINED_DEFAULT),
                     sample: int = SAMPLE, seed: int = 0) -> RepresentationChoice:
    """Fit the graph stage on X (N, H, W, C) uint8 with `labels` (N,) once per candidate, on the
    labeled images plus a seeded sample of the others (at most `sample` in all), and keep the
    candidate whose validation accuracy on the labels is highest (ties: the first)."""
    labeled = np.flatnonzero(labels >= 0)
    rest = np.flatnonzero(labels < 0)
    rng = np.random.default_rng(seed)
    extra = rng.choice(rest, min(len(rest), max(0, sample - len(labeled))), replace=False)
    ids = np.sort(np.concatenate([labeled, extra]))
    Xs, ys = np.asarray(X[ids]), labels[ids]                      # (S, H, W, C), (S,)
    scores = {}
    for name in candidates:
        graph = GraphClassifier(representation=name, random_state=seed).fit(Xs, ys)
        scores[name] = graph.validation_.value if graph.validation_ is not None else math.nan
    best = max(candidates, key=lambda c: (-1.0 if math.isnan(scores[c]) else scores[c],
                                          -candidates.index(c)))
    return RepresentationChoice(best, scores, int(len(labeled)))
