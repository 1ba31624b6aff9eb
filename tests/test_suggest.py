"""Active-learning suggestions on synthetic Gaussian clusters in a latent space."""
import numpy as np
import pytest

from ssl_core.labeling.suggest import STRATEGIES, suggest, uncertainty_scores


def clusters(n_clusters: int = 10, per: int = 300, d: int = 16, spread: float = 1.0,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian clusters: latents (N, d) float32 and cluster of each row (N,)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=12.0, size=(n_clusters, d))
    which = np.repeat(np.arange(n_clusters), per)
    z = centres[which] + rng.normal(scale=spread, size=(len(which), d))
    return z.astype(np.float32), which


def two_clusters_with_boundary(seed: int = 0):
    """Two blobs along x (at -2 and +2, wide in y) and a logistic model p(class 1) = s(3x):
    the decision boundary is the line x = 0. Returns latents (N, 2), proba (N, 2)."""
    rng = np.random.default_rng(seed)
    left = np.stack([rng.normal(-2, 1.0, 1000), rng.uniform(-10, 10, 1000)], axis=1)
    right = np.stack([rng.normal(2, 1.0, 1000), rng.uniform(-10, 10, 1000)], axis=1)
    z = np.concatenate([left, right]).astype(np.float32)
    p1 = 1 / (1 + np.exp(-3 * z[:, 0]))
    return z, np.stack([1 - p1, p1], axis=1)


def test_diversity_picks_one_image_per_cluster_before_any_label():
    z, which = clusters()
    picks = suggest("diversity", 10, z, np.zeros(len(z), bool))
    assert len(picks) == 10 and len(set(picks.tolist())) == 10
    assert sorted(which[picks].tolist()) == list(range(10))


def test_diversity_picks_typical_images_not_outliers():
    z, which = clusters()
    rng = np.random.default_rng(1)
    # a few far-flung points inside each cluster's range of directions: outliers
    outliers = z[rng.choice(len(z), 20, replace=False)] * 1.0 + rng.normal(0, 8.0, (20, 16))
    z_all = np.concatenate([z, outliers.astype(np.float32)])
    picks = suggest("diversity", 10, z_all, np.zeros(len(z_all), bool))
    assert (picks < len(z)).all(), "an outlier was suggested"
    centres = np.stack([z[which == c].mean(0) for c in range(10)])
    dist_to_centre = np.linalg.norm(z_all[picks] - centres[which[picks]], axis=1)
    typical = np.median(np.linalg.norm(z - centres[which], axis=1))
    assert (dist_to_centre < typical).all()  # closer to its cluster's centre than most members


def test_diversity_goes_where_nothing_is_labeled():
    z, which = clusters()
    labeled = np.zeros(len(z), bool)
    for c in range(6):  # two labels in each of clusters 0..5
        labeled[np.flatnonzero(which == c)[:2]] = True
    picks = suggest("diversity", 4, z, labeled)
    assert sorted(which[picks].tolist()) == [6, 7, 8, 9]
    assert not labeled[picks].any()


def test_diversity_on_a_large_collection_covers_all_clusters():
    z, which = clusters(n_clusters=10, per=7000, seed=3)  # 70,000 x 16
    picks = suggest("diversity", 50, z, np.zeros(len(z), bool), seed=0)
    assert len(np.unique(picks)) == 50
    assert set(which[picks].tolist()) == set(range(10))


