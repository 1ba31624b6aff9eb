"""The semi-supervised estimators: graph, default pipeline, VAE-based, SSL-GAN and the baseline
families — shapes, finite losses, learning, save/load, refusal of unsafe files, stages."""
import json
import os
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_baseline import Evil, blobs

from ssl_core.models.base import ModelFileError, to_tensor
from ssl_core.models.baseline import BaselineConfig, SupervisedBaseline
from ssl_core.models.classifier import ClassifierConfig
from ssl_core.models.default_method import DefaultMethod, DefaultMethodConfig
from ssl_core.models.graph_classifier import GraphClassifier
from ssl_core.models.mlp import DiscriminatorMLP, EncoderMLP, Generator
from ssl_core.models.preprocessing import deskew
from ssl_core.models.registry import METHODS, load_model
from ssl_core.models.ssl_gan import SSLGAN, GANConfig, GANTask
from ssl_core.models.vae import VAEConfig, planned_epochs
from ssl_core.models.vae_method import VAEMethod, VAEMethodConfig

TINY_CNN = ClassifierConfig(width=(8, 16, 16), hidden=16, epochs=2.0, min_steps=80)
TINY_VAE = VAEConfig(hidden=(32, 16), latent_dim=4, epochs=20, batch_size=32, lr=3e-3)


def few_labels(y, per_class=2):
    """y with all but the first `per_class` images of each class hidden (-1)."""
    out = np.full(len(y), -1)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)[:per_class]
        out[idx] = y[idx]
    return out


def test_deskew_straightens_a_slanted_stroke_and_keeps_blank_images():
    img = torch.zeros(2, 1, 16, 16)
    for r in range(2, 14):                        # a stroke leaning right: column grows with row
        img[0, 0, r, 3 + r // 2] = 1.0
    out = deskew(img)
    assert out.shape == img.shape
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")

    def slant(m):
        m = m / m.sum()
        my, mx = (m * ys).sum(), (m * xs).sum()
        return float((m * (ys - my) * (xs - mx)).sum() / (m * (ys - my) ** 2).sum())
    assert abs(slant(img[0, 0])) > 0.4 and abs(slant(out[0, 0])) < 0.1
    assert torch.equal(out[1], img[1])            # nothing to deskew


def test_graph_classifier_propagates_two_labels_per_class_and_round_trips(tmp_path):
    X, y = blobs(40)
    model = GraphClassifier(random_state=0).fit(X, few_labels(y))
    assert model.transduction_.shape == y.shape and (model.transduction_ == y).mean() > 0.95
    assert model.validation_ is not None and model.validation_.n == 6   # 5-fold CV over 6 labels
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(1), 1)
    fresh, fresh_y = blobs(10, seed=5)                                  # images it never saw
    assert model.score(fresh, fresh_y) > 0.9
    loaded = load_model(model.save(tmp_path / "g"))
    assert isinstance(loaded, GraphClassifier)
    assert np.array_equal(loaded.predict_proba(fresh), model.predict_proba(fresh))


def test_pipeline_on_small_data_stops_after_the_graph():
    X, y = blobs(30)
    stages = []
    model = DefaultMethod(random_state=0).fit(X, few_labels(y), callbacks=[lambda p: stages.append(p.stage)])
    assert model.net_ is None and model.score(X, y) > 0.95
    assert stages == ["graph", "graph", "done"]
    assert model.validation_of_ is None           # validation_ measures the final model itself


