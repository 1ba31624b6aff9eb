"""kNN graph and Poisson learning on synthetic clusters."""
import numpy as np
import scipy.sparse as sp

from ssl_core.models.propagation import knn_graph, poisson_learning
from ssl_core.neighbours import knn


def two_moons_like(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    a = np.c_[np.cos(t), np.sin(t)] + rng.normal(0, 0.06, (n, 2))
    b = np.c_[1 - np.cos(t), 0.5 - np.sin(t)] + rng.normal(0, 0.06, (n, 2))
    return np.r_[a, b].astype(np.float32), np.r_[np.zeros(n, int), np.ones(n, int)]


def test_graph_is_symmetric_and_positive():
    x, _ = two_moons_like(50)
    W = knn_graph(*knn(x, 5))
    assert isinstance(W, sp.csr_matrix) and abs(W - W.T).max() < 1e-12
    assert W.min() >= 0 and (np.asarray(W.sum(1)).ravel() > 0).all()


def test_poisson_learning_follows_the_manifold_from_one_label_per_class():
    x, y = two_moons_like()
    y_train = np.full(len(y), -1)
    y_train[[0, len(y) - 1]] = y[[0, len(y) - 1]]           # a single label per moon
    labeled = np.flatnonzero(y_train >= 0)
    pred = poisson_learning(knn_graph(*knn(x, 10)), labeled, y_train[labeled], 2).argmax(1)
    assert (pred == y).mean() > 0.95
    # a nearest-labeled-point rule cannot do this on interleaved moons
    nearest = np.argmin(np.linalg.norm(x[:, None] - x[[0, len(y) - 1]][None], axis=2), 1)
    assert (pred == y).mean() > (nearest == y).mean() + 0.05


def test_scores_shape_and_labeled_points_keep_their_class():
    x, y = two_moons_like(100)
    labeled = np.array([3, 150, 40, 190])
    u = poisson_learning(knn_graph(*knn(x, 8)), labeled, y[labeled], 2)
    assert u.shape == (200, 2) and np.isfinite(u).all()
    assert (u[labeled].argmax(1) == y[labeled]).all()


def test_images_no_label_can_reach_take_the_nearest_reached_images_class():
    """Near-duplicate groups make a kNN graph fall apart; a group without a label must not all
    land in the first class (argmax of zero scores)."""
    from ssl_core.models.graph_classifier import reach_unreached

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [12.0, 0.0]])              # C is near B
    x = np.concatenate([c + rng.normal(0, 0.05, (20, 2)) for c in centres]).astype(np.float32)
    codes = np.full(60, -1)
    codes[[0, 1]], codes[[20, 21]] = 0, 1                                    # A: 0, B: 1, C: none
    W = knn_graph(*knn(x, 5))
    labeled = np.flatnonzero(codes >= 0)
    scores = poisson_learning(W, labeled, codes[labeled], 2)
    assert (scores[40:].argmax(1) == 0).all()            # the old answer: C all in class 0
    assert reach_unreached(scores, W, codes, x) == 20
    assert (scores[40:].argmax(1) == 1).all() and (scores[:20].argmax(1) == 0).all()
