"""Likely label errors: labels that out-of-sample predicted probabilities contradict.

Confident learning (Northcutt, Jiang & Chuang, JAIR 2021) through `cleanlab`, the maintained
implementation, on probabilities from the default method's graph stage
(models/graph_classifier.py: deskew -> PCA 50 -> exact kNN graph over ALL images, or the
project's features for photos):

1. Out-of-sample probabilities: the labeled images are dealt into stratified folds; each fold's
   labels are hidden and propagated (Poisson learning) from the other labels over the same
   graph, so no image's own label ever predicts it. The graph is built once (~12 s idle, 39 s
   on a busy 2-core machine at 70,000 images); each fold is one propagation (~5 s there).
2. `cleanlab.filter.find_label_issues` (prune_by_noise_rate) flags the likely errors;
   `cleanlab.rank.get_label_quality_scores` (self-confidence: the out-of-sample probability of
   the given label) ranks every labeled image, so a reviewer can go on past the flagged ones.

Measured on MNIST (70,000 images, 10 labels per class, 10 of the 100 flipped to a wrong class;
tuning seeds 100-104, benchmarks/quality_label_errors.py): with 5 folds all 10 flipped labels
ranked in the top 15 on every seed, by self-confidence and by normalized margin alike;
cleanlab's filter flagged 8-11 images, 8-10 of them flipped (at most 1 correct label flagged;
'prune_by_class', 'both' and 'confident_learning' flagged the same). On seed 100, 10 folds
ranked the same as 5 at twice the propagations, and Laplace learning ranked the same by
self-confidence but worse by confidence-weighted entropy (6-8 of 10 in the top 15), so Poisson
with 5 folds it is. Digits (1,797 images, 10 labels per class, 5 flipped): all 5 in the top 10
on 8 of 8 seeds, Poisson and Laplace alike.

Classes with a single label are sources for the propagation but are not checked: hiding that
label leaves its class without any source, so it would always look wrong.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ssl_core.models.graph_classifier import (
    GraphCache,
    GraphConfig,
    data_key,
    graph_inputs,
    node_proba,
    run_propagator,
)
from ssl_core.models.propagation import knn_graph
from ssl_core.neighbours import knn_query
from ssl_core.progress import Progress, no_progress, scaled
from ssl_core.training.validation import stratified_folds

FOLDS = 5              # 5 ranked the flipped MNIST labels as well as 10, at half the propagations
MIN_PER_CLASS = 2      # a class is checked only when one of its labels can be hidden
NEIGHBOURS = 5         # nearest labeled images shown beside each issue
FILTER_BY = "prune_by_noise_rate"   # cleanlab's default; 'both' and 'prune_by_class' agreed on MNIST


@dataclass(frozen=True)
class LabelIssue:
    """One labeled image. given / suggested are class codes of the caller's class list."""
    image_id: int
    given: int
    suggested: int              # argmax of the out-of-sample probabilities
    quality: float              # out-of-sample probability of the given label (low = suspect)
    flagged: bool               # cleanlab's filter calls it a label error
    neighbours: tuple[int, ...] = ()   # nearest labeled images in the graph space, nearest first


@dataclass(frozen=True)
class LabelErrorReport:
    """Every checked labeled image, worst first: cleanlab's flagged ones by quality, then the
    rest by quality. `note` says why the report is empty or what was left out."""
    issues: list[LabelIssue]
    n_labeled: int
    n_flagged: int
    method: str
    seconds: float
    note: str = ""
    graph_seconds: float = 0.0  # of seconds: building the graph (0 when one was passed in)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["issues"] = [{**asdict(i), "neighbours": list(i.neighbours)} for i in self.issues]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LabelErrorReport":
        issues = [LabelIssue(int(i["image_id"]), int(i["given"]), int(i["suggested"]),
                             float(i["quality"]), bool(i["flagged"]),
                             tuple(int(j) for j in i.get("neighbours", ())))
                  for i in d.get("issues", [])]
        return cls(issues, int(d["n_labeled"]), int(d["n_flagged"]), str(d["method"]),
                   float(d["seconds"]), str(d.get("note", "")),
                   float(d.get("graph_seconds", 0.0)))


def out_of_sample_proba(W: sp.csr_matrix, codes: np.ndarray, n_classes: int, *,
                        folds: int = FOLDS, seed: int = 0, propagation: str = "poisson",
                        max_iter: int = GraphConfig.max_iter,
                        progress: Progress | None = None) -> np.ndarray:
    """(L, K) probabilities of the labeled images (np.flatnonzero(codes >= 0) order), each from
    a propagation over W (N, N) in which its own fold's labels were hidden. codes (N,): class
    codes, -1 unlabeled. A fold whose other labels cover fewer than 2 classes gets uniform
    probabilities (nothing to learn from). `folds` >= the number of labels is leave-one-out."""
    progress = progress or no_progress
    labeled = np.flatnonzero(codes >= 0)                                     # (L,)
    proba = np.full((len(codes), n_classes), 1.0 / n_classes)               # (N, K)
    groups = stratified_folds(codes, max(2, min(folds, len(labeled))), seed)
    for f, held in enumerate(groups):
        progress(f / len(groups), f"propagating without labels fold {f + 1} of {len(groups)}")
        train = np.setdiff1d(labeled, held)
        if len(np.unique(codes[train])) < 2:
            continue
        scores = run_propagator(propagation, W, train, codes, n_classes, max_iter)   # (N, K)
        proba[held] = node_proba(scores)[held]
    progress(1.0, "out-of-sample probabilities done")
    return proba[labeled]


