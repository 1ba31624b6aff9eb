"""What every Latentlab estimator shares: label encoding, pixel conversion, save/load.

Conventions (scikit-learn's): `__init__` only stores parameters; `fit(X, y)` returns self; what
is learned ends in `_`; y uses -1 for unlabeled images. X is always the project's pixel array,
(N, H, W, C) uint8, so any estimator can be fed straight from `ImageCollection.images()`.

A saved model is a folder with `config.json` (method, config, classes, input shape) and
`weights.pt` (state_dicts and tensors only), loaded with `torch.load(weights_only=True)`, so a
checkpoint cannot run code when opened.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ssl_core.models.params import build_config, config_init
from ssl_core.models.representation import PIXELS, feature_matrix, resolve_representation
from ssl_core.project.files import write_atomic, write_bytes_atomic
from ssl_core.threads import torch_threads
from ssl_core.training.trainer import Callback, TrainProgress
from ssl_core.training.validation import Accuracy

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A saved model that cannot be loaded (wrong method, damaged, or not a safe checkpoint)."""


def to_tensor(X: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) float32 in [0, 1]."""
    X = np.asarray(X)
    if X.ndim != 4 or X.dtype != np.uint8:
        raise ValueError(f"expected images as (N, H, W, C) uint8, got {X.shape} {X.dtype}")
    X = np.require(X, requirements=["C", "W"])        # copies a read-only memmap only
    return torch.from_numpy(X).to(device).permute(0, 3, 1, 2).float() / 255.0


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """The inverse of to_tensor: (N, C, H, W) float in [0, 1] -> (N, H, W, C) uint8."""
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def check_images(X: np.ndarray) -> np.ndarray:
    """X as an (N, H, W, C) uint8 array with N >= 1 and C = 1 or 3; ValueError saying what is
    wrong otherwise (a memory map stays a memory map: nothing is copied)."""
    X = np.asarray(X)
    if X.ndim != 4 or X.dtype != np.uint8:
        raise ValueError(f"images must be an (N, H, W, C) uint8 array (C = 1 or 3), got shape "
                         f"{X.shape} and dtype {X.dtype}")
    if len(X) == 0 or 0 in X.shape[1:3]:
        raise ValueError(f"no images to learn from (shape {X.shape})")
    if X.shape[3] not in (1, 3):
        raise ValueError(f"images need 1 (grey) or 3 (RGB) channels, got {X.shape[3]}")
    return X


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y with arbitrary class values and -1 for unlabeled -> (codes 0..K-1 or -1, classes)."""
    y = np.asarray(y).astype(np.int64)
    classes = np.unique(y[y >= 0])
    codes = np.full(len(y), -1, np.int64)
    codes[y >= 0] = np.searchsorted(classes, y[y >= 0])
    return codes, classes


