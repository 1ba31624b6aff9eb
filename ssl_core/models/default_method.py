"""The default method: graph pseudo-labels -> CNN distillation -> CNN-embedding graph -> CNN.

Why this shape (engine research, MNIST with 10 labels per class, 2 CPU cores):
1. A kNN graph over ALL images on deskewed PCA pixels + Poisson learning labels every image at
   ~98.4% in ~25 s. No classifier trained on 100 labels comes close.
2. A small CNN trained on those pseudo-labels with shift/rotation/zoom augmentation corrects
   about a third of the graph's mistakes (-> 98.8-99.0%): it sees pixels, not PCA neighbours.
3. A second graph on the CNN's embeddings, keeping only images where it agrees with the CNN,
   gives cleaner targets for a second CNN (+0.1 point).
Median 99.03% in ~165 s at a 180 s budget. Below 5,000 images (e.g. scikit-learn's 8x8 digits)
the CNN student was worse than the graph (86-92% vs 96%), so small data sets stop after step 1.

On pretrained features (photos; representation.py) the graph is built on the features instead,
and a small MLP head over them is the distilled student: a CNN on 128-px photos learns nothing
useful from a few hundred pseudo-labels within minutes on a CPU, the features already carry
what it would have to learn.

Every stage shares one wall-clock budget; the CNN schedules anneal to their share of it.
`validation_` is the graph stage's accuracy on held-out user labels (the CNN rounds train on
all labels, so they have no untouched hold-out; they usually improve on the graph).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ssl_core.models.base import Budget, SSLEstimator, report_stage, staged, to_tensor
from ssl_core.models.classifier import (
    ClassifierConfig,
    forward_all,
    predict_logits,
    train_classifier,
)
from ssl_core.models.cnn import SmallCNN
from ssl_core.models.generated import (
    GenAugmentConfig,
    GenAugmentMixin,
    Generated,
    append_rows,
    extend_targets,
    generate_labelled,
    knn_scorer,
    prepare_generator,
    unusable,
)
from ssl_core.models.graph_classifier import (
    GraphCache,
    GraphClassifier,
    GraphConfig,
    graph_neighbors,
)
from ssl_core.models.mlp import FeatureHead
from ssl_core.models.propagation import knn_graph, poisson_learning
from ssl_core.neighbours import knn
from ssl_core.training.trainer import Callback, TrainerConfig


@dataclass(frozen=True)
class DefaultMethodConfig:
    representation: str = "auto"    # 'auto' | 'pixels' | a feature extractor (representation.py)
    graph: GraphConfig = field(default_factory=GraphConfig)      # stage 1
    cnn: ClassifierConfig = field(default_factory=ClassifierConfig)  # the distilled student
    head: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(  # feature mode's
        epochs=40.0, min_steps=300, batch_size=128, lr=2e-3, feature_noise=0.05))  # student
    rounds: int = 2                 # CNN rounds; round r > 1 trains on CNN/graph agreement
    labeled_weight: float = 3.0     # a user label counts 3x a pseudo-label
    min_round_s: float = 60.0       # no extra round with less CNN time than this
    reserve_s: float = 12.0         # kept per round for embedding and final predictions
    small_budget_s: float = 300.0   # below this budget use the narrow CNN (2x faster, -0.2 point)
    small_width: tuple[int, int, int] = (16, 32, 64)
    min_images_for_cnn: int = 5000  # fewer images: the graph alone is better
    warm_epochs_fraction: float = 0.4  # warm start: one CNN round of this share of the epochs
    gen_augment: GenAugmentConfig = field(default_factory=GenAugmentConfig)  # generated.py


class DefaultMethod(GenAugmentMixin, GraphClassifier):
    """fit(X (N, H, W, C) uint8, y (N,) with -1 = unlabeled). After fit: `net_` (None on small
    data), `transduction_` (the graph stage's labels of the fitted images; call predict for the
    CNN's), `history_` [(stage, seconds)], `validation_`.

    With `gen_augment.enabled` (generated.py) the student (CNN, or the feature head) also
    trains on generated labelled images: drawn per class from a VAE whose class regions are
    the graph's pseudo-labels (`fit(..., generator=<fitted pixel VAE or SSL-GAN>)`, else one
    trained here on every image within `gen_augment.generator_share` of the budget left),
    kept when the graph stage's kNN vote agrees with confidence >= `min_confidence`, and added
    to every CNN round with weight `gen_augment.weight`. Below `min_images_for_cnn` there is
    no student: `gen_augment_` says so and nothing is generated. Feature mode draws
    graph-space vectors from a VAE trained on them (a given generator draws pixels, so it is
    not used there). After fit: `gen_augment_` (record) and `gen_grid_` (K, g, H, W, C)."""
    method = "default"
    Config = DefaultMethodConfig

    def _fit(self, X: np.ndarray, codes: np.ndarray, budget: Budget, callbacks: list[Callback],
             features: np.ndarray | None = None, init: SSLEstimator | None = None,
             generator: Any = None) -> None:
        """`init`: the previous fit on the same images (the last run). Its kNN graph is reused
        (the propagation alone takes seconds) and, when the classes and network match, its CNN
        is fine-tuned for one short round instead of trained from scratch: small label changes
        give new predictions in a fraction of the time. `generator`: see the class docstring."""
        self._gen_reset()
        gen_cfg = self._gen_config()                                  # None: option off
        if features is not None:
            self._fit_features(X, codes, budget, callbacks, features, init, gen_cfg, generator)
            return
        cfg = self.config
        self.head_ = None
        x = to_tensor(X)                                              # (N, C, H, W)
        warm_net = self._warm_net(init, x.shape[1])
        n_rounds = (1 if warm_net is not None else cfg.rounds) if len(x) >= cfg.min_images_for_cnn else 0
        n_stages = 1 + n_rounds
        report_stage(callbacks, "graph", 0, n_stages, budget.elapsed())
        self.fit_graph_(x, codes, cfg.graph, reuse=init, images=X)
        self.history_ = [("graph", round(budget.elapsed(), 1))]
        report_stage(callbacks, "graph", 1, n_stages, budget.elapsed(), self._val_metrics())
        self.net_: SmallCNN | None = None
        labeled = np.flatnonzero(codes >= 0)
        targets = self.scores_.argmax(1)                              # (N,) pseudo-labels
        weights = np.ones(len(x))
        weights[labeled] = cfg.labeled_weight
        cnn_cfg = cfg.cnn
        if budget.seconds is not None and budget.seconds < cfg.small_budget_s:
            cnn_cfg = replace(cnn_cfg, width=cfg.small_width)
        if warm_net is not None:
            cnn_cfg = replace(cnn_cfg, width=init.width_, epochs=cnn_cfg.epochs * cfg.warm_epochs_fraction)
        self.width_ = cnn_cfg.width
        x_train, gen = x, None              # what the CNN trains on: the real images, then the
        if gen_cfg is not None:             # kept generated ones (generated.py)
            gen = self._generate_images(gen_cfg, X, n_rounds, budget, callbacks, generator)
            x_train = append_rows(x, gen)                             # (N + M, C, H, W)
            x = x_train[:len(X)]                                      # a view: no second copy
        for r in range(n_rounds):
            left = self._rounds_that_fit(n_rounds - r, budget)
            round_s = budget.share(1.0 / left, cfg.reserve_s * left + (left - 1) * 20.0, floor_s=5.0)
            stage = f"cnn {r + 1}/{r + left}"
            trainer = TrainerConfig(time_budget_s=round_s, seed=self.random_state + r)
            self.net_ = train_classifier(x_train, *extend_targets(targets, weights, gen, gen_cfg),
                                         len(self.classes_), cnn_cfg, trainer,
                                         staged(callbacks, stage), net=warm_net if r == 0 else None)
            self.history_.append((stage, round(budget.elapsed(), 1)))
            # the embedding graph costs about what the first graph did (same N, PCA to the same
            # dims); skip the next round unless it and a full round still fit
            needed = 1.5 * self.graph_seconds_ + cfg.min_round_s + cfg.reserve_s
            if left == 1 or budget.left() < needed:
                break
            targets, weights = self._agreement_targets(x, codes, cfg)
            self.history_.append((f"embedding graph {r + 1}", round(budget.elapsed(), 1)))
            if budget.left() < cfg.min_round_s + cfg.reserve_s:
                break                       # contention ate the time: keep this round's CNN
        report_stage(callbacks, "done", n_stages, n_stages, budget.elapsed(), self._val_metrics())
        # what validation_ measures, for whoever shows it (None: the final model itself)
        self.validation_of_ = ("the graph stage; the CNN distilled from it trains on every "
                               "label, so it has no hold-out" if self.net_ is not None else None)
        self.fit_images_ = None                                       # only previews needed it

    def _fit_features(self, X: np.ndarray, codes: np.ndarray, budget: Budget,
                      callbacks: list[Callback], features: np.ndarray,
                      init: SSLEstimator | None, gen_cfg: GenAugmentConfig | None = None,
                      generator: Any = None) -> None:
        """Feature mode: the graph on the features, then an MLP head over the graph space
        trained on every image's pseudo-label (the user's labels weigh `labeled_weight`), plus
        generated graph-space vectors with the option on."""
        cfg = self.config
        self.net_ = None
        report_stage(callbacks, "graph", 0, 2, budget.elapsed())
        self.fit_graph_(features, codes, cfg.graph, reuse=init, images=X)
        self.history_ = [("graph", round(budget.elapsed(), 1))]
        report_stage(callbacks, "graph", 1, 2, budget.elapsed(), self._val_metrics())
        z = torch.from_numpy(np.ascontiguousarray(self.features_))    # (N, d) graph space
        targets = self.scores_.argmax(1)                              # (N,) pseudo-labels
        weights = np.ones(len(z))
        weights[codes >= 0] = cfg.labeled_weight
        gen = None
        if gen_cfg is not None:
            gen = self._generate_vectors(gen_cfg, budget, callbacks, generator)
            z = append_rows(z, gen)                                   # (N + M, d)
            targets, weights = extend_targets(targets, weights, gen, gen_cfg)
        trainer = TrainerConfig(time_budget_s=budget.share(1.0, reserve_s=5.0, floor_s=2.0),
                                seed=self.random_state)
        head = FeatureHead(z.shape[1], len(self.classes_))
        self.head_ = train_classifier(z, targets, weights, len(self.classes_), cfg.head, trainer,
                                      staged(callbacks, "head"), net=head)
        self.history_.append(("head", round(budget.elapsed(), 1)))
        report_stage(callbacks, "done", 2, 2, budget.elapsed(), self._val_metrics())
        self.validation_of_ = ("the graph stage; the head distilled from it trains on every "
                               "label, so it has no hold-out")
        self.fit_images_ = None

    def _generate_images(self, cfg: GenAugmentConfig, X: np.ndarray, n_rounds: int,
                         budget: Budget, callbacks: list[Callback], given: Any
                         ) -> Generated | None:
        """The kept generated images for the CNN rounds (None when there are none: no CNN
        stage, or a given generator that does not draw these images). The generator's class
        regions are the graph's pseudo-labels of every image; the graph's kNN vote scores."""
        if n_rounds == 0:
            self._gen_keep(cfg, None, stage="none", note=(
                f"no CNN stage below {self.config.min_images_for_cnn:,} images (the graph alone "
                "classifies them): nothing to add generated images to"))
            return None
        if (why := unusable(given, X.shape[1:])) is not None:
            self._gen_keep(cfg, None, stage="none", note=why)
            return None
        report_stage(callbacks, "generator", 1, 1 + n_rounds, budget.elapsed())
        generator, how = prepare_generator(cfg, given, X, self.transduction_,
                                           budget.share(cfg.generator_share), self.random_state,
                                           staged(callbacks, "generator"))
        gen = generate_labelled(generator, self.classes_, cfg,
                                lambda imgs: GraphClassifier._predict_proba(self, imgs, None),
                                self.random_state)
        self._gen_keep(cfg, gen, generator=how, stage="cnn")
        self.history_.append(("generated", round(budget.elapsed(), 1)))
        return gen

    def _generate_vectors(self, cfg: GenAugmentConfig, budget: Budget,
                          callbacks: list[Callback], given: Any) -> Generated | None:
        """Feature mode: kept graph-space vectors (M, d) from a VAE trained on the graph space
        `features_` with the pseudo-labels as class regions, scored by the graph's kNN vote."""
        if cfg.source != "vae":
            self._gen_keep(cfg, None, stage="none", note="feature mode draws vectors from a "
                           "VAE only (source 'vae'); an SSL-GAN source is for pixel images")
            return None
        generator, how = prepare_generator(cfg, None, self.features_, self.transduction_,
                                           budget.share(cfg.generator_share), self.random_state,
                                           staged(callbacks, "generator"))
        score = knn_scorer(lambda v: v, self.features_, self.node_proba_, self.node_scale_)
        gen = generate_labelled(generator, self.classes_, cfg, score, self.random_state)
        note = ("feature vectors in the graph space (no pictures of them)"
                + ("; the given generator draws pixels, so it was not used" if given is not None
                   else ""))
        self._gen_keep(cfg, gen, generator=how, stage="head", note=note)
        self.history_.append(("generated", round(budget.elapsed(), 1)))
        return gen

    def _warm_net(self, init: SSLEstimator | None, channels: int) -> SmallCNN | None:
        """A copy of `init`'s CNN when it can be fine-tuned here: same classes, same input."""
        net = getattr(init, "net_", None)
        if (net is None or not np.array_equal(getattr(init, "classes_", []), self.classes_)
                or tuple(init.input_shape_) != tuple(self.input_shape_)):
            return None
        copy = SmallCNN(channels, len(self.classes_), tuple(init.width_), self.config.cnn.hidden)
        copy.load_state_dict(net.state_dict())
        return copy

    def _rounds_that_fit(self, wanted: int, budget: Budget) -> int:
        """How many of the `wanted` remaining CNN rounds fit the budget with at least
        `min_round_s` each; when only one does, it gets all the time left (no idle budget)."""
        cfg = self.config
        for rounds in range(wanted, 1, -1):
            share = budget.share(1.0 / rounds, cfg.reserve_s * rounds + (rounds - 1) * 20.0)
            if share is None or share >= cfg.min_round_s:
                return rounds
        return 1

    def _agreement_targets(self, x: torch.Tensor, codes: np.ndarray, cfg: DefaultMethodConfig
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Poisson over a kNN graph of the CNN's embeddings; images where that graph and the CNN
        agree (99.7% on MNIST) become the next round's targets, the rest sit it out."""
        logits, emb = forward_all(self.net_, x)                       # (N, K), (N, hidden)
        labeled = np.flatnonzero(codes >= 0)
        emb = emb - emb.mean(0)
        dims = min(cfg.graph.n_components, emb.shape[1], len(emb) - 1)
        _, _, v = torch.pca_lowrank(emb, q=dims, center=False)         # (hidden, d)
        idx, dist = knn((emb @ v).numpy(), graph_neighbors(cfg.graph, len(x)), exact=True)
        scores = poisson_learning(knn_graph(idx, dist), labeled, codes[labeled], len(self.classes_))
        targets = scores.argmax(1)
        targets[labeled] = codes[labeled]
        weights = (targets == logits.argmax(1).numpy()).astype(np.float64)
        weights[labeled] = cfg.labeled_weight
        return targets, weights

    def _predict_proba(self, X: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        if self.head_ is not None:                                    # feature mode
            z = torch.from_numpy(self.graph_space(X, features))
            return torch.softmax(predict_logits(self.head_, z), 1).numpy()
        if self.net_ is None:                                         # graph-only (small data)
            return super()._predict_proba(X, features)
        return torch.softmax(predict_logits(self.net_, to_tensor(X)), 1).numpy()

    @torch.no_grad()
    def _transform(self, X: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """The classifier's embedding: the head's hidden layer (feature mode), the CNN's
        (N, hidden), or the graph space on small data."""
        if self.head_ is not None:
            z = torch.from_numpy(self.graph_space(X, features))
            return torch.cat([self.head_.embedding(z[s:s + 4096]) for s in range(0, len(z), 4096)]
                             ).numpy() if len(z) else np.zeros((0, self.head_.head.in_features), np.float32)
        if self.net_ is None:
            return super()._transform(X, features)
        return forward_all(self.net_, to_tensor(X))[1].numpy()

    def _state(self) -> dict[str, Any]:
        if self.head_ is not None:
            return {"kind": "head", "head": self.head_.state_dict(), **super()._state(),
                    **self._gen_state()}
        if self.net_ is None:
            return {"kind": "graph", **super()._state(), **self._gen_state()}
        return {"kind": "cnn", "net": self.net_.state_dict(), "width": list(self.width_),
                "graph": self.graph_cache_.state(), **self._gen_state()}

    def _set_state(self, state: dict[str, Any], meta: dict[str, Any]) -> None:
        self.net_, self.head_ = None, None
        self._gen_set_state(state)
        if state["kind"] in ("graph", "head"):
            super()._set_state(state, meta)
        if state["kind"] == "head":
            self.head_ = FeatureHead(self.features_.shape[1], len(self.classes_))
            self.head_.load_state_dict(state["head"])
            self.head_.eval()
        if state["kind"] != "cnn":
            return
        self.width_ = tuple(state["width"])
        self.graph_cache_ = GraphCache.from_state(state["graph"])
        self.net_ = SmallCNN(self.input_shape_[2], len(self.classes_), self.width_, self.config.cnn.hidden)
        self.net_.load_state_dict(state["net"])
        self.net_.eval()