def nearest_labeled(space: np.ndarray, codes: np.ndarray, image_id: int,
                    k: int = NEIGHBOURS) -> np.ndarray:
    """Ids of the k labeled images nearest to `image_id` in space (N, D), itself excluded."""
    others = np.flatnonzero(codes >= 0)
    others = others[others != image_id]
    if len(others) == 0:
        return np.zeros(0, np.int64)
    idx, _ = knn_query(space[[image_id]], space[others], k)                  # (1, k)
    return others[idx[0]]


def find_label_errors(images: np.ndarray | None, codes: np.ndarray, n_classes: int, *,
                      features: np.ndarray | None = None, seed: int = 0,
                      graph: GraphCache | None = None, propagation: str = "poisson",
                      folds: int = FOLDS, progress: Progress | None = None) -> LabelErrorReport:
    """Rank the labeled images by how likely their label is wrong.

    images (N, H, W, C) uint8 (pixel projects), or `features` (N, D) (photo projects) as for
    GraphClassifier; `graph`: a GraphCache built on them (a run's `graph_cache_`) skips the
    graph build. codes (N,): the caller's class codes, -1 unlabeled (ground truth never comes
    here). Too few labels give an empty report with a `note`, never an exception."""
    progress = progress or no_progress
    t0 = time.perf_counter()
    codes = np.asarray(codes, np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=n_classes)            # (K,)
    checked = np.flatnonzero(counts >= MIN_PER_CLASS)
    method = (f"{propagation} propagation, {folds}-fold out-of-sample; cleanlab {FILTER_BY}, "
              "ranked by self-confidence")
    if len(checked) < 2:
        note = (f"needs at least {MIN_PER_CLASS} labels in each of 2 classes "
                f"(labels per class now: {counts.tolist()})")
        return LabelErrorReport([], int(counts.sum()), 0, method, 0.0, note)
    if graph is None:
        progress(0.0, "building the neighbour graph")
        inputs = graph_inputs(images, features)
        graph = GraphCache.build(inputs, GraphConfig(), seed, data_key(inputs))
    graph_seconds = time.perf_counter() - t0
    W = knn_graph(graph.idx, graph.dist)                                     # (N, N)
    present = np.flatnonzero(counts > 0)                      # propagate in present classes only
    compact = np.full(n_classes, -1, np.int64)
    compact[present] = np.arange(len(present))
    local = np.where(codes >= 0, compact[np.maximum(codes, 0)], -1)          # (N,)
    proba = out_of_sample_proba(W, local, len(present), folds=folds, seed=seed,
                                propagation=propagation,
                                progress=scaled(progress, 0.3, 0.95))       # (L, K')
    labeled = np.flatnonzero(local >= 0)
    keep = np.isin(codes[labeled], checked)
    ids, proba, given = labeled[keep], proba[keep], local[labeled[keep]]    # (M,), (M, K'), (M,)
    flagged, quality = _confident_learning(given, proba)
    order = np.lexsort((quality, ~flagged))                  # flagged first, each worst first
    near = _nearest_labeled_all(graph.features, codes, ids)
    issues = [LabelIssue(int(ids[j]), int(present[given[j]]), int(present[proba[j].argmax()]),
                         round(float(quality[j]), 6), bool(flagged[j]), near[j]) for j in order]
    left_out = int((~keep).sum())
    note = (f"{left_out} labels of classes with a single label not checked" if left_out else "")
    progress(1.0, f"{int(flagged.sum())} likely label errors")
    return LabelErrorReport(issues, len(labeled), int(flagged.sum()), method,
                            round(time.perf_counter() - t0, 2), note, round(graph_seconds, 2))


def _confident_learning(given: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flagged (M,) bool, quality (M,) float) from cleanlab. Its warnings about classes with
    few examples are expected here (a few labels per class is the normal case)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # n_jobs=1: a process pool for ~100 labels costs more than it saves, and forking a
        # process that holds torch threads is asking for trouble
        flagged = find_label_issues(given, proba, filter_by=FILTER_BY, n_jobs=1)
        quality = get_label_quality_scores(given, proba, method="self_confidence")
    return np.asarray(flagged, bool), np.asarray(quality, np.float64)


def _nearest_labeled_all(space: np.ndarray, codes: np.ndarray, ids: np.ndarray,
                         k: int = NEIGHBOURS) -> list[tuple[int, ...]]:
    """For each of ids, its k nearest labeled images in space (N, D), itself excluded."""
    labeled = np.flatnonzero(codes >= 0)                                     # (L,)
    idx, _ = knn_query(space[ids], space[labeled], min(k + 1, len(labeled)))  # (M, k + 1)
    return [tuple(int(j) for j in labeled[row] if j != i)[:k] for i, row in zip(ids, idx)]
