"""The supervised-only baseline: a classifier trained on the labeled images alone.

It exists so the app (and the benchmark) can show what the unlabeled images buy. `family`
picks the network, so each semi-supervised method is compared against its own architecture:
'cnn' (SmallCNN, the default method's student), 'gan' (the Improved-GAN discriminator MLP),
'vae' (the VAE encoder MLP). With `augment` it gets the same shift/rotation/zoom augmentation
as the semi-supervised students; without, it is the literature's classic baseline. On MNIST
with 10 labels per class those differ a lot (CNN 95.5% vs 81.8%), so reports must say which.

`validation_` is measured honestly: a model trained on a stratified 80% of the labels is scored
on the other 20%, then the returned model is refit on all labels.

With `gen_augment.enabled` (generated.py) it also trains on generated labelled images. Its
classifier stays label-only; the generator learns from every image's pixels without labels (a
VAE, given or trained here on X: pass all images, unlabeled ones with y = -1), its class
regions are the latents of the labeled images, and a kNN vote over the labeled images in the
VAE's latent space is the filter (an SSL-GAN generator: over their pixels). The validation
model draws from the regions of its own 80% of the labels and is filtered by them alone, so
the held-out labels shape nothing it trains on (an SSL-GAN generator trained on all labels
is the exception, and `validation_of_` says so). Pixel images only for now: with features
the option adds nothing and `gen_augment_` says so.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ssl_core.models.base import Budget, SSLEstimator, staged, to_tensor
from ssl_core.models.classifier import (
    ClassifierConfig,
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
from ssl_core.models.mlp import DiscriminatorMLP, EncoderMLP, FeatureHead
from ssl_core.models.preprocessing import FeatureProjection, projection_from_state
from ssl_core.models.vae import VAE
from ssl_core.training.trainer import Callback, TrainerConfig
from ssl_core.training.validation import accuracy, holdout_protocol, stratified_holdout

FAMILIES = ("cnn", "gan", "vae")


@dataclass(frozen=True)
class BaselineConfig:
    representation: str = "auto"    # 'auto' | 'pixels' | a feature extractor (representation.py)
    family: str = "cnn"             # pixels: 'cnn' | 'gan' | 'vae': which network (module doc)
    augment: bool = True            # same augmentation as the semi-supervised students
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    val_fraction: float = 0.2       # labels held out per class for validation_ (0 = none)
    gen_augment: GenAugmentConfig = field(default_factory=lambda: GenAugmentConfig(
        generator_share=0.5))       # generated.py; its classifier needs little of the budget


def build_network(family: str, input_shape: tuple[int, int, int], n_classes: int,
                  cfg: ClassifierConfig) -> torch.nn.Module:
    h, w, c = input_shape
    if family == "cnn":
        return SmallCNN(c, n_classes, cfg.width, cfg.hidden)
    if family == "gan":
        return DiscriminatorMLP(h * w * c, n_classes)
    if family == "vae":
        return EncoderMLP(h * w * c, n_classes)
    raise ValueError(f"unknown baseline family {family!r}; choose one of {', '.join(FAMILIES)}")


class SupervisedBaseline(GenAugmentMixin, SSLEstimator):
    """fit(X, y) uses only rows with y >= 0 (with `gen_augment` on, its generator learns from
    the others' pixels too; module docstring); same API as the semi-supervised estimators."""
    method = "baseline"
    Config = BaselineConfig

    def _fit(self, X: np.ndarray, codes: np.ndarray, budget: Budget, callbacks: list[Callback],
             features: np.ndarray | None = None, generator: Any = None) -> None:
        """`generator`: a fitted pixel VAE or SSL-GAN for `gen_augment` (module docstring)."""
        self._gen_reset()
        gen_cfg = self._gen_config()                                  # None: option off
        keep = np.flatnonzero(codes >= 0)
        draw = None                            # labeled rows -> their kept generated images
        if gen_cfg is not None:
            draw = self._generated_draws(gen_cfg, X, codes, features, budget, callbacks, generator)
        self.projection_ = None
        if features is None:
            x = to_tensor(X[keep])                                    # (L, C, H, W)
        else:                                    # the labeled images' features only: no PCA,
            self.projection_, z = FeatureProjection.fit(features[keep], 0, self.random_state)
            x = torch.from_numpy(z)                                   # (L, D) centred, L2
        codes = codes[keep]
        self.validation_, self.validation_of_ = None, None
        train, val = stratified_holdout(codes, self.config.val_fraction, self.random_state)
        if self.config.val_fraction > 0 and len(val) and len(np.unique(codes[train])) >= 2:
            net = self._train(x, codes, train, budget.share(1 / 3), staged(callbacks, "validation"),
                              None if draw is None else draw(train))
            pred = predict_logits(net, x[val]).argmax(1).numpy()
            self.validation_ = accuracy(codes[val], pred).with_protocol(
                holdout_protocol(self.config.val_fraction, self.random_state))
            self.validation_of_ = ("the same network trained on the other labels with a third "
                                   "of the budget (the returned one refits on all)")
            if draw is not None and self.gen_augment_.get("source") == "gan":
                self.validation_of_ += ("; optimistic: the SSL-GAN generator saw the held-out "
                                        "labels")
        gen = None
        if draw is not None:
            gen = draw(np.arange(len(codes)))
            self._gen_keep(gen_cfg, gen, generator=self.gen_augment_["generator"],
                           stage="baseline", note=self.gen_augment_["note"])
        self.net_ = self._train(x, codes, np.arange(len(codes)), budget.share(1.0, reserve_s=5.0),
                                staged(callbacks, "fit"), gen)

    def _generated_draws(self, cfg: GenAugmentConfig, X: np.ndarray, codes: np.ndarray,
                         features: np.ndarray | None, budget: Budget, callbacks: list[Callback],
                         given: Any) -> Callable[[np.ndarray], Generated] | None:
        """A function: rows of the labeled images -> generated images kept for them (class
        regions and the kNN filter from those rows' labels alone); None when the option cannot
        add anything here (recorded in `gen_augment_`)."""
        if features is not None:
            self._gen_keep(cfg, None, stage="none", note="pixel images only for now: with "
                           "pretrained features the baseline adds no generated examples")
            return None
        if (why := unusable(given, X.shape[1:])) is not None:
            self._gen_keep(cfg, None, stage="none", note=why)
            return None
        keep = np.flatnonzero(codes >= 0)
        labels = np.where(codes >= 0, self.classes_[np.maximum(codes, 0)], -1)  # (N,) values
        generator, how = prepare_generator(cfg, given, X, labels, budget.share(cfg.generator_share),
                                           self.random_state, staged(callbacks, "generator"))
        if isinstance(generator, VAE):
            embed = generator.transform                               # images -> (n, latent)
        else:
            embed = lambda imgs: np.asarray(imgs, np.float32).reshape(len(imgs), -1) / 255.0  # noqa: E731
        nodes, onehot = embed(X[keep]), np.eye(len(self.classes_))[codes[keep]]  # (L, d), (L, K)
        self._gen_keep(cfg, None, generator=how, stage="baseline", note=(
            "the generator learned from every image's pixels without labels; its class regions "
            "and the filter come from the labeled images alone" if isinstance(generator, VAE) else
            "the SSL-GAN generator learned from every image's pixels and the labels; the filter "
            "is a kNN vote over the labeled images' pixels"))

        def draw(rows: np.ndarray) -> Generated:
            if isinstance(generator, VAE):
                generator.set_class_regions(nodes[rows], labels[keep[rows]])
            score = knn_scorer(embed, nodes[rows], onehot[rows])
            return generate_labelled(generator, self.classes_, cfg, score, self.random_state)
        return draw

    def _train(self, x: torch.Tensor, codes: np.ndarray, rows: np.ndarray, budget_s: float | None,
               callbacks: list[Callback], gen: Generated | None = None) -> torch.nn.Module:
        """Train on the labeled rows `rows` of x (L, ...), plus the generated `gen` (M, ...)
        with weight `gen_augment.weight` when given."""
        cfg = self.config.classifier
        if not self.config.augment:
            cfg = replace(cfg, max_shift_px=0.0, max_rotation_deg=0.0, max_scale=0.0)
        weights = np.zeros(len(codes))
        weights[rows] = 1.0
        torch.manual_seed(self.random_state)
        net = self._network(x.shape[1], cfg)
        trainer = TrainerConfig(time_budget_s=budget_s, seed=self.random_state)
        if gen is not None:
            x = append_rows(x, gen)                                   # (L + M, C, H, W)
            codes, weights = extend_targets(codes, weights, gen, self.config.gen_augment)
        return train_classifier(x, codes, weights, len(self.classes_), cfg, trainer, callbacks, net=net)

    def _network(self, d_features: int, cfg: ClassifierConfig) -> torch.nn.Module:
        if self.projection_ is not None:
            return FeatureHead(d_features, len(self.classes_))
        return build_network(self.config.family, self.input_shape_, len(self.classes_), cfg)

    def _predict_proba(self, X: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        x = X if self.projection_ is None else torch.from_numpy(self.projection_(features))
        return torch.softmax(predict_logits(self.net_, x), 1).numpy()

    def _state(self) -> dict[str, Any]:
        state = {"net": self.net_.state_dict(), **self._gen_state()}
        if self.projection_ is not None:
            state["projection"] = self.projection_.state()
        return state

    def _set_state(self, state: dict[str, Any], meta: dict[str, Any]) -> None:
        self.projection_ = (projection_from_state(state["projection"]) if "projection" in state
                            else None)
        self._gen_set_state(state)
        d = None if self.projection_ is None else len(self.projection_.mean)
        self.net_ = self._network(d, self.config.classifier)
        self.net_.load_state_dict(state["net"])
        self.net_.eval()
