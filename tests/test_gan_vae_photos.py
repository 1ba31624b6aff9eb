"""The SSL-GAN, the VAE-based method and the VAE on photos: feature mode (pretrained features; a
fake 1280-D matrix here, no extractor runs) and the conv networks for colour pixels, which read
the images one batch at a time (a guard fails any conversion of more than a batch)."""
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from ssl_core.models import base, representation
from ssl_core.models.classifier import ClassifierConfig
from ssl_core.models.conv_nets import (
    ConvEncoderClassifier,
    PixelBatches,
    uses_conv_nets,
    working_side,
)
from ssl_core.models.graph_classifier import GraphConfig
from ssl_core.models.registry import load_model
from ssl_core.models.ssl_gan import SSLGAN, GANConfig
from ssl_core.models.vae import VAE, VAEConfig
from ssl_core.models.vae_method import VAEMethod, VAEMethodConfig

GRAPH = GraphConfig(feature_components=16)
TINY_GAN = GANConfig(max_steps=150, batch_size=32, check_every=50, z_dim=16, graph=GRAPH,
                     feature_widths=(32, 32), conv_width=(8, 16))
TINY_VAE = VAEConfig(hidden=(32, 16), latent_dim=4, batch_size=32, lr=3e-3, min_steps=300,
                     conv_width=(8, 16))
TINY_CLASSIFIER = ClassifierConfig(epochs=2.0, min_steps=100, batch_size=32, feature_noise=0.3)
BATCH = 256                          # the most images any conversion may take at once