def test_pipeline_distils_into_a_cnn_reports_stages_and_round_trips(tmp_path):
    X, y = blobs(40)
    cfg = DefaultMethodConfig(cnn=TINY_CNN, min_images_for_cnn=0, rounds=2, min_round_s=0.0)
    stages = []
    model = DefaultMethod.from_config(cfg, random_state=0).fit(X, few_labels(y),
                                                 callbacks=[lambda p: stages.append(p.stage)])
    assert model.net_ is not None
    assert [s for s in dict.fromkeys(stages)] == ["graph", "cnn 1/2", "cnn 2/2", "done"]
    assert "graph stage" in model.validation_of_  # the app says what its validation measured
    assert model.score(X, y) > 0.9
    assert model.transform(X[:5]).shape == (5, TINY_CNN.hidden)
    loaded = load_model(model.save(tmp_path / "p"))
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_pipeline_respects_a_time_budget():
    X, y = blobs(40)
    cfg = DefaultMethodConfig(cnn=ClassifierConfig(width=(4, 8, 8), hidden=8, epochs=10_000),
                         min_images_for_cnn=0, rounds=1)
    model = DefaultMethod.from_config(cfg, random_state=0).fit(X, few_labels(y), time_budget_s=12)
    assert model.history_[-1][1] <= 12 + 2       # the CNN anneals and stops inside the budget


def test_vae_ssl_fits_samples_per_class_and_round_trips(tmp_path):
    X, y = blobs(40)
    cfg = VAEMethodConfig(vae=TINY_VAE, classifier=ClassifierConfig(epochs=2.0, min_steps=150, batch_size=32))
    model = VAEMethod.from_config(cfg, random_state=0).fit(X, few_labels(y))
    assert model.score(X, y) > 0.9
    assert model.transform(X).shape == (len(X), 4)
    samples = model.sample(6, label=25)
    assert samples.shape == (6, 12, 12, 1) and samples.dtype == np.uint8
    assert samples[:, 7:11, 4:8].mean() > samples[:, 1:5, 1:5].mean()   # class 25's bright corner
    loaded = load_model(model.save(tmp_path / "v"))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.sample(3, label=5, seed=2), model.sample(3, label=5, seed=2))


def test_vae_ssl_gives_small_images_their_own_vae_and_round_trips(tmp_path):
    """8x8 images (digits) use `small_vae`; saving and loading rebuilds that same VAE."""
    X, y = blobs(40)
    small = X[:, 2:10, 2:10]                                  # (120, 8, 8, 1): 64 pixels
    cfg = VAEMethodConfig(vae=replace(TINY_VAE, min_steps=300), min_classifier_s=1e9,
                          small_vae=replace(TINY_VAE, latent_dim=3, min_steps=300))
    model = VAEMethod.from_config(cfg, random_state=0).fit(small, few_labels(y), time_budget_s=60)
    assert model.vae_.config.latent_dim == 3 and model.transform(small).shape == (len(X), 3)
    assert model.vae_.planned_epochs(len(small)) == 100   # 120 images in batches of 32: 3 steps an epoch
    loaded = load_model(model.save(tmp_path / "small"))
    assert np.array_equal(loaded.transform(small), model.transform(small))
    assert np.array_equal(loaded.predict_proba(small), model.predict_proba(small))
    big = VAEMethod.from_config(cfg, random_state=0).fit(X, few_labels(y), time_budget_s=60)   # 12x12: 144 px
    assert big.transform(X).shape == (len(X), 4)


def test_small_sets_train_the_vae_for_a_minimum_number_of_steps():
    cfg = VAEConfig(epochs=20.0, batch_size=256, min_steps=5000)
    assert planned_epochs(cfg, 70_000) == 20.0                        # 5,460 steps already
    assert planned_epochs(cfg, 3_000) == 455.0                        # 11 steps an epoch
    assert planned_epochs(replace(cfg, batch_size=64), 1_797) == 179.0
    assert planned_epochs(cfg, 100) == 5000.0                         # one batch holds them all


def gan_task(X, y, cfg=GANConfig(check_every=20, patience=2), seed=0):
    torch.manual_seed(seed)
    x = to_tensor(X)
    D, G = DiscriminatorMLP(x[0].numel(), 3, widths=(64, 32)), Generator(cfg.z_dim, x[0].numel(), 32)
    codes = np.searchsorted(np.unique(y), y)
    return GANTask(D, G, x, np.arange(len(x)), codes, cfg, None, seed), codes


