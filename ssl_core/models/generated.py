"""Generated labelled images as extra training data (issue 17): the third step of the method.

The product's method has three steps: learn a generative model on all images, generate new
labelled examples from it, train the classifier on the labelled images together with the
generated ones. This module is the shared middle step for the default method's classifier
stage, the VAE-based method and the supervised baseline (`GEN_METHODS`); the SSL-GAN keeps its
own use of generated images (the fake class) and is not offered the option.

How a generated example is made and kept:
1. A fitted generator draws `per_class` examples for every class: a VAE decodes draws from the
   class's latent region (`VAE.set_class_regions`: a Gaussian per class over the latents of the
   images that class holds), an SSL-GAN samples its generator and keeps, of 20x as many draws,
   those its discriminator ranks highest for the class (`SSLGAN.sample(n, label)`). Each
   example is labelled by the class it was drawn for.
2. The *current* classifier of the fit scores them (a callable images -> (n, K) probabilities:
   the graph stage's kNN vote for the default method, a kNN vote in the VAE's latent space for
   the VAE-based method, a kNN vote over the labeled images for the baseline). An example is
   kept only when that classifier agrees (its argmax is the drawn class) with probability at
   least `min_confidence`: a class region's tails decode into other classes' shapes, and a
   confidently wrong label would teach the student the generator's mistakes. kNN votes are
   used rather than a network because a network trained with label smoothing 0.1 never
   reaches 0.91 on its own training labels, so a 0.9 threshold would keep almost nothing.
3. The kept examples join the classifier's training set with loss weight `weight` (a
   pseudo-label weighs 1, a user label the method's `labeled_weight`, 3 by default).

When the fit is given no generator, it trains one on all its images within `generator_share`
of the budget left: a pixel VAE (`generator_vae_config`: no deskewing, so samples look like the
images the classifier sees) or, with source 'gan', an SSL-GAN in the paper's setting (its
discriminator learns from the fit's labels). Feature mode (photos) draws feature vectors from a
VAE over the graph space (pixels cannot be decoded from pretrained features); the baseline adds
pixel images only for now.

What a fit did is recorded in `gen_augment_` (plain types, saved with the model) and a small
grid of kept images per class in `gen_grid_` (K, g, H, W, C) uint8 for the Train page.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ssl_core.models.base import to_tensor
from ssl_core.models.conv_nets import uses_conv_nets
from ssl_core.models.graph_classifier import knn_vote
from ssl_core.models.vae import VAE, VAEConfig
from ssl_core.training.trainer import Callback

GEN_METHODS = ("default", "vae", "baseline")   # the methods that offer the option
SOURCES = ("vae", "gan")
BLANK = 255                                    # grid cells without a kept example


@dataclass(frozen=True)
class GenAugmentConfig:
    """The option's settings. The defaults are a starting point, not a measured optimum (the
    with/without grid, scripts/bench_grid.py --plan gen_augment, decides): 200 per class is
    20-200x the labels the baseline has at 1-10 per class and ~3% of MNIST beside the default
    method's pseudo-labels; weight 1 counts a kept example like a pseudo-label; 0.9 keeps
    only what the kNN vote is sure of."""
    enabled: bool = False          # off: the fit is exactly what it was without the option
    per_class: int = 200           # examples drawn per class (before the confidence filter)
    weight: float = 1.0            # loss weight of a kept example (a pseudo-label weighs 1)
    min_confidence: float = 0.9    # keep an example when the current classifier gives its
                                   # drawn class at least this probability (and its argmax)
    source: str = "vae"            # 'vae' (class regions of a VAE) | 'gan' (an SSL-GAN's
                                   # generator, ranked per class by its discriminator)
    generator_share: float = 0.25  # of the budget left, to train a generator when none is given
    grid_per_class: int = 8        # kept examples per class saved for the Train page


def gen_augment_for(method: str, **settings: Any) -> GenAugmentConfig:
    """The option switched on for `method`: its own defaults (e.g. the baseline gives its
    generator a larger share of the budget) with the `settings` that are not None on top.
    ValueError for a method that does not offer it."""
    from ssl_core.models.registry import METHODS
    if method not in GEN_METHODS:
        raise ValueError(f"generated training images are offered for {', '.join(GEN_METHODS)}, "
                         f"not {method!r} (the SSL-GAN uses its own generated images already)")
    base = METHODS[method].Config().gen_augment
    cfg = replace(base, enabled=True, **{k: v for k, v in settings.items() if v is not None})
    check_config(cfg)
    return cfg


def check_config(cfg: GenAugmentConfig) -> None:
    """ValueError saying which setting is out of range."""
    if cfg.source not in SOURCES:
        raise ValueError(f"generated images come from {' or '.join(SOURCES)}, not {cfg.source!r}")
    if cfg.per_class < 1 or cfg.weight <= 0:
        raise ValueError(f"generated images need a count per class >= 1 and a weight > 0, got "
                         f"{cfg.per_class} and {cfg.weight}")
    if not 0.0 <= cfg.min_confidence <= 1.0:
        raise ValueError(f"min_confidence lies in 0..1, got {cfg.min_confidence}")


@dataclass
class Generated:
    """The kept examples of one generation."""
    inputs: np.ndarray          # (M, H, W, C) uint8 images, or (M, d) float32 vectors
    codes: np.ndarray           # (M,) int64 class codes 0..K-1: the class each was drawn for
    n_drawn: int                # examples drawn in all, before the filter
    n_used: dict[str, int]      # kept per class value (str keys: JSON and the run summary)
    grid: np.ndarray | None     # (K, g, H, W, C) uint8 of kept images; None for vectors

    @property
    def n_total(self) -> int:
        return len(self.codes)


def generator_vae_config(input_shape: tuple[int, ...]) -> VAEConfig:
    """The VAE a fit trains as its generator: the VAE-based method's settings for the image
    size (8x8 digits: small batches at KL weight 0.25, else the latents collapse; colour or
    large: the conv VAE), but never deskewed: its samples are training images for a
    classifier that sees the images as they are. Vectors (feature mode): the feature VAE."""
    if len(input_shape) == 1:
        return VAEConfig(hidden=(256, 128), batch_size=64, beta=0.1)
    if uses_conv_nets(input_shape):
        return VAEConfig(batch_size=64)
    if int(np.prod(input_shape)) < 100:
        return VAEConfig(batch_size=64, beta=0.25)
    return VAEConfig()


def prepare_generator(cfg: GenAugmentConfig, given: Any, inputs: np.ndarray, labels: np.ndarray,
                      budget_s: float | None, seed: int, callbacks: Iterable[Callback] = ()
                      ) -> tuple[Any, str]:
    """(a generator that draws the classes of `labels`, how it was made).

    inputs: what the generator learns from, images (N, H, W, C) uint8 or vectors (N, d) float32
    (all of the fit's images, labeled or not); labels (N,) class values, -1 = none: a VAE's
    class regions are set from the latents of the labelled rows (the caller chooses: graph
    pseudo-labels for every image, or the user's labels alone). `given`: a fitted VAE or
    SSL-GAN to use instead of training one; a copy is used, so the caller's VAE keeps its own
    class regions. Without one, trains `cfg.source` within `budget_s` seconds."""
    t0 = time.perf_counter()
    if given is not None:
        generator, how = copy.deepcopy(given), f"given {type(given).__name__}"
    elif cfg.source == "gan":
        from ssl_core.models.ssl_gan import SSLGAN
        if inputs.ndim != 4:
            raise ValueError("an SSL-GAN generator for feature vectors is not offered: use "
                             "source 'vae'")
        generator = SSLGAN(pseudo_labels=False, representation="pixels", random_state=seed).fit(
            inputs, labels, callbacks=callbacks, time_budget_s=budget_s)
        how = f"SSL-GAN trained here on {len(inputs):,} images"
    else:
        generator = VAE.from_config(generator_vae_config(tuple(inputs.shape[1:])), seed).fit(
            inputs, callbacks=callbacks, time_budget_s=budget_s)
        how = f"VAE trained here on {len(inputs):,} " + ("images" if inputs.ndim == 4 else
                                                          "feature vectors")
    if isinstance(generator, VAE):
        rows = np.flatnonzero(labels >= 0)
        generator.set_class_regions(generator.transform(inputs[rows]), labels[rows])
    return generator, f"{how} ({time.perf_counter() - t0:.0f} s)"


def unusable(given: Any, input_shape: tuple[int, ...]) -> str | None:
    """Why a given generator cannot draw images of `input_shape` (H, W, C) (None: it can, or
    none was given), as the note of a fit that then adds nothing."""
    if given is None or (getattr(given, "draws_images", False)
                         and tuple(getattr(given, "input_shape_", ())) == tuple(input_shape)):
        return None
    return "the given generator does not draw images of this shape: nothing generated"


def generate_labelled(generator: Any, classes: np.ndarray, cfg: GenAugmentConfig,
                      score: Callable[[np.ndarray], np.ndarray], seed: int) -> Generated:
    """Draw `cfg.per_class` examples of every class in `classes` (the estimator's class values,
    codes 0..K-1 in that order) from `generator` (anything with `sample(n, label, seed)` and,
    for vectors, `draws_images` False and `sample_vectors(n, label, seed)`; it draws the
    classes in its `classes_`, others get none), score them with `score` (inputs -> (n, K)
    probabilities, columns in `classes` order) and keep those whose drawn class is the argmax
    with probability >= `cfg.min_confidence`."""
    draws_images = getattr(generator, "draws_images", True)
    have = set(np.asarray(getattr(generator, "classes_", classes)).tolist())
    parts, codes = [], []
    for k, c in enumerate(classes):
        if int(c) not in have:
            continue
        draw = generator.sample if draws_images else generator.sample_vectors
        parts.append(draw(cfg.per_class, label=int(c), seed=seed + k))   # (n, H, W, C) | (n, d)
        codes.append(np.full(cfg.per_class, k, np.int64))
    if not parts:
        return _empty(classes, 0)
    inputs, drawn = np.concatenate(parts), np.concatenate(codes)        # (n, ...), (n,)
    proba = np.asarray(score(inputs))                                   # (n, K)
    conf = proba[np.arange(len(drawn)), drawn]                          # (n,)
    keep = (proba.argmax(1) == drawn) & (conf >= cfg.min_confidence)
    inputs, kept = inputs[keep], drawn[keep]
    n_used = {str(int(c)): int((kept == k).sum()) for k, c in enumerate(classes)}
    grid = class_grid(inputs, kept, len(classes), cfg.grid_per_class) if draws_images else None
    return Generated(inputs, kept, len(drawn), n_used, grid)


def _empty(classes: np.ndarray, n_drawn: int) -> Generated:
    return Generated(np.zeros((0,), np.uint8), np.zeros(0, np.int64), n_drawn,
                     {str(int(c)): 0 for c in classes}, None)


def class_grid(images: np.ndarray, codes: np.ndarray, n_classes: int, per_class: int
               ) -> np.ndarray:
    """(K, g, H, W, C) uint8: the first `per_class` images (M, H, W, C) of each code, blank
    (white) where a class kept fewer."""
    grid = np.full((n_classes, per_class, *images.shape[1:]), BLANK, np.uint8)
    for k in range(n_classes):
        ids = np.flatnonzero(codes == k)[:per_class]
        grid[k, :len(ids)] = images[ids]
    return grid


def extend_targets(targets: np.ndarray, weights: np.ndarray, gen: Generated | None,
                   cfg: GenAugmentConfig) -> tuple[np.ndarray, np.ndarray]:
    """targets and weights (N,) -> (N + M,): the kept examples' drawn classes, each weighing
    `cfg.weight`. Unchanged when nothing was kept."""
    if gen is None or gen.n_total == 0:
        return targets, weights
    return (np.concatenate([targets, gen.codes]),
            np.concatenate([weights, np.full(gen.n_total, cfg.weight)]))


def append_rows(x: np.ndarray | torch.Tensor, gen: Generated | None) -> np.ndarray | torch.Tensor:
    """x (N, ...) -> (N + M, ...) with the kept examples after the real rows: x is a numpy
    array of images or vectors like the generated ones, or a float tensor (images
    (N, C, H, W) in [0, 1], or vectors (N, d)). Unchanged when nothing was kept."""
    if gen is None or gen.n_total == 0:
        return x
    if isinstance(x, torch.Tensor):
        extra = (to_tensor(gen.inputs) if gen.inputs.ndim == 4
                 else torch.from_numpy(np.asarray(gen.inputs, np.float32)))
        return torch.cat([x, extra.to(x.dtype)])
    return np.concatenate([x, gen.inputs.astype(x.dtype)])


def record(cfg: GenAugmentConfig, gen: Generated | None, generator: str = "",
           note: str = "", stage: str = "") -> dict[str, Any]:
    """What a fit did with the option, as plain types (saved with the model, shown by the
    Train page, written to benchmark rows): settings, drawn and kept counts, where the
    generator came from, which stage trained on them and a note when nothing was added."""
    n_used = {} if gen is None else dict(gen.n_used)
    return {"enabled": True, "source": cfg.source, "per_class": int(cfg.per_class),
            "weight": float(cfg.weight), "min_confidence": float(cfg.min_confidence),
            "n_drawn": 0 if gen is None else int(gen.n_drawn), "n_used": n_used,
            "n_used_total": int(sum(n_used.values())), "generator": generator,
            "stage": stage, "note": note}


def knn_scorer(embed: Callable[[np.ndarray], np.ndarray], nodes: np.ndarray,
               proba: np.ndarray, scale: np.ndarray | None = None
               ) -> Callable[[np.ndarray], np.ndarray]:
    """A classifier for `generate_labelled`: embed the examples, then a kNN vote over fitted
    nodes (N, d) with class probabilities (N, K) (graph_classifier.knn_vote)."""
    return lambda inputs: knn_vote(np.asarray(embed(inputs), np.float32), nodes, proba, scale)


class GenAugmentMixin:
    """What the estimators offering the option share: the fitted record and grid, and their
    place in the saved state (only when the option was on: a model fitted without it saves
    exactly what it did before)."""
    gen_augment_: dict[str, Any] | None = None
    gen_grid_: np.ndarray | None = None

    def _gen_config(self) -> GenAugmentConfig | None:
        cfg = getattr(self, "gen_augment", None)
        if cfg is None or not cfg.enabled:
            return None
        check_config(cfg)
        return cfg

    def _gen_reset(self) -> None:
        self.gen_augment_, self.gen_grid_ = None, None

    def _gen_keep(self, cfg: GenAugmentConfig, gen: Generated | None, **how: str) -> None:
        self.gen_augment_ = record(cfg, gen, **how)
        self.gen_grid_ = None if gen is None else gen.grid

    def _gen_state(self) -> dict[str, Any]:
        if self.gen_augment_ is None:
            return {}
        state: dict[str, Any] = {"gen_augment": dict(self.gen_augment_)}
        if self.gen_grid_ is not None:
            state["gen_grid"] = torch.from_numpy(np.ascontiguousarray(self.gen_grid_))
        return state

    def _gen_set_state(self, state: dict[str, Any]) -> None:
        self.gen_augment_ = state.get("gen_augment")
        grid = state.get("gen_grid")
        self.gen_grid_ = None if grid is None else grid.numpy()
