"""The VAE: finite losses, an optimisation step lowers the loss, latent/decoder shapes,
per-class sampling, save/load."""
import numpy as np
import torch
from test_baseline import blobs

from ssl_core.models.vae import VAE, VAEConfig, VAENet

TINY = VAEConfig(hidden=(32, 16), latent_dim=4, epochs=30, batch_size=32, lr=3e-3, min_steps=0)


def test_loss_is_finite_and_a_step_lowers_it():
    torch.manual_seed(0)
    net = VAENet(144, TINY)
    x = torch.rand(64, 144)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(2):
        torch.manual_seed(1)                 # same noise both times: compare like with like
        rec, kl = net.loss(x)
        loss = (rec + kl).mean()
        assert rec.shape == kl.shape == (64,) and torch.isfinite(loss)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[1] < losses[0]


def test_fit_transform_decode_sample_and_round_trip(tmp_path):
    X, y = blobs(30)
    vae = VAE.from_config(TINY, random_state=0).fit(X)
    z = vae.transform(X)
    assert z.shape == (len(X), 4) and np.isfinite(z).all()
    centroids = np.stack([z[y == c].mean(0) for c in np.unique(y)])
    spread = np.mean([np.linalg.norm(z[y == c] - z[y == c].mean(0), axis=1).mean()
                      for c in np.unique(y)])
    gaps = [np.linalg.norm(centroids[i] - centroids[j]) for i in range(3) for j in range(i)]
    assert min(gaps) > spread              # classes it never saw labels for separate in latent space
    rec = vae.reconstruct(X[:5])
    assert rec.shape == (5, 12, 12, 1) and rec.dtype == np.uint8
    assert vae.interpolate(X[0], X[-1], steps=6).shape == (6, 12, 12, 1)
    vae.fit_class_regions(X, np.where(np.arange(len(y)) % 3 == 0, y, -1))
    samples = vae.sample(8, label=25)
    assert samples.shape == (8, 12, 12, 1)
    assert samples[:, 7:11, 4:8].mean() > samples[:, 1:5, 1:5].mean()  # class 25's corner is bright
    loaded = VAE.load(vae.save(tmp_path / "vae"))
    assert np.array_equal(loaded.transform(X), z)
    assert np.array_equal(loaded.sample(3, label=5, seed=1), vae.sample(3, label=5, seed=1))
