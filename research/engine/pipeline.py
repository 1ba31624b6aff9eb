"""Default pipeline: graph pseudo-labels -> CNN distillation -> CNN-embedding graph -> CNN again."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .base import Timer
from .cnn import DistillConfig, SmallCNN, predict_logits, train_distill
from .graph import knn, knn_graph, poisson_learning
from .graph_ssl import GraphConfig, GraphSSLClassifier


@dataclass
class PipelineConfig:
    graph: GraphConfig = field(default_factory=GraphConfig)  # stage 1: deskew-PCA kNN graph + Poisson
    cnn: DistillConfig = field(default_factory=DistillConfig)  # stage 2+: distillation student
    rounds: int = 2                 # CNN rounds; round r>1 trains on (CNN-embedding graph ∩ CNN) labels
    min_round_s: float = 60.0       # do not start a round with less CNN time than this
    reserve_s: float = 8.0          # kept free for embedding/inference per round
    small_budget_s: float = 300.0   # below this total budget use the narrow CNN (throughput > width)
    small_width: tuple[int, int, int] = (16, 32, 64)  # ~2x faster than (32, 64, 128), -0.2 %
    min_images_for_cnn: int = 5000  # digits (1.8k 8x8 images): CNN student fell to 86-92 %, graph alone 96 %


class SSLPipelineClassifier(GraphSSLClassifier):
    """Best-accuracy-per-second pipeline. fit(X (N,H,W,C) uint8, y with -1 = unlabeled).

    Stage 1 (GraphSSLClassifier): pseudo-labels for all N images (~25 s for 70k on 2 cores).
    Stage 2: SmallCNN trained on all pseudo-labels with shift/rotation augmentation; the CNN
    corrects part of the graph's errors. Stage 3 (if budget): kNN graph on CNN embeddings ->
    Poisson; images where it agrees with the CNN become the next round's targets.
    `time_budget_s` bounds the whole fit; CNN schedules anneal to the remaining time.
    """

    def __init__(self, config: PipelineConfig | None = None, random_state: int = 0,
                 time_budget_s: float | None = 180.0, n_threads: int = 2, verbose: bool = False):
        self.config = config
        self.random_state = random_state
        self.time_budget_s = time_budget_s
        self.n_threads = n_threads
        self.verbose = verbose

    def fit(self, X: np.ndarray, y: np.ndarray) -> "SSLPipelineClassifier":
        torch.set_num_threads(self.n_threads)
        timer = Timer(self.time_budget_s)
        cfg = self.config or PipelineConfig()
        x, yi = self._prepare(X, y)
        self.fit_graph_(x, yi, cfg.graph)
        self.history_ = [("graph", timer.elapsed())]
        labeled = np.flatnonzero(yi >= 0)
        targets = self.scores_.argmax(1)  # (N,) pseudo-labels
        targets[labeled] = yi[labeled]
        weights = np.ones(len(x))
        weights[labeled] = cfg.cnn.labeled_weight
        cnn_cfg = cfg.cnn
        if self.time_budget_s is not None and self.time_budget_s < cfg.small_budget_s:
            cnn_cfg = DistillConfig(**{**cnn_cfg.__dict__, "width": cfg.small_width})
        self.model_: SmallCNN | None = None
        n_rounds = cfg.rounds if len(x) >= cfg.min_images_for_cnn else 0
        for r in range(n_rounds):
            rounds_left = cfg.rounds - r
            budget = (timer.left() - cfg.reserve_s * rounds_left - (rounds_left - 1) * 20.0) / rounds_left
            if budget < cfg.min_round_s and self.model_ is not None:
                break
            budget = max(budget, 5.0)
            self.model_ = train_distill(x, targets, weights, cnn_cfg, self.n_classes_,
                                        seed=self.random_state + r, time_budget_s=budget)
            self.history_.append((f"cnn{r}", timer.elapsed()))
            if r == cfg.rounds - 1 or timer.left() < cfg.min_round_s + 30:
                break
            logits, emb = predict_logits(self.model_, x, embedding=True)  # (N, K), (N, hidden)
            idx, dist = knn(emb, cfg.graph.n_neighbors)
            u = poisson_learning(knn_graph(idx, dist), labeled, yi[labeled], self.n_classes_)
            targets = u.argmax(1)
            targets[labeled] = yi[labeled]
            weights = (targets == logits.argmax(1)).astype(np.float64)  # keep CNN/graph agreement
            weights[labeled] = cnn_cfg.labeled_weight
            self.history_.append((f"embgraph{r}", timer.elapsed()))
            if self.verbose:
                print(f"round {r}: agreement {weights.mean():.4f} t={timer.elapsed():.0f}s", flush=True)
        self.fit_seconds_ = timer.elapsed()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.model_ is None:  # graph-only mode (small data sets)
            return super().predict_proba(X)
        logits = predict_logits(self.model_, self._to_float(X))  # (N, K)
        p = np.exp(logits - logits.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """CNN embedding (N, hidden); graph features in graph-only mode."""
        if self.model_ is None:
            return super().transform(X)
        return predict_logits(self.model_, self._to_float(X), embedding=True)[1]
