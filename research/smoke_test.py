"""Fast API smoke test of every estimator on sklearn digits (~1 min on 2 cores)."""
import numpy as np
import torch

from engine.baseline import SupervisedClassifier
from engine.data import load_dataset, sample_labels
from engine.gan import GANConfig, SSLGANClassifier
from engine.graph_ssl import GraphConfig, GraphSSLClassifier
from engine.pipeline import PipelineConfig, SSLPipelineClassifier
from engine.vae import VAEConfig
from engine.vae_ssl import VAESSLClassifier, VAESSLConfig

torch.set_num_threads(2)
xtr, ytr, xte, yte = load_dataset("digits")
X = np.concatenate([xtr, xte])
y = np.full(len(X), -1)
lab = sample_labels(ytr, 5, 0)
y[lab] = ytr[lab]
cfg = PipelineConfig(graph=GraphConfig(n_neighbors=5, val_repeats=5))
ests = {
    "graph": GraphSSLClassifier(GraphConfig(n_neighbors=5), random_state=0),
    "default": SSLPipelineClassifier(cfg, random_state=0, time_budget_s=30),
    "vae": VAESSLClassifier(VAESSLConfig(vae=VAEConfig(epochs=30, batch_size=64)), random_state=0, time_budget_s=30),
    "gan": SSLGANClassifier(GANConfig(graph=GraphConfig(n_neighbors=5)), random_state=0, time_budget_s=30),
    "baseline": SupervisedClassifier("cnn", random_state=0, time_budget_s=30),
}
for name, est in ests.items():
    est.fit(X, y)
    p = est.predict_proba(xte)
    assert p.shape == (len(xte), 10) and np.allclose(p.sum(1), 1, atol=1e-4)
    print(f"{name:9s} test acc {est.score(xte, yte):.3f}  val {getattr(est, 'validation_score_', None)}")
    if hasattr(est, "transform"):
        print("          transform", est.transform(xte[:5]).shape)
    if hasattr(est, "sample"):
        s = est.sample(4, label=3)
        assert s.shape == (4, 8, 8, 1) and s.dtype == np.uint8 and s.max() <= 16
        print("          sample", s.shape, s.dtype)