def colour_images(n_per_class=150, side=16, seed=0):
    """Two colour classes: warm pictures with a bright patch top-left, cool ones with a patch
    bottom-right, plus noise. Labels 3 and 8."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 70, size=(2 * n_per_class, side, side, 3)).astype(np.uint8)
    y = np.repeat([3, 8], n_per_class)
    h = side // 2
    X[y == 3, :, :, 0] += 120                                       # warm
    X[y == 8, :, :, 2] += 120                                       # cool
    X[np.flatnonzero(y == 3)[:, None], :h, :h] = 250
    X[np.flatnonzero(y == 8)[:, None], h:, h:] = 250
    return X, y


def feature_blobs(n_per_class=40, seed=0):
    """(N, 1280) 'pretrained features': two Gaussian blobs apart in 64 of the dimensions, with
    16x16 colour images beside them (the estimators take both), labels 3 and 8."""
    rng = np.random.default_rng(seed)
    y = np.repeat([3, 8], n_per_class)
    F = rng.normal(0, 1.0, (len(y), 1280)).astype(np.float32)
    F[y == 8, :64] += 3.0
    X = rng.integers(0, 255, size=(len(y), 16, 16, 3)).astype(np.uint8)
    return X, F, y


def few_labels(y, per_class=3):
    out = np.full(len(y), -1)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)[:per_class]
        out[idx] = y[idx]
    return out


def unlabeled_accuracy(pred, y, labels):
    return float((pred[labels < 0] == y[labels < 0]).mean())


@pytest.fixture
def no_extraction(monkeypatch):
    """'efficientnet-lite0' with a stub extractor: features must be passed, none extracted."""
    class Stub:
        dim = 1280

        def iter_features(self, images):
            raise AssertionError("features were extracted; the test passes them")
    monkeypatch.setattr(representation, "extractor_for", lambda name, shape: Stub())


@pytest.fixture
def batches_only(monkeypatch):
    """Every to_tensor in ssl_core refuses more than BATCH images: no float copy of a set."""
    real = base.to_tensor

    def guarded(X, device="cpu"):
        assert len(X) <= BATCH, f"converted {len(X)} images to float at once"
        return real(X, device)
    for name, module in list(sys.modules.items()):
        if name.startswith("ssl_core") and getattr(module, "to_tensor", None) is real:
            monkeypatch.setattr(module, "to_tensor", guarded)


def read_only_memmap(tmp_path, X):
    path = tmp_path / "images.u8"
    X.tofile(path)
    return np.memmap(path, np.uint8, mode="r", shape=X.shape)


def test_which_images_get_conv_networks_and_at_what_size():
    assert not uses_conv_nets((28, 28, 1)) and not uses_conv_nets((8, 8, 1))   # MNIST, digits
    assert uses_conv_nets((32, 32, 3)) and uses_conv_nets((64, 64, 1))
    assert [working_side(s, 32) for s in [(128, 128, 3), (12, 12, 3), (8, 8, 3), (224, 200, 3)]] \
        == [32, 16, 8, 32]
    assert working_side((128, 128, 3), 64) == 64
    X, _ = colour_images(3, side=40)
    view = PixelBatches(X, 32, cached=True)
    assert view.shape == (6, 3, 32, 32) and view[np.array([1, 4])].shape == (2, 3, 32, 32)
    assert torch.equal(view[1:3], view[torch.tensor([1, 2])])      # cached reads stay the same


def test_gan_on_features_predicts_draws_vectors_and_round_trips(tmp_path, no_extraction):
    X, F, y = feature_blobs()
    labels = few_labels(y)
    cfg = replace(TINY_GAN, representation="efficientnet-lite0")
    model = SSLGAN.from_config(cfg, random_state=0).fit(X, labels, features=F)
    assert model.kind_ == "features" and model.representation_ == "efficientnet-lite0"
    assert not model.draws_images                     # the Samples page asks before it draws
    proba = model.predict_proba(X, features=F)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert unlabeled_accuracy(model.predict(X, features=F), y, labels) > 0.9
    vectors = model.sample_vectors(6, label=8, seed=1)
    space = model.graph_space(X, features=F)
    assert vectors.shape == (6, 16) and space.shape == (len(X), 16) and vectors.dtype == np.float32
    assert model.sample_vectors(4).shape == (4, 16)
    with pytest.raises(ValueError, match="draws feature vectors, not pixels"):
        model.sample(4)
    assert model.preview() is None
    loaded = load_model(model.save(tmp_path / "gan"))
    assert loaded.kind_ == "features"
    assert np.array_equal(loaded.predict_proba(X, features=F), proba)
    assert np.array_equal(loaded.sample_vectors(6, label=8, seed=1), vectors)
    assert np.array_equal(loaded.graph_space(X, features=F), space)


def test_vae_method_on_features_predicts_draws_vectors_and_round_trips(tmp_path, no_extraction):
    X, F, y = feature_blobs()
    labels = few_labels(y)
    cfg = VAEMethodConfig(representation="efficientnet-lite0", feature_vae=TINY_VAE,
                          graph=replace(GRAPH, propagation="poisson"),
                          feature_classifier=TINY_CLASSIFIER)
    model = VAEMethod.from_config(cfg, random_state=0).fit(X, labels, features=F)
    assert model.net_ is not None and not model.vae_.draws_images and not model.draws_images
    assert unlabeled_accuracy(model.predict(X, features=F), y, labels) > 0.9
    assert model.transform(X, features=F).shape == (len(X), 4)
    vectors = model.sample_vectors(5, label=3, seed=2)
    assert vectors.shape == (5, 16) and model.graph_space(X, features=F).shape == (len(X), 16)
    with pytest.raises(ValueError, match="draws feature vectors, not pixels"):
        model.sample(3, label=3)
    assert model.preview() is None
    loaded = load_model(model.save(tmp_path / "vae"))
    assert np.array_equal(loaded.predict_proba(X, features=F), model.predict_proba(X, features=F))
    assert np.array_equal(loaded.sample_vectors(5, label=3, seed=2), vectors)


def test_vector_vae_reconstructs_separates_and_round_trips(tmp_path):
    _, F, y = feature_blobs()
    V = F[:, :64] * 0.05                                    # any scale: the VAE normalises it
    vae = VAE.from_config(TINY_VAE, random_state=0).fit(V)
    assert vae.kind_ == "vectors" and not vae.draws_images
    z = vae.transform(V)
    assert z.shape == (len(V), 4) and np.isfinite(z).all()
    gap = np.linalg.norm(z[y == 3].mean(0) - z[y == 8].mean(0))
    spread = np.mean([np.linalg.norm(z[y == c] - z[y == c].mean(0), axis=1).mean() for c in (3, 8)])
    assert gap > spread                                     # the blobs separate without labels
    rec = vae.reconstruct(V)
    assert rec.shape == V.shape and rec.dtype == np.float32
    assert ((rec - V) ** 2).mean() < ((V - V.mean(0)) ** 2).mean()   # better than the mean
    vae.fit_class_regions(V, few_labels(y, 10))
    assert vae.sample_vectors(7, label=8).shape == (7, 64)
    with pytest.raises(ValueError, match="feature vectors"):
        vae.sample(2)
    loaded = VAE.load(vae.save(tmp_path / "vae"))
    assert not loaded.draws_images and np.array_equal(loaded.transform(V), z)
    assert np.array_equal(loaded.sample_vectors(3, label=3, seed=4), vae.sample_vectors(3, label=3, seed=4))


def test_conv_gan_on_colour_pixels_learns_in_batches_and_round_trips(tmp_path, batches_only):
    X, y = colour_images()
    labels = few_labels(y)
    X = read_only_memmap(tmp_path, X)
    cfg = replace(TINY_GAN, representation="pixels")
    model = SSLGAN.from_config(cfg, random_state=0).fit(X, labels)
    assert model.kind_ == "conv" and model.draws_images
    assert unlabeled_accuracy(model.predict(X), y, labels) > 0.8        # chance: 0.5
    assert model.sample(4).shape == (4, 16, 16, 3) and model.sample(4).dtype == np.uint8
    assert model.sample(2, label=8).shape == (2, 16, 16, 3)
    assert model.preview(3).shape == (2, 3, 16, 16, 3)
    with pytest.raises(ValueError, match="draws images"):
        model.sample_vectors(2)
    loaded = load_model(model.save(tmp_path / "gan"))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.sample(3, label=3, seed=1), model.sample(3, label=3, seed=1))


def test_conv_vae_method_on_colour_pixels_learns_in_batches_and_round_trips(tmp_path, batches_only):
    X, y = colour_images()
    labels = few_labels(y)
    X = read_only_memmap(tmp_path, X)
    cfg = VAEMethodConfig(representation="pixels", conv_vae=TINY_VAE,
                          classifier=replace(TINY_CLASSIFIER, feature_noise=0.0))
    model = VAEMethod.from_config(cfg, random_state=0).fit(X, labels)
    assert model.vae_.kind_ == "conv" and isinstance(model.net_, ConvEncoderClassifier)
    assert unlabeled_accuracy(model.predict(X), y, labels) > 0.8
    assert model.transform(X).shape == (len(X), 4)
    samples = model.sample(4, label=3)
    assert samples.shape == (4, 16, 16, 3) and samples.dtype == np.uint8 and model.vae_.draws_images
    rec = model.vae_.reconstruct(X[:5])
    assert rec.shape == (5, 16, 16, 3)
    assert np.abs(rec.astype(int) - X[:5]).mean() < np.abs(255 - X[:5].astype(int)).mean()
    assert model.vae_.interpolate(X[0], X[-1], steps=5).shape == (5, 16, 16, 3)
    loaded = load_model(model.save(tmp_path / "vae"))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.sample(3, label=8, seed=5), model.sample(3, label=8, seed=5))


def test_colour_models_saved_before_conv_nets_load_as_the_mlps_they_are(tmp_path):
    """Until now every pixel GAN and VAE was an MLP, colour ones included, and their weights
    carry no 'kind': they must still load, and predict / encode as before."""
    X, y = colour_images(10, side=6)                                 # (20, 6, 6, 3): 108 inputs
    gan = SSLGAN.from_config(replace(TINY_GAN, representation="pixels"), random_state=0)
    gan.classes_, gan.input_shape_, gan.representation_ = np.array([3, 8]), X.shape[1:], "pixels"
    gan.kind_, gan.rollbacks_ = "mlp", 0
    gan.D_, gan.G_ = gan._networks(0)
    gan.D_.eval()
    gan.G_.eval()
    vae = VAE.from_config(TINY_VAE, random_state=0)
    vae.classes_, vae.input_shape_, vae.representation_ = np.zeros(0, np.int64), X.shape[1:], "pixels"
    vae.kind_ = "mlp"
    vae.net_ = vae._new_net(X).eval()
    for model, name in [(gan, "gan"), (vae, "vae")]:
        folder = model.save(tmp_path / name)
        state = torch.load(folder / "weights.pt", weights_only=True)
        del state["kind"]
        torch.save(state, folder / "weights.pt")
    old_gan, old_vae = load_model(tmp_path / "gan"), VAE.load(tmp_path / "vae")
    assert old_gan.kind_ == old_vae.kind_ == "mlp"
    assert np.array_equal(old_gan.predict_proba(X), gan.predict_proba(X))
    assert np.array_equal(old_vae.transform(X), vae.transform(X))