class Budget:
    """Wall-clock budget of one fit, shared by its stages; `left()` is inf without a budget."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return float("inf") if self.seconds is None else self.seconds - self.elapsed()

    def share(self, fraction: float, reserve_s: float = 0.0, floor_s: float = 1.0) -> float | None:
        """`fraction` of what is left after keeping `reserve_s` back (None without a budget)."""
        if self.seconds is None:
            return None
        return max(floor_s, (self.left() - reserve_s) * fraction)


def report_stage(callbacks: Iterable[Callback], stage: str, done: int, total: int,
                 elapsed_s: float, metrics: dict[str, float] | None = None) -> None:
    """Tell progress callbacks that a stage of a multi-stage fit began or ended. A callback may
    raise (e.g. the worker's Cancelled) to stop the fit between stages."""
    progress = TrainProgress(step=done, total_steps=total, elapsed_s=elapsed_s,
                             metrics=dict(metrics or {}), stage=stage, fit_steps=max(done, 1))
    for cb in callbacks:
        cb(progress)


def staged(callbacks: Iterable[Callback], stage: str) -> list[Callback]:
    """Wrap callbacks so every TrainProgress they see carries `stage` (e.g. 'cnn 1/2')."""
    def wrap(cb: Callback) -> Callback:
        def with_stage(progress: TrainProgress):
            progress.stage = stage
            return cb(progress)
        return with_stage
    return [wrap(cb) for cb in callbacks]


def softmax_np(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of (N, K) scores."""
    z = scores / temperature
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def check_labels(codes: np.ndarray, min_classes: int = 2) -> None:
    n_classes = len(np.unique(codes[codes >= 0]))
    if n_classes < min_classes:
        raise ValueError(f"need labels of at least {min_classes} classes to train a classifier, "
                         f"got {n_classes}: label some images of another class first")


class SSLEstimator(BaseEstimator):
    """Base class: a scikit-learn estimator whose hyperparameters are the fields of its typed
    `Config` dataclass, each an `__init__` keyword argument (so `get_params`, `set_params` and
    `sklearn.base.clone` work), plus `random_state`. `self.config` gives them back as one typed
    `Config`; `from_config(config)` builds an estimator from one.

    Every Config has `representation` ('auto', 'pixels' or a feature extractor, see
    representation.py): in feature mode `fit`, `predict_proba` and `transform` take the images'
    features as an optional `features=` argument and extract them themselves when it is None.

    Subclasses set `method` and `Config`, implement `_fit(X, codes, budget, callbacks,
    features=...)` and `_predict_proba(X, features)`, and list their torch modules / extra
    tensors in `_state()` / `_set_state()`. `fit` checks the input, encodes the labels and runs
    `_fit` with torch's threads set for this call only (restored afterwards: no process-wide
    state changes)."""
    method: ClassVar[str] = "base"
    Config: ClassVar[type] = object

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "Config" in cls.__dict__ and "__init__" not in cls.__dict__:
            cls.__init__ = config_init(cls.Config)

    @classmethod
    def from_config(cls, config: Any = None, random_state: int = 0) -> "SSLEstimator":
        """An estimator with the hyperparameters of `config` (a `cls.Config`; None = defaults)."""
        config = cls.Config() if config is None else config
        if not isinstance(config, cls.Config):
            raise TypeError(f"{cls.__name__} takes a {cls.Config.__name__}, got "
                            f"{type(config).__name__}")
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)},
                   random_state=random_state)

    @property
    def config(self) -> Any:
        """The hyperparameters as one typed `Config` (built from the current parameters)."""
        return self.Config(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self.Config)})

    # -- sklearn-style API -------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, callbacks: Iterable[Callback] = (),
            time_budget_s: float | None = None, features: np.ndarray | None = None,
            **fit_params: Any) -> "SSLEstimator":
        """Learn from X (N, H, W, C) uint8 and y (N,) class values with -1 = unlabeled, within
        `time_budget_s` seconds of wall time (None: no limit; feature extraction counts).
        `features`: X's features (N, D) for this representation, when already computed.
        `callbacks` receive a TrainProgress after every optimisation step (raise to stop)."""
        X, codes = self._check_fit_input(X, y, time_budget_s)
        budget, callbacks = Budget(time_budget_s), list(callbacks)
        self.representation_ = resolve_representation(self.representation, self.input_shape_)
        with torch_threads():
            feats = feature_matrix(self.representation_, X, features, callbacks)   # (N, D) | None
            self._fit(X, codes, budget, callbacks, features=feats, **fit_params)
        return self

    def _fit(self, X: np.ndarray, codes: np.ndarray, budget: "Budget", callbacks: list[Callback],
             features: np.ndarray | None = None, **fit_params: Any) -> None:
        raise NotImplementedError

    def predict_proba(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """(N, K) class probabilities of X (N, H, W, C) uint8, columns in `classes_` order."""
        X = check_images(X)
        with torch_threads():
            return self._predict_proba(X, feature_matrix(self.representation_, X, features))

    def _predict_proba(self, X: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def transform(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """(N, d) float32: the space the fitted model classifies X (N, H, W, C) uint8 in (its
        embedding: graph space, network features); estimators without one raise."""
        X = check_images(X)
        with torch_threads():
            return self._transform(X, feature_matrix(self.representation_, X, features))

    def _transform(self, X: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no embedding")

    def predict(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X, features), axis=1)]

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())

    def preview(self, n_per_class: int = 6, seed: int = 0) -> np.ndarray | None:
        """What the model makes of each class right now, for live views while it trains:
        (K, n, H, W, C) uint8 in `classes_` order (generated images for generative methods,
        random members of each predicted class otherwise), or None when it has nothing to show
        yet. Cheap and safe to call from a training callback (between optimisation steps)."""
        return None

    def _check_fit_input(self, X: np.ndarray, y: np.ndarray, time_budget_s: float | None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """X checked (see check_images), y checked against it and encoded (codes 0..K-1, -1 =
        unlabeled; at least 2 classes). Sets `classes_` and `input_shape_`."""
        X = check_images(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must hold one label per image: shape ({len(X)},), got {y.shape}")
        if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0)):
            raise ValueError(f"labels must be integers (class ids, -1 = unlabeled), got {y.dtype}")
        if len(y) and y.min() < -1:
            raise ValueError(f"labels are class ids >= 0 or -1 for unlabeled, got {int(y.min())}")
        if time_budget_s is not None and not time_budget_s > 0:
            raise ValueError(f"time_budget_s must be positive seconds (or None), got {time_budget_s}")
        codes, self.classes_ = encode_labels(y)
        check_labels(codes)
        self.input_shape_ = tuple(X.shape[1:])
        return X, codes

    # -- persistence -------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any], meta: dict[str, Any]) -> None:
        raise NotImplementedError

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT_VERSION, "method": self.method,
                "config": dataclasses.asdict(self.config), "random_state": self.random_state,
                "classes": [int(c) for c in self.classes_],
                "input_shape": [int(v) for v in self.input_shape_],
                "representation": self.representation_}
        validation = getattr(self, "validation_", None)
        if validation is not None:
            meta["validation"] = validation.to_dict()
        state = self._state()
        write_atomic(folder / "weights.pt", lambda fh: torch.save(state, fh), f"{folder}/weights.pt")
        write_bytes_atomic(folder / "config.json", json.dumps(meta, indent=2).encode(),
                           f"{folder}/config.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "SSLEstimator":
        folder = Path(folder)
        try:
            meta = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError) as err:
            raise ModelFileError(f"{folder} holds no readable config.json: {err}") from err
        if meta.get("method") != cls.method:
            raise ModelFileError(f"{folder} holds a {meta.get('method')!r} model, not {cls.method!r}")
        try:
            state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
            raise ModelFileError(f"refused to load {folder / 'weights.pt'}: not a plain "
                                 f"weights file ({type(err).__name__}: {err})") from err
        model = cls.from_config(build_config(cls.Config, meta["config"]), meta.get("random_state", 0))
        model.classes_ = np.array(meta["classes"], np.int64)
        model.input_shape_ = tuple(meta["input_shape"])
        model.representation_ = meta.get("representation", PIXELS)
        if "validation" in meta:
            model.validation_ = Accuracy(**meta["validation"])
        model._set_state(state, meta)
        return model
