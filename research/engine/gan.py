"""Semi-supervised GAN (Salimans et al. 2016): K-logit discriminator with implicit fake logit 0,
feature-matching generator, optional graph pseudo-labels, collapse detection with rollback."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import ImageSSLBase, Timer
from .graph_ssl import GraphConfig, GraphSSLClassifier
from .mlp import DiscriminatorMLP, WNLinear, mlp_logits


@dataclass
class GANConfig:
    pseudo_labels: bool = True      # supervise D with graph pseudo-labels (else the labeled images only)
    graph: GraphConfig = field(default_factory=GraphConfig)  # pseudo-label source (~25 s on 70k)
    z_dim: int = 100                # generator noise size (paper)
    batch_size: int = 100           # 100 labeled + 100 unlabeled + 100 fake per step (paper)
    lr: float = 3e-3                # Adam lr (paper); linearly decayed over the budget's 2nd half
    beta1: float = 0.5              # Adam beta1 (paper)
    unsup_weight: float = 1.0       # weight of the real/fake loss
    max_steps: int = 60000          # upper bound; normally the time budget stops training
    check_every: int = 200          # steps between collapse checks / checkpoints
    min_diversity: float = 0.25     # fake/real mean pairwise-distance ratio below this = collapse
    max_fake_acc: float = 0.995     # D spotting > this of fakes for `patience` checks = G lost
    patience: int = 5               # consecutive bad checks before rolling back


class Generator(nn.Module):
    """z (B, z_dim) -> images (B, D) in (0, 1); BN+softplus hidden layers, bounded sigmoid output."""

    def __init__(self, z_dim: int, d_out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, 500), nn.BatchNorm1d(500), nn.Softplus(),
                                 nn.Linear(500, 500), nn.BatchNorm1d(500), nn.Softplus(),
                                 WNLinear(500, d_out), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def mean_pairwise_dist(x: torch.Tensor) -> float:
    """x (B, D) -> mean Euclidean distance between distinct rows."""
    d = torch.cdist(x, x)
    return float(d.sum() / (len(x) * (len(x) - 1)))


class SSLGANClassifier(ImageSSLBase):
    """fit(X (N,H,W,C) uint8, y -1 = unlabeled); predict/predict_proba from the discriminator;
    sample(n, label) from the generator (label via rejection on the discriminator's class)."""

    def __init__(self, config: GANConfig | None = None, random_state: int = 0,
                 time_budget_s: float | None = 900.0, n_threads: int = 2, verbose: bool = False):
        self.config = config
        self.random_state = random_state
        self.time_budget_s = time_budget_s
        self.n_threads = n_threads
        self.verbose = verbose

    def fit(self, X: np.ndarray, y: np.ndarray) -> "SSLGANClassifier":
        torch.set_num_threads(self.n_threads)
        timer = Timer(self.time_budget_s)
        cfg = self.config or GANConfig()
        torch.manual_seed(self.random_state)
        rng = np.random.RandomState(self.random_state)
        x, yi = self._prepare(X, y)
        labeled = np.flatnonzero(yi >= 0)
        sup_idx, sup_y = labeled, yi[labeled]
        self.validation_score_ = float("nan")
        if cfg.pseudo_labels:
            g = GraphSSLClassifier(cfg.graph, self.random_state)
            g.classes_, g.n_classes_ = self.classes_, self.n_classes_
            g.fit_graph_(x, yi, cfg.graph)
            self.validation_score_ = g.validation_score_
            sup_idx, sup_y = np.arange(len(x)), g.scores_.argmax(1)
        xt = torch.from_numpy(x.reshape(len(x), -1))  # (N, D) in [0, 1]
        d_in = xt.shape[1]
        D = DiscriminatorMLP(d_in, self.n_classes_)
        G = Generator(cfg.z_dim, d_in)
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        real_div = mean_pairwise_dist(xt[torch.from_numpy(rng.choice(len(x), 200, replace=False))])
        good = (copy.deepcopy(D.state_dict()), copy.deepcopy(G.state_dict()))
        bad, self.rollbacks_, self.log_ = 0, 0, []
        budget = timer.left() - 10.0
        t_start = timer.elapsed()
        bs = cfg.batch_size
        sup_t, sup_yt = torch.from_numpy(sup_idx), torch.from_numpy(sup_y)
        for step in range(cfg.max_steps):
            progress = (timer.elapsed() - t_start) / budget if np.isfinite(budget) else step / cfg.max_steps
            if progress >= 1.0:
                break
            lr = cfg.lr * min(1.0, 2.0 * (1.0 - progress))  # constant, then linear decay to 0
            for o in (opt_d, opt_g):
                for grp in o.param_groups:
                    grp["lr"] = lr
            j = torch.from_numpy(rng.randint(len(sup_idx), size=bs))
            xl, yl = xt[sup_t[j]], sup_yt[j]  # (B, D), (B,)
            xu = xt[torch.from_numpy(rng.randint(len(x), size=bs))]  # (B, D)
            # ---- discriminator: CE on (pseudo-)labels + real/fake with implicit fake logit 0
            fake = G(torch.randn(bs, cfg.z_dim))  # (B, D)
            lo_l = D(xl)
            lo_u = D(xu)
            lo_f = D(fake.detach())
            lse_u, lse_f = torch.logsumexp(lo_u, 1), torch.logsumexp(lo_f, 1)  # (B,)
            loss_sup = F.cross_entropy(lo_l, yl)
            loss_unsup = (F.softplus(lse_u) - lse_u).mean() + F.softplus(lse_f).mean()
            opt_d.zero_grad(set_to_none=True)
            (loss_sup + cfg.unsup_weight * loss_unsup).backward()
            opt_d.step()
            # ---- generator: feature matching on D's last hidden layer
            _, h_real = D(xu, features=True)
            _, h_fake = D(G(torch.randn(bs, cfg.z_dim)), features=True)
            loss_g = (h_real.detach().mean(0) - h_fake.mean(0)).pow(2).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if (step + 1) % cfg.check_every == 0:
                bad = self._check(cfg, D, G, fake, lse_f, real_div, loss_sup, loss_g, step, timer, bad)
                if bad == 0:
                    good = (copy.deepcopy(D.state_dict()), copy.deepcopy(G.state_dict()))
                elif bad >= cfg.patience or not np.isfinite(loss_g.item()):
                    D.load_state_dict(good[0]); G.load_state_dict(good[1])  # noqa: E702
                    for o in (opt_d, opt_g):
                        o.state.clear()  # drop Adam moments that drove the collapse
                    bad, self.rollbacks_ = 0, self.rollbacks_ + 1
        self.discriminator_, self.generator_ = D.eval(), G.eval()
        self.fit_seconds_ = timer.elapsed()
        return self

    def _check(self, cfg, D, G, fake, lse_f, real_div, loss_sup, loss_g, step, timer, bad) -> int:
        """Collapse monitor: generator diversity and D's accuracy on fakes. Returns new bad count."""
        div = mean_pairwise_dist(fake.detach()) / real_div
        fake_acc = float((lse_f < 0).float().mean())  # p(real) < 0.5  <=>  lse < 0
        ok = div >= cfg.min_diversity and fake_acc <= cfg.max_fake_acc and np.isfinite(loss_g.item())
        self.log_.append((step + 1, round(timer.elapsed(), 1), round(div, 3), round(fake_acc, 3),
                          round(loss_sup.item(), 4), round(loss_g.item(), 4)))
        if self.verbose:
            print("step %d t=%.0fs div=%.3f fake_acc=%.3f sup=%.4f g=%.4f" % self.log_[-1], flush=True)
        return 0 if ok else bad + 1

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        x = self._to_float(X)
        lo = mlp_logits(self.discriminator_, x.reshape(len(x), -1))
        p = np.exp(lo - lo.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)

    @torch.no_grad()
    def sample(self, n: int, label=None, random_state: int | None = None, oversample: int = 20) -> np.ndarray:
        """(n, H, W, C) uint8 generated images; with `label`, the n of `oversample * n` candidates
        the discriminator finds most likely to be that class (soft rejection sampling)."""
        torch.manual_seed(self.random_state if random_state is None else random_state)
        z_dim = self.generator_.net[0].in_features
        img = self.generator_(torch.randn(n if label is None else oversample * n, z_dim))  # (M, D)
        if label is not None:
            c = int(np.searchsorted(self.classes_, label))
            img = img[torch.softmax(self.discriminator_(img), 1)[:, c].argsort(descending=True)[:n]]
        img = img.numpy().reshape(n, self.input_shape_[2], *self.input_shape_[:2])
        return np.round(img.transpose(0, 2, 3, 1) * self.scale_).astype(np.uint8)
