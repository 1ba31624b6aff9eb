"""VAE-based semi-supervised classifier: VAE latent space -> kNN graph -> Poisson pseudo-labels
-> the VAE's own encoder fine-tuned as a classifier on them.

The VAE learns from all images without labels; its latent neighbourhoods carry the classes
(a kNN graph on 16-D latents of deskewed MNIST propagates 10 labels per class to ~96.8%).
Distilling the propagated labels into the pretrained encoder plus a linear head, with
shift/rotation augmentation, gives a fast inductive classifier (97.75% median in ~110 s, engine
research) — against 70% for the same network trained on the 100 labels alone.
Generates too: `sample(n, label)` decodes draws from each class's latent Gaussian.
Small sets train the VAE for at least its `min_steps` (20 epochs of 3,000 MNIST images are 220
steps: 58% with 100 labels, 94% after ~2,000). Images under `small_image_pixels` (8x8
digits) also get their own VAE settings: with MNIST's (full KL weight, deskewing) the VAE
posterior-collapses there and the latent graph reaches only 50-70%; small batches at KL weight
0.25 lift it to ~95% at 5 labels per class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ssl_core.models.base import Budget, SSLEstimator, report_stage, staged
from ssl_core.models.classifier import (
    ClassifierConfig,
    predict_logits,
    train_classifier,
)
from ssl_core.models.conv_nets import ConvEncoderClassifier, uses_conv_nets
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
    GraphConfig,
    graph_neighbors,
    knn_vote,
    node_proba,
    propagate_labels,
)
from ssl_core.models.mlp import EncoderMLP
from ssl_core.models.preprocessing import FeatureProjection, projection_from_state
from ssl_core.models.propagation import knn_graph
from ssl_core.models.representation import PIXELS, feature_matrix
from ssl_core.models.vae import VAE, VAEConfig
from ssl_core.neighbours import knn
from ssl_core.training.trainer import Callback, TrainerConfig


@dataclass(frozen=True)
class VAEMethodConfig:
    representation: str = "auto"    # 'auto' | 'pixels' | a feature extractor (representation.py)
    vae: VAEConfig = field(default_factory=lambda: VAEConfig(epochs=20.0, deskew=True))
    graph: GraphConfig = field(default_factory=lambda: GraphConfig(propagation="poisson"))
    small_vae: VAEConfig = field(default_factory=lambda: VAEConfig(batch_size=64, beta=0.25))
    small_image_pixels: int = 100     # H*W*C below this uses `small_vae` (8x8 digits: 64)
    conv_vae: VAEConfig = field(default_factory=lambda: VAEConfig(batch_size=64))  # colour/large
    feature_vae: VAEConfig = field(default_factory=lambda: VAEConfig(  # feature vectors
        hidden=(256, 128), batch_size=64, beta=0.1))
    vae_time_fraction: float = 0.55   # share of the budget the VAE may use
    classifier: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(
        epochs=4.0, min_steps=500, batch_size=256, lr=1e-3))  # low rate keeps the pretraining
    feature_classifier: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(
        epochs=40.0, min_steps=300, batch_size=128, lr=1e-3, feature_noise=0.3))
    labeled_weight: float = 3.0       # a user label counts 3x a pseudo-label
    min_classifier_s: float = 20.0    # less time left than this: skip the classifier and predict
                                      # by a kNN vote in latent space (a busy machine, tiny budget)
    gen_augment: GenAugmentConfig = field(default_factory=GenAugmentConfig)  # generated.py

    def vae_for(self, input_shape: tuple[int, ...], representation: str = PIXELS) -> VAEConfig:
        """The VAE settings for images of `input_shape` (H, W, C) in this representation."""
        if representation != PIXELS:
            return self.feature_vae
        if uses_conv_nets(input_shape):
            return self.conv_vae
        return self.small_vae if int(np.prod(input_shape)) < self.small_image_pixels else self.vae


class VAEMethod(GenAugmentMixin, SSLEstimator):
    """fit(X (N, H, W, C) uint8, y (N,) with -1 = unlabeled); `transform` -> VAE latents (N, z);
    `sample(n, label)` -> (n, H, W, C) uint8 (pixel mode) or `sample_vectors(n, label)` -> (n, d)
    (feature mode, in `graph_space`); `vae_` is the fitted VAE estimator, `projection_` the
    features' projection (None in pixel mode).

    With `gen_augment.enabled` (generated.py) the encoder classifier also trains on generated
    labelled examples: its own VAE's draws from each class's latent region (source 'vae'; in
    feature mode graph-space vectors), or an SSL-GAN's (source 'gan': `fit(...,
    generator=<fitted SSLGAN>)`, else one trained here on the pseudo-labels within
    `gen_augment.generator_share` of the budget left; pixel images only), kept when the
    latent graph's kNN vote agrees with confidence >= `min_confidence`. Its VAE images are
    deskewed like everything this VAE decodes; the classifier deskews its inputs anyway. When
    no classifier is trained (too little time) `gen_augment_` says so."""
    method = "vae"
    Config = VAEMethodConfig

    def _fit(self, X: np.ndarray, codes: np.ndarray, budget: Budget, callbacks: list[Callback],
             features: np.ndarray | None = None, generator: Any = None) -> None:
        """`generator`: a fitted SSL-GAN for `gen_augment.source` 'gan' (class docstring)."""
        self._gen_reset()
        gen_cfg = self._gen_config()                                  # None: option off
        cfg = self.config
        self.projection_, inputs = None, X
        if features is not None:                                      # (N, d) graph space
            self.projection_, inputs = FeatureProjection.fit(features, cfg.graph.feature_components,
                                                             self.random_state)
        vae_cfg = cfg.vae_for(self.input_shape_, self.representation_)
        self.vae_ = VAE.from_config(vae_cfg, self.random_state).fit(
            inputs, callbacks=staged(callbacks, "vae"), time_budget_s=budget.share(cfg.vae_time_fraction))
        z = self.vae_.transform(inputs)                               # (N, latent)
        report_stage(callbacks, "latent graph", 1, 3, budget.elapsed())
        idx, dist = knn(z, graph_neighbors(cfg.graph, len(X)), exact=True)
        prop = propagate_labels(knn_graph(idx, dist), codes, len(self.classes_), cfg.graph,
                                self.random_state)
        self.validation_ = prop.validation
        self.validation_of_ = ("the propagation over the VAE's latent graph (the encoder "
                               "fine-tuned after it trains on every label, so it has no hold-out)")
        pseudo = prop.scores.argmax(1)                                # (N,) codes
        self.vae_.set_class_regions(z, self.classes_[pseudo])
        self.transduction_ = self.classes_[pseudo]
        self.latents_, self.node_proba_ = z, node_proba(prop.scores).astype(np.float32)
        metrics = {} if self.validation_ is None else {"val_accuracy": self.validation_.value}
        classifier_s = budget.share(1.0, reserve_s=5.0, floor_s=0.0)
        self.net_ = None
        if classifier_s is not None and classifier_s < cfg.min_classifier_s:
            if gen_cfg is not None:
                self._gen_keep(gen_cfg, None, stage="none", note=(
                    "no classifier stage (too little time left: it predicts by a kNN vote in "
                    "latent space): nothing to add generated images to"))
            report_stage(callbacks, "done", 3, 3, budget.elapsed(), metrics)
            return                        # no time to distil: predict by latent-space kNN vote
        gen = None
        if gen_cfg is not None:
            gen = self._generate(gen_cfg, inputs, budget, callbacks, generator)
            classifier_s = budget.share(1.0, reserve_s=5.0, floor_s=1.0)
        self.net_ = self._new_classifier()
        self.net_.encoder.load_state_dict(self.vae_.net_.encoder.state_dict())
        self.net_.mu.load_state_dict(self.vae_.net_.mu.state_dict())
        weights = np.ones(len(X))
        weights[codes >= 0] = cfg.labeled_weight
        report_stage(callbacks, "classifier", 2, 3, budget.elapsed(), metrics)
        trainer = TrainerConfig(time_budget_s=classifier_s, seed=self.random_state)
        clf_cfg = cfg.classifier if features is None else cfg.feature_classifier
        train_classifier(self.vae_.encoder_inputs(append_rows(inputs, gen), cached=True),
                         *extend_targets(pseudo, weights, gen, gen_cfg), len(self.classes_),
                         clf_cfg, trainer, staged(callbacks, "classifier"), net=self.net_)
        report_stage(callbacks, "done", 3, 3, budget.elapsed(), metrics)

    def _generate(self, cfg: GenAugmentConfig, inputs: np.ndarray, budget: Budget,
                  callbacks: list[Callback], given: Any) -> Generated | None:
        """The kept generated examples for the classifier: images (M, H, W, C) uint8, or
        graph-space vectors (M, d) in feature mode; scored by a kNN vote over the fitted
        latents (the latent graph's node probabilities)."""
        generator, how = self.vae_, "this method's own VAE (class regions: its pseudo-labels)"
        if cfg.source == "gan":
            if self.projection_ is not None:
                self._gen_keep(cfg, None, stage="none", note="an SSL-GAN source draws pixel "
                               "images; feature mode draws from the VAE only (source 'vae')")
                return None
            if (why := unusable(given, inputs.shape[1:])) is not None:
                self._gen_keep(cfg, None, stage="none", note=why)
                return None
            generator, how = prepare_generator(cfg, given, inputs, self.transduction_,
                                               budget.share(cfg.generator_share),
                                               self.random_state, staged(callbacks, "generator"))
        score = knn_scorer(self.vae_.transform, self.latents_, self.node_proba_)
        gen = generate_labelled(generator, self.classes_, cfg, score, self.random_state)
        self._gen_keep(cfg, gen, generator=how, stage="classifier", note=(
            "" if self.projection_ is None else "feature vectors in the graph space (no "
            "pictures of them)"))
        return gen

    def _new_classifier(self) -> torch.nn.Module:
        """The VAE's encoder and latent mean plus a linear head (conv or MLP, as the VAE)."""
        v, k = self.vae_, len(self.classes_)
        if v.kind_ == "conv":
            return ConvEncoderClassifier(v.input_shape_[2], v.side_, v.config.conv_width,
                                         v.config.latent_dim, k)
        return EncoderMLP(int(np.prod(v.input_shape_)), k, v.config.hidden, v.config.latent_dim)

    def _vae_inputs(self, X: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """What the VAE encodes: the images (pixel mode) or their projected features (N, d)."""
        if self.projection_ is None:
            return X
        return self.projection_(feature_matrix(self.representation_, X, features))

    def _predict_proba(self, X: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        inputs = self._vae_inputs(X, features)
        if self.net_ is None:
            return knn_vote(self.vae_.transform(inputs), self.latents_, self.node_proba_)
        batch = 256 if self.vae_.kind_ == "conv" else 1024               # full-size images per batch
        logits = predict_logits(self.net_, self.vae_.encoder_inputs(inputs), batch=batch)
        return torch.softmax(logits, 1).numpy()

    def transform(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """VAE latents (N, latent_dim) of images X (feature mode: of their features)."""
        return self.vae_.transform(self._vae_inputs(X, features))

    def graph_space(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Feature mode: images X (their features when given) -> (N, d), the space
        `sample_vectors` draws in; nearest neighbours there show drawn vectors as images."""
        if self.projection_ is None:
            raise ValueError("a pixel VAE has no feature space: sample() draws images")
        return self._vae_inputs(X, features).astype(np.float32)

    @property
    def draws_images(self) -> bool:
        """True when `sample` draws images; False in feature mode (`sample_vectors`)."""
        return getattr(self, "projection_", None) is None

    def sample(self, n: int, label: int | None = None, seed: int = 0) -> np.ndarray:
        """n generated images; from class `label`'s latent region when given (pixel mode)."""
        if self.projection_ is not None:
            raise ValueError("a feature-space VAE draws feature vectors, not pixels: use "
                             "sample_vectors() and show each as its nearest real image "
                             "(graph_space())")
        return self.vae_.sample(n, label, seed)

    def sample_vectors(self, n: int, label: int | None = None, seed: int = 0) -> np.ndarray:
        """n vectors (n, d) in `graph_space`, drawn like `sample` (feature mode)."""
        return self.vae_.sample_vectors(n, label, seed)

    def preview(self, n_per_class: int = 6, seed: int = 0) -> np.ndarray | None:
        """Decoded draws from each class's latent region (once the latent graph has run); None
        in feature mode (vectors, not pictures)."""
        vae = getattr(self, "vae_", None)
        if (vae is None or getattr(vae, "class_means_", None) is None
                or getattr(self, "projection_", None) is not None):
            return None
        return np.stack([vae.sample(n_per_class, int(c), seed) if c in vae.classes_ else
                         np.full((n_per_class, *self.input_shape_), 255, np.uint8)
                         for c in self.classes_])

    def _state(self) -> dict[str, Any]:
        state = {"vae": self.vae_._state(), "vae_input_shape": list(self.vae_.input_shape_),
                 **self._gen_state()}
        if self.projection_ is not None:
            state["projection"] = self.projection_.state()
        if self.net_ is None:
            return {**state, "latents": torch.from_numpy(self.latents_),
                    "node_proba": torch.from_numpy(self.node_proba_)}
        return {**state, "net": self.net_.state_dict()}

    def _set_state(self, state: dict[str, Any], meta: dict[str, Any]) -> None:
        self.projection_ = (projection_from_state(state["projection"]) if "projection" in state
                            else None)
        self._gen_set_state(state)
        cfg = self.config.vae_for(self.input_shape_, self.representation_)
        self.vae_ = VAE.from_config(cfg, self.random_state)
        self.vae_.input_shape_ = tuple(state.get("vae_input_shape", self.input_shape_))
        self.vae_._set_state(state["vae"], meta)
        self.vae_.classes_ = self.classes_
        self.net_ = None
        if "net" not in state:
            self.latents_, self.node_proba_ = state["latents"].numpy(), state["node_proba"].numpy()
            return
        self.net_ = self._new_classifier()
        self.net_.load_state_dict(state["net"])
        self.net_.eval()