def test_uncertainty_picks_boundary_images_spread_along_the_boundary():
    z, proba = two_clusters_with_boundary()
    # a clump of 20 right on the boundary at y = 8: the top-n by uncertainty alone sit there
    rng = np.random.default_rng(5)
    clump = np.stack([rng.normal(0, 0.002, 20), rng.normal(8, 0.2, 20)], axis=1)
    z = np.concatenate([z, clump]).astype(np.float32)
    p1 = 1 / (1 + np.exp(-3 * z[:, 0]))
    proba = np.stack([1 - p1, p1], axis=1)
    margin = np.abs(proba[:, 1] - proba[:, 0])
    assert (np.argsort(margin)[:10] >= 2000).sum() >= 8  # the premise: the clump dominates
    picks = suggest("uncertainty", 10, z, np.zeros(len(z), bool), proba)
    assert len(np.unique(picks)) == 10
    # every pick is among the 40 (4 x n) most uncertain available images
    assert (margin[picks] <= np.sort(margin)[39]).all()
    assert np.abs(z[picks, 0]).max() < np.median(np.abs(z[:, 0])) / 2
    assert picks[0] == np.argmin(margin)  # the single most uncertain comes first
    # spread: the picks cover the boundary (y in -10..10), not only the clump
    assert (picks >= 2000).sum() <= 3
    assert np.ptp(z[picks, 1]) > 12


def test_uncertainty_entropy_and_margin_agree_on_two_classes():
    z, proba = two_clusters_with_boundary()
    labeled = np.zeros(len(z), bool)
    a = suggest("uncertainty", 5, z, labeled, proba, method="margin")
    b = suggest("uncertainty", 5, z, labeled, proba, method="entropy")
    assert set(a.tolist()) == set(b.tolist())
    p = np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    margin = uncertainty_scores(p, "margin")
    entropy = uncertainty_scores(p, "entropy")
    assert margin.argmax() == 0 and margin.argmin() == 1
    assert entropy.argmax() == 2 and entropy.argmin() == 1
    assert np.isclose(entropy[0], np.log(2))


def test_uncertainty_needs_probabilities_and_valid_names():
    z, proba = two_clusters_with_boundary()
    labeled = np.zeros(len(z), bool)
    with pytest.raises(ValueError, match="needs class probabilities"):
        suggest("uncertainty", 5, z, labeled)
    with pytest.raises(ValueError, match="proba must have shape"):
        suggest("uncertainty", 5, z, labeled, proba[:10])
    with pytest.raises(ValueError, match="margin or entropy"):
        suggest("uncertainty", 5, z, labeled, proba, method="variance")
    with pytest.raises(ValueError, match="diversity, uncertainty, random"):
        suggest("bald", 5, z, labeled)


def test_random_is_seeded():
    z, _ = clusters(per=50)
    labeled = np.zeros(len(z), bool)
    a = suggest("random", 20, z, labeled, seed=7)
    assert (a == suggest("random", 20, z, labeled, seed=7)).all()
    assert not (a == suggest("random", 20, z, labeled, seed=8)).all()
    assert len(np.unique(a)) == 20


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_labeled_and_excluded_images_are_never_suggested(strategy):
    z, proba = two_clusters_with_boundary()
    labeled = np.zeros(len(z), bool)
    margin = np.abs(proba[:, 1] - proba[:, 0])
    labeled[np.argsort(margin)[:30]] = True           # the most uncertain ones are labeled
    labeled[::3] = True
    excluded_ids = np.flatnonzero(~labeled)[:50]
    for exclude in (excluded_ids, np.isin(np.arange(len(z)), excluded_ids)):
        picks = suggest(strategy, 25, z, labeled, proba, exclude=exclude)
        assert len(picks) == 25 and len(np.unique(picks)) == 25
        assert not labeled[picks].any()
        assert not np.isin(picks, excluded_ids).any()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_asking_for_more_than_available_returns_all_available(strategy):
    z, proba = two_clusters_with_boundary()
    labeled = np.ones(len(z), bool)
    free = np.array([3, 500, 1500, 1999])
    labeled[free] = False
    picks = suggest(strategy, 10, z, labeled, proba)
    assert sorted(picks.tolist()) == free.tolist()
    assert suggest(strategy, 0, z, labeled, proba).tolist() == []
    assert suggest(strategy, 5, z, np.ones(len(z), bool), proba).tolist() == []
