"""The supervised baseline estimator: fit/predict on labels only, save/load, unsafe files refused."""
import os
import pickle

import numpy as np
import pytest
import torch

from ssl_core.models.base import ModelFileError, encode_labels, to_tensor
from ssl_core.models.baseline import BaselineConfig, SupervisedBaseline
from ssl_core.models.classifier import ClassifierConfig
from ssl_core.models.cnn import SmallCNN, random_affine

FAST = BaselineConfig(classifier=ClassifierConfig(width=(8, 16, 16), hidden=16, min_steps=60))


def blobs(n_per_class=40, seed=0):
    """Three classes of 12x12 images: a bright square in a class-specific corner, plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 60, size=(3 * n_per_class, 12, 12, 1)).astype(np.uint8)
    y = np.repeat(np.arange(3), n_per_class)
    for i, c in enumerate(y):
        r, q = [(1, 1), (1, 7), (7, 4)][c]
        X[i, r:r + 4, q:q + 4] = 230
    return X, y * 10 + 5  # arbitrary class values: 5, 15, 25


def test_shapes_and_augmentation_keep_shape():
    net = SmallCNN(3, 4, (4, 8, 8), 8)
    x = torch.rand(5, 3, 32, 32)
    assert net(x).shape == (5, 4) and net.embedding(x).shape == (5, 8)
    assert SmallCNN(1, 10, (4, 8, 8), 8)(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert random_affine(x, 2, 10, 0.1).shape == x.shape
    assert to_tensor(np.zeros((2, 8, 9, 3), np.uint8)).shape == (2, 3, 8, 9)
    with pytest.raises(ValueError):
        to_tensor(np.zeros((2, 8, 8), np.float32))


def test_label_encoding_keeps_unlabeled():
    codes, classes = encode_labels(np.array([7, -1, 3, 7]))
    assert classes.tolist() == [3, 7] and codes.tolist() == [1, -1, 0, 1]


def test_fit_beats_chance_and_round_trips(tmp_path):
    X, y = blobs()
    y_train = np.where(np.arange(len(y)) % 4 == 0, y, -1)    # a quarter labeled
    model = SupervisedBaseline.from_config(FAST, random_state=0).fit(X, y_train)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert model.score(X, y) > 0.9                           # chance is 1/3
    assert set(model.predict(X)) <= {5, 15, 25}
    folder = model.save(tmp_path / "m")
    loaded = SupervisedBaseline.load(folder)
    assert np.array_equal(loaded.predict_proba(X), proba)
    assert loaded.config == FAST


def test_one_class_only_is_a_clear_error():
    X, y = blobs(5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        SupervisedBaseline.from_config(FAST).fit(X, np.where(y == 5, 5, -1))


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/latentlab-pwned",))


def test_malicious_checkpoint_is_refused(tmp_path):
    X, y = blobs(5)
    folder = SupervisedBaseline.from_config(FAST).fit(X, y).save(tmp_path / "m")
    with open(folder / "weights.pt", "wb") as fh:
        pickle.dump({"net": Evil()}, fh)
    if os.path.exists("/tmp/latentlab-pwned"):
        os.unlink("/tmp/latentlab-pwned")
    with pytest.raises(ModelFileError, match="refused to load"):
        SupervisedBaseline.load(folder)
    assert not os.path.exists("/tmp/latentlab-pwned")


def test_loading_another_method_is_refused(tmp_path):
    X, y = blobs(5)
    folder = SupervisedBaseline.from_config(FAST).fit(X, y).save(tmp_path / "m")
    (folder / "config.json").write_text((folder / "config.json").read_text()
                                        .replace('"baseline"', '"gan"'))
    with pytest.raises(ModelFileError, match="'gan' model"):
        SupervisedBaseline.load(folder)