def test_gan_losses_are_finite_and_training_lowers_the_supervised_loss():
    X, y = blobs(30)
    task, codes = gan_task(X, y)
    x = to_tensor(X)

    def sup_loss():
        task.D.eval()
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(task.D(x), torch.from_numpy(codes)).item()
    before = sup_loss()
    rng = np.random.default_rng(0)
    for step in range(30):
        losses = task.train_step(step % task.steps_per_epoch, rng.permutation(len(X)))
        assert all(np.isfinite(v) for v in losses.values())
    assert sup_loss() < before
    assert task.G(torch.randn(4, 100)).shape == (4, 144)


def test_gan_collapse_is_detected_and_rolled_back():
    X, y = blobs(30)
    task, _ = gan_task(X, y)
    rng = np.random.default_rng(0)
    step = 0
    for _ in range(20):                            # a healthy start: a good snapshot exists
        task.train_step(step % task.steps_per_epoch, rng.permutation(len(X)))
        step += 1
    assert task.monitor and task.monitor[-1]["healthy"]
    good_out = task.good[1]["net.6.g"].clone()
    with torch.no_grad():                          # force a collapse: G's output ignores z
        task.G.net[6].g.zero_()
    for _ in range(2 * 20):                        # patience (2) bad checks
        task.train_step(step % task.steps_per_epoch, rng.permutation(len(X)))
        step += 1
    assert task.rollbacks == 1
    assert any(not m["healthy"] for m in task.monitor)
    assert torch.equal(task.G.net[6].g, good_out)  # G is back at the last healthy snapshot


def test_gan_fit_beats_chance_samples_and_round_trips(tmp_path):
    X, y = blobs(40)
    model = SSLGAN.from_config(GANConfig(max_steps=150), random_state=0).fit(X, few_labels(y))
    assert model.score(X, y) > 0.8 and model.rollbacks_ == 0
    assert model.sample(5).shape == (5, 12, 12, 1) and model.sample(2, label=15).shape == (2, 12, 12, 1)
    loaded = load_model(model.save(tmp_path / "gan"))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.sample(3, seed=1), model.sample(3, seed=1))


@pytest.mark.parametrize("family,net", [("gan", DiscriminatorMLP), ("vae", EncoderMLP)])
def test_baseline_families_use_their_networks(family, net):
    X, y = blobs(20)
    cfg = BaselineConfig(family=family, augment=False,
                         classifier=ClassifierConfig(epochs=2.0, min_steps=60))
    model = SupervisedBaseline.from_config(cfg, random_state=0).fit(X, few_labels(y, 6))
    assert isinstance(model.net_, net) and model.score(X, y) > 0.6
    assert model.validation_ is not None and model.validation_.n == 3


@pytest.mark.parametrize("method", ["graph", "default"])
def test_every_method_refuses_a_malicious_checkpoint(tmp_path, method):
    X, y = blobs(10)
    folder = METHODS[method](random_state=0).fit(X, few_labels(y)).save(tmp_path / method)
    with open(folder / "weights.pt", "wb") as fh:
        pickle.dump({"net": Evil()}, fh)
    if os.path.exists("/tmp/latentlab-pwned"):
        os.unlink("/tmp/latentlab-pwned")
    with pytest.raises(ModelFileError, match="refused to load"):
        load_model(folder)
    assert not os.path.exists("/tmp/latentlab-pwned")


def test_unknown_method_in_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"method": "os.system"}))
    with pytest.raises(ModelFileError, match="unknown method"):
        load_model(tmp_path)


def test_one_class_only_is_a_clear_error_for_every_method():
    X, y = blobs(5)
    for cls in METHODS.values():
        with pytest.raises(ValueError, match="at least 2 classes"):
            cls().fit(X, np.where(y == 5, 5, -1))


def test_vae_ssl_without_time_for_the_classifier_predicts_by_latent_neighbours(tmp_path):
    X, y = blobs(40)
    cfg = VAEMethodConfig(vae=TINY_VAE, min_classifier_s=1e9)       # never enough time to distil
    model = VAEMethod.from_config(cfg, random_state=0).fit(X, few_labels(y), time_budget_s=60)
    assert model.net_ is None and model.score(X, y) > 0.9
    loaded = load_model(model.save(tmp_path / "v"))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
