"""Every method by name: what the app's method picker, the benchmark and `load_model` use."""
from __future__ import annotations

import json
from pathlib import Path

from ssl_core.models.base import ModelFileError, SSLEstimator
from ssl_core.models.baseline import SupervisedBaseline
from ssl_core.models.default_method import DefaultMethod
from ssl_core.models.graph_classifier import GraphClassifier
from ssl_core.models.ssl_gan import SSLGAN
from ssl_core.models.vae_method import VAEMethod

METHODS: dict[str, type[SSLEstimator]] = {
    "default": DefaultMethod,        # graph -> CNN distillation (the best accuracy per second)
    "gan": SSLGAN,                   # semi-supervised GAN (Salimans et al. 2016)
    "vae": VAEMethod,                # VAE latent graph -> fine-tuned VAE encoder
    "graph": GraphClassifier,        # the default's first stage alone (seconds, no CNN)
    "baseline": SupervisedBaseline,  # labeled images only
}

DESCRIPTIONS = {
    "default": "Graph propagation over all images, distilled into a classifier (recommended)",
    "gan": "Semi-supervised GAN: discriminator with K classes + fake; generates samples",
    "vae": "VAE-based: latent-space graph, then the VAE encoder fine-tuned; per-class samples",
    "graph": "Graph propagation only: fastest, no CNN",
    "baseline": "Supervised only: the labeled images alone, for comparison",
}


def make_estimator(method: str, random_state: int = 0, config=None, **params) -> SSLEstimator:
    """A fresh estimator of `method` ('default', 'gan', 'vae', 'graph', 'baseline'): with the
    hyperparameters of `config` (the method's typed Config) when given, then `params` on top
    (e.g. make_estimator("baseline", family="gan"))."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cls = METHODS[method]
    model = cls.from_config(config, random_state) if config is not None else cls(random_state=random_state)
    return model.set_params(**params) if params else model


def load_model(folder: str | Path) -> SSLEstimator:
    """Load any saved model; the method comes from its config.json (weights load weights-only)."""
    folder = Path(folder)
    try:
        method = json.loads((folder / "config.json").read_text()).get("method")
    except (OSError, ValueError, AttributeError) as err:
        raise ModelFileError(f"{folder} holds no readable config.json: {err}") from err
    if method not in METHODS:
        raise ModelFileError(f"{folder} holds an unknown method {method!r}")
    return METHODS[method].load(folder)
