"""How an estimator sees its images: its own pixels, or the features of a pretrained network.

Every estimator has a `representation` hyperparameter: 'auto' (the project default for the
images' shape, features/choice.py), 'pixels', or an extractor name ('efficientnet-lite0', ...).
In feature mode `fit` and `predict_proba` take the features as an optional argument: the train
job passes the project's stored features (features/store.py), computed once for all methods;
without them the estimator extracts them itself, in batches (a notebook user just calls
`fit(X, y)`). Extractors are kept per process, so their weights load once.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from ssl_core.features.choice import PIXELS, resolve_representation
from ssl_core.features.extractors import FeatureExtractor, get_extractor
from ssl_core.training.trainer import Callback, TrainProgress

__all__ = ["PIXELS", "extractor_for", "feature_matrix", "resolve_representation"]


@lru_cache(maxsize=8)
def extractor_for(name: str, image_shape: tuple[int, ...]) -> FeatureExtractor:
    """The (process-wide, cached) extractor `name` for images of `image_shape`."""
    return get_extractor(name, tuple(image_shape))


def feature_matrix(representation: str, X: np.ndarray, features: np.ndarray | None = None,
                   callbacks: Iterable[Callback] = ()) -> np.ndarray | None:
    """None in pixel mode; otherwise the (N, D) features of X (N, H, W, C): `features` when
    given (checked against X and the extractor; the project's float16 memory map stays one),
    else extracted in batches into a float16 array, as the projects store them, reporting stage
    'features' to the callbacks (which may raise to cancel). Consumers convert rows in chunks
    (FeatureProjection): a float32 copy of 100,000 x 1280 features is 0.5 GB."""
    if representation == PIXELS:
        return None
    extractor = extractor_for(representation, tuple(X.shape[1:]))
    if features is not None:
        features = np.asarray(features)
        if features.shape != (len(X), extractor.dim):
            raise ValueError(f"features must be ({len(X)}, {extractor.dim}) for "
                             f"{representation}, got {features.shape}")
        return features if features.dtype in (np.float16, np.float32) else features.astype(np.float32)
    out = np.zeros((len(X), extractor.dim), np.float16)
    t0, callbacks = time.perf_counter(), list(callbacks)
    for s, block in extractor.iter_features(X):
        out[s:s + len(block)] = block
        done = s + len(block)
        progress = TrainProgress(step=done, total_steps=len(X), stage="features",
                                 elapsed_s=time.perf_counter() - t0, fit_steps=done)
        for cb in callbacks:
            cb(progress)
    return out
