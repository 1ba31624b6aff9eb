"""Semi-supervised GAN after Salimans et al. 2016 ("Improved Techniques for Training GANs").

The discriminator has K class logits and an implicit fake class whose logit is fixed at 0, so
p(real | x) = Z / (Z + 1) with Z = sum_k exp(l_k). It learns from three sources: labeled
images (cross-entropy over the K classes), unlabeled images (should look real) and generated
images (should look fake). The generator is trained by feature matching on D's last hidden
layer, which the paper found best for classification. Weight-normalised D, Gaussian noise on
its inputs (0.3) and hidden layers (0.5), Adam(3e-3, beta1 0.5), LR decayed to 0 by the end.

With `pseudo_labels` (the default) the supervised term uses the graph stage's labels for every
image instead of the user's few: on MNIST with 10 labels per class 97.5% in ~170 s instead of
87% (pure paper setting, 140 s) — the pure setting needs ~900 s for 97.7% here.

Stability is checked, not hoped for: every `check_every` steps a monitor measures generator
diversity (mean pairwise distance of fakes / of real images), D's accuracy on fakes and the
losses' finiteness; after `patience` bad checks (or any NaN) it rolls D and G back to the last
good snapshot and resets Adam's moments (`rollbacks_` counts them; `monitor_` logs checks).

Three kinds (`kind_`), one recipe. 'mlp': small greyscale images (up to 32x32), the paper's
MLPs, as measured above. 'conv': colour or larger images, conv D and G at a working side of at
most `max_side` px (conv_nets.py), pixels read from X per batch. 'features': pretrained
features; the GAN plays in the graph stage's space (centred, L2, PCA to 128-D), standardised to
unit mean variance so the paper's noise levels keep their meaning; it draws feature vectors
(`sample_vectors`), shown as their nearest real images (`graph_space`), not pixels.

Why this module is long (~330 lines): the three kinds share the training task, the collapse
monitor and the class-ranked sampling; only the networks differ, and those live in mlp.py and
conv_nets.py.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ssl_core.models.base import Budget, SSLEstimator, report_stage, staged, to_uint8_images
from ssl_core.models.conv_nets import (
    ConvDiscriminator,
    ConvGenerator,
    PixelBatches,
    reduced_pixels,
    resize,
    uses_conv_nets,
    working_side,
)
from ssl_core.models.graph_classifier import GraphClassifier, GraphConfig, graph_inputs
from ssl_core.models.mlp import DiscriminatorMLP, Generator, VectorGenerator
from ssl_core.models.preprocessing import FeatureProjection, projection_from_state
from ssl_core.models.representation import feature_matrix
from ssl_core.threads import torch_threads
from ssl_core.training.schedules import BudgetSchedule
from ssl_core.training.trainer import Callback, Trainer, TrainerConfig

FEATURES = "features"
FEATURE_SAMPLES = ("a feature-space GAN draws feature vectors, not pixels: use sample_vectors() "
                   "and show each as its nearest real image (graph_space())")


@dataclass(frozen=True)
class GANConfig:
    representation: str = "auto"    # 'auto' | 'pixels' | a feature extractor (representation.py)
    pseudo_labels: bool = True      # supervise D with graph pseudo-labels (False = paper setting)
    graph: GraphConfig = field(default_factory=GraphConfig)
    z_dim: int = 100                # generator noise size (paper)
    batch_size: int = 100           # labeled, unlabeled and fake batch size (paper)
    lr: float = 3e-3                # Adam (paper); constant, then linear to 0 over the 2nd half
    beta1: float = 0.5
    unsup_weight: float = 1.0       # weight of the real/fake term
    max_steps: int = 60_000         # without a time budget; with one, time ends training
    check_every: int = 200          # steps between collapse checks and good snapshots
    min_diversity: float = 0.25     # fake/real pairwise-distance ratio below this = collapse
    max_fake_acc: float = 0.995     # D spotting more fakes than this = G has lost
    patience: int = 5               # consecutive bad checks before a rollback
    feature_widths: tuple[int, ...] = (256, 128, 128)  # features: D's hidden layers (128-D input)
    feature_noise: tuple[float, float] = (0.3, 0.5)    # features: D's input / hidden noise
    conv_width: tuple[int, ...] = (16, 32, 64)  # colour/large images: conv channels of D and G
    max_side: int = 32              # colour/large images: working side (conv_nets.py)
    graph_side: int = 16            # colour/large images: the graph's shrunk pixels (8-32 px
                                    # gave the same 40-44% on photos; 16 keeps it small)


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """x (B, ...) -> mean Euclidean distance between distinct rows (flattened)."""
    x = x.flatten(1)
    return float(torch.cdist(x, x).sum() / (len(x) * (len(x) - 1)))


class GANTask:
    """TrainTask for the trainer: one D step and one G step per call, plus the collapse monitor."""

    def __init__(self, D: torch.nn.Module, G: torch.nn.Module, x: torch.Tensor | PixelBatches,
                 sup_idx: np.ndarray, sup_codes: np.ndarray, cfg: GANConfig,
                 budget_s: float | None, seed: int):
        # x: images (N, C, H, W) in [0, 1] (lazy: only batches x[ids] are read) or vectors (N, d)
        self.D, self.G, self.x, self.cfg = D, G, x, cfg
        self.sup_idx, self.sup_codes = torch.from_numpy(sup_idx), torch.from_numpy(sup_codes)
        self.batch = min(cfg.batch_size, len(self.x))
        self.steps_per_epoch = max(1, len(self.x) // self.batch)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.sched = BudgetSchedule([self.opt_d, self.opt_g], cfg.lr, cfg.max_steps, budget_s,
                                    shape="flat_then_linear")
        self.gen = torch.Generator().manual_seed(seed)
        probe = torch.randperm(len(self.x), generator=self.gen)[:200]
        self.real_diversity = mean_pairwise_distance(self.x[probe])
        self.good = self._snapshot()
        self.bad_checks, self.rollbacks, self.monitor = 0, 0, []

    def epoch_size(self) -> int:
        return len(self.x)

    def train_step(self, step: int, order: np.ndarray) -> dict[str, float]:
        cfg, D, G, bs = self.cfg, self.D, self.G, self.batch
        D.train()
        G.train()
        j = torch.randint(len(self.sup_idx), (bs,), generator=self.gen)
        x_lab, y_lab = self.x[self.sup_idx[j]], self.sup_codes[j]       # (B, ...), (B,)
        x_unl = self.x[torch.from_numpy(order[step * bs:(step + 1) * bs])]  # (B, ...)
        # -- D step: labeled (K classes), unlabeled (real), generated (fake) ---------------
        fake = G(torch.randn(bs, cfg.z_dim, generator=self.gen))        # (B, ...)
        lse_unl = torch.logsumexp(D(x_unl), 1)                          # (B,) log Z(x)
        lse_fake = torch.logsumexp(D(fake.detach()), 1)
        loss_sup = F.cross_entropy(D(x_lab), y_lab)
        # -log p(real|x_unl) - log p(fake|G(z)), with p(real) = Z / (Z + 1)
        loss_unsup = (F.softplus(lse_unl) - lse_unl).mean() + F.softplus(lse_fake).mean()
        self.opt_d.zero_grad(set_to_none=True)
        (loss_sup + cfg.unsup_weight * loss_unsup).backward()
        self.opt_d.step()
        # -- G step: feature matching on D's last hidden layer ----------------------------
        h_real = D.embedding(x_unl).detach()                            # (B, h) last hidden
        h_fake = D.embedding(G(torch.randn(bs, cfg.z_dim, generator=self.gen)))
        loss_g = (h_real.mean(0) - h_fake.mean(0)).pow(2).mean()        # feature matching
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.sched.step()                                               # counts steps across epochs
        losses = {"loss_sup": loss_sup.item(), "loss_unsup": loss_unsup.item(), "loss_g": loss_g.item()}
        if self.sched.steps % cfg.check_every == 0 or not np.isfinite(list(losses.values())).all():
            self.check(fake.detach(), lse_fake.detach(), losses)
        return losses

    def check(self, fake: torch.Tensor, lse_fake: torch.Tensor, losses: dict[str, float]) -> None:
        """Collapse monitor: snapshot when healthy, roll back after `patience` bad checks."""
        cfg = self.cfg
        diversity = mean_pairwise_distance(fake) / max(self.real_diversity, 1e-8)
        fake_acc = float((lse_fake < 0).float().mean())                 # p(real) < 0.5
        finite = bool(np.isfinite(list(losses.values())).all())
        healthy = finite and diversity >= cfg.min_diversity and fake_acc <= cfg.max_fake_acc
        self.monitor.append({"step": self.sched.steps, "diversity": round(diversity, 3),
                             "fake_accuracy": round(fake_acc, 3), "healthy": healthy})
        if healthy:
            self.bad_checks = 0
            self.good = self._snapshot()
            return
        self.bad_checks += 1
        if self.bad_checks >= cfg.patience or not finite:
            self.D.load_state_dict(self.good[0])
            self.G.load_state_dict(self.good[1])
            for opt in (self.opt_d, self.opt_g):
                opt.state.clear()                  # the moments that drove the collapse go too
            self.bad_checks, self.rollbacks = 0, self.rollbacks + 1

    def _snapshot(self) -> tuple[dict, dict]:
        return copy.deepcopy(self.D.state_dict()), copy.deepcopy(self.G.state_dict())

    def evaluate(self) -> dict[str, float]:
        return {"rollbacks": float(self.rollbacks)}


class SSLGAN(SSLEstimator):
    """fit(X (N, H, W, C) uint8, y (N,) with -1 = unlabeled); predict from the discriminator;
    `sample(n, label)` from the generator (pixel modes), `sample_vectors(n, label)` (feature
    mode). After fit: `kind_`, `rollbacks_`, `monitor_`, `validation_`."""
    method = "gan"
    Config = GANConfig

    def _fit(self, X: np.ndarray, codes: np.ndarray, budget: Budget, callbacks: list[Callback],
             features: np.ndarray | None = None) -> None:
        cfg = self.config
        self.kind_ = (FEATURES if features is not None
                      else "conv" if uses_conv_nets(self.input_shape_) else "mlp")
        x, sup_idx, sup_codes = self._training_data(X, codes, features, budget, callbacks)
        torch.manual_seed(self.random_state)
        self.D_, self.G_ = self._networks(x.shape[1])
        gan_s = budget.share(1.0, reserve_s=10.0, floor_s=5.0)
        task = GANTask(self.D_, self.G_, x, sup_idx, sup_codes, cfg, gan_s, self.random_state)
        report_stage(callbacks, "gan", 1, 2, budget.elapsed())
        # feature mode: MLPs on 128-D vectors, where a second torch thread only spins
        with torch_threads(1 if self.kind_ == FEATURES else None):
            Trainer(TrainerConfig(max_epochs=cfg.max_steps / task.steps_per_epoch,
                                  time_budget_s=gan_s, seed=self.random_state),
                    staged(callbacks, "gan")).fit(task)
        self.rollbacks_, self.monitor_ = task.rollbacks, task.monitor
        self.D_.eval()
        self.G_.eval()
        report_stage(callbacks, "done", 2, 2, budget.elapsed())

    def _training_data(self, X: np.ndarray, codes: np.ndarray, features: np.ndarray | None,
                       budget: Budget, callbacks: list[Callback]) -> tuple[Any, np.ndarray, np.ndarray]:
        """(what the GAN sees, supervised ids, their codes); in feature mode also sets the
        graph space `projection_` and its standardisation `center_`, `scale_`."""
        cfg = self.config
        sup_idx = np.flatnonzero(codes >= 0)
        sup_codes = codes[sup_idx]
        self.validation_, self.validation_of_ = None, None
        if cfg.pseudo_labels:
            report_stage(callbacks, "graph", 0, 2, budget.elapsed())
            graph = GraphClassifier.from_config(cfg.graph, self.random_state)
            graph.classes_ = self.classes_
            inputs = (features if self.kind_ == FEATURES else graph_inputs(X, None)
                      if self.kind_ == "mlp" else reduced_pixels(X, cfg.graph_side))
            result = graph.fit_graph_(inputs, codes)
            self.validation_ = result.validation
            self.validation_of_ = ("the graph stage that gives the discriminator its pseudo-labels "
                                   "(the discriminator trains on every label, so it has no "
                                   "hold-out)")
            sup_idx, sup_codes = np.arange(len(X)), result.scores.argmax(1)
            projection, z = graph.projection_, graph.features_
        elif self.kind_ == FEATURES:
            projection, z = FeatureProjection.fit(features, cfg.graph.feature_components,
                                                  self.random_state)
        if self.kind_ != FEATURES:
            return self._pixels(X, cached=True), sup_idx, sup_codes
        self.projection_ = projection
        self.center_ = z.mean(0).astype(np.float32)                       # (d,)
        self.scale_ = float(1.0 / np.sqrt(max(float(((z - self.center_) ** 2).mean()), 1e-12)))
        return torch.from_numpy(self._standardise(z)), sup_idx, sup_codes

    def _pixels(self, X: np.ndarray, cached: bool = False) -> PixelBatches:
        """Images as D sees them, lazily: at the working side ('conv'), as they are ('mlp')."""
        side = working_side(self.input_shape_, self.config.max_side)
        return PixelBatches(X, side if self.kind_ == "conv" else None, cached=cached)

    def _networks(self, d: int) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(D, G) for `kind_`; d: the graph space's dims (feature mode)."""
        cfg, k = self.config, len(self.classes_)
        if self.kind_ == FEATURES:
            return (DiscriminatorMLP(d, k, cfg.feature_widths, *cfg.feature_noise),
                    VectorGenerator(cfg.z_dim, d, cfg.feature_widths[0]))
        if self.kind_ == "conv":
            c, side = self.input_shape_[2], working_side(self.input_shape_, cfg.max_side)
            return (ConvDiscriminator(c, side, k, cfg.conv_width),
                    ConvGenerator(cfg.z_dim, c, side, cfg.conv_width))
        d_in = int(np.prod(self.input_shape_))
        return DiscriminatorMLP(d_in, k), Generator(cfg.z_dim, d_in)

    def _standardise(self, z: np.ndarray) -> np.ndarray:
        """Graph-space vectors (N, d) -> what D sees (unit mean variance)."""
        return ((z - self.center_) * self.scale_).astype(np.float32)

    def graph_space(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Feature mode: images X (N, H, W, C) (their features when given) -> (N, d), the space
        `sample_vectors` draws in; nearest neighbours there show generated vectors as images."""
        if getattr(self, "kind_", None) != FEATURES:
            raise ValueError("a pixel GAN has no feature space: sample() draws images")
        return self.projection_(feature_matrix(self.representation_, X, features)).astype(np.float32)

    @torch.no_grad()
    def _predict_proba(self, X: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        if self.kind_ == FEATURES:
            x, batch = torch.from_numpy(self._standardise(self.projection_(features))), 4096
        else:
            x, batch = self._pixels(X), 256 if self.kind_ == "conv" else 4096
        logits = [self.D_(x[s:s + batch]) for s in range(0, len(x), batch)]
        return torch.softmax(torch.cat(logits), 1).numpy() if logits else np.zeros((0, len(self.classes_)))

    @torch.no_grad()
    def _generate(self, n: int, label: int | None, seed: int, oversample: int) -> torch.Tensor:
        """n generator outputs; with `label`, the n of `oversample * n` draws D ranks highest."""
        gen = torch.Generator().manual_seed(seed)
        m = n if label is None else oversample * n
        out = self.G_(torch.randn(m, self.G_.z_dim, generator=gen))      # (m, ...)
        if label is not None:
            k = int(np.flatnonzero(self.classes_ == label)[0])
            out = out[torch.softmax(self.D_(out), 1)[:, k].argsort(descending=True)[:n]]
        return out

    @property
    def draws_images(self) -> bool:
        """True when `sample` draws images; False in feature mode (`sample_vectors`)."""
        return getattr(self, "kind_", None) != FEATURES

    def sample(self, n: int, label: int | None = None, seed: int = 0, oversample: int = 20) -> np.ndarray:
        """(n, H, W, C) uint8 generated images (pixel modes; see `_generate`)."""
        if self.kind_ == FEATURES:
            raise ValueError(FEATURE_SAMPLES)
        img = self._generate(n, label, seed, oversample)
        h, w, c = self.input_shape_
        if self.kind_ == "conv":
            return to_uint8_images(resize(img, (h, w)))                    # (n, C, S, S) -> (n, H, W, C)
        return (img.reshape(-1, c, h, w).permute(0, 2, 3, 1) * 255).round().byte().numpy()

    def sample_vectors(self, n: int, label: int | None = None, seed: int = 0,
                       oversample: int = 20) -> np.ndarray:
        """(n, d) float32 generated graph-space vectors (feature mode), ranked like `sample`."""
        if self.kind_ != FEATURES:
            raise ValueError("this GAN was trained on pixels: sample() draws images")
        u = self._generate(n, label, seed, oversample).numpy()
        return (u / self.scale_ + self.center_).astype(np.float32)

    def preview(self, n_per_class: int = 6, seed: int = 0) -> np.ndarray | None:
        """Generator samples per class (ranked by D), also mid-training; None for features."""
        if getattr(self, "G_", None) is None or self.kind_ == FEATURES:
            return None
        modes = self.G_.training, self.D_.training
        self.G_.eval()
        self.D_.eval()
        try:
            return np.stack([self.sample(n_per_class, label=int(c), seed=seed) for c in self.classes_])
        finally:
            self.G_.train(modes[0])
            self.D_.train(modes[1])

    def _state(self) -> dict[str, Any]:
        state = {"kind": self.kind_, "D": self.D_.state_dict(), "G": self.G_.state_dict(),
                 "rollbacks": int(self.rollbacks_)}
        if self.kind_ == FEATURES:
            state.update(projection=self.projection_.state(), scale=self.scale_,
                         center=torch.from_numpy(self.center_))
        return state

    def _set_state(self, state: dict[str, Any], meta: dict[str, Any]) -> None:
        self.kind_ = state.get("kind", "mlp")   # models saved before conv/feature nets: MLPs
        if self.kind_ == FEATURES:
            self.projection_ = projection_from_state(state["projection"])
            self.center_, self.scale_ = state["center"].numpy(), float(state["scale"])
        self.D_, self.G_ = self._networks(len(getattr(self, "center_", ())))
        self.D_.load_state_dict(state["D"])
        self.G_.load_state_dict(state["G"])
        self.D_.eval()
        self.G_.eval()
        self.rollbacks_ = int(state["rollbacks"])
