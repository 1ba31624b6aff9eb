"""k nearest neighbours (ssl_core/neighbours.py): one convention everywhere (nearest first, a
point never its own neighbour), exact on small sets, close on large ones."""
import numpy as np
from test_layout import clusters

from ssl_core.neighbours import knn, knn_query, nearest_neighbours


def test_knn_matches_brute_force():
    x = np.random.default_rng(1).normal(size=(200, 5)).astype(np.float32)
    idx, dist = knn(x, 7)
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert np.array_equal(np.sort(idx, 1), np.sort(np.argsort(d, 1)[:, :7], 1))
    assert np.allclose(dist, np.sort(d, 1)[:, :7], atol=1e-4)


def test_knn_is_exact_on_small_sets_and_close_on_large_ones():
    x, _ = clusters(200)
    idx, dist = knn(x, 10)
    assert idx.shape == dist.shape == (1000, 10) and dist.dtype == np.float32
    assert not (idx == np.arange(1000)[:, None]).any()             # never its own neighbour
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(d, np.inf)
    ref_idx = np.argsort(d, 1, kind="stable")[:, :10]                       # brute force
    assert (idx == ref_idx).mean() > 0.999
    assert np.allclose(dist, np.sort(d, 1)[:, :10], atol=1e-4)
    x, _ = clusters(2000, k=5)                                              # 10,000: the IVF path
    idx, _ = knn(x, 10, exact=False)
    assert not (idx == np.arange(len(x))[:, None]).any()
    sample = np.arange(0, len(x), 50)
    d = np.linalg.norm(x[sample, None] - x[None], axis=2)                  # (200, N)
    truth = np.argsort(d, 1)[:, 1:11]                                     # without itself
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(idx[sample], truth)])
    assert recall > 0.9


def test_nearest_neighbours_match_a_full_sort_and_leave_the_point_out():
    rng = np.random.default_rng(3)
    latents = rng.normal(size=(5000, 16)).astype(np.float32)
    latents[17] = latents[4]                                     # a duplicate image: distance 0
    for i in (0, 4, 4999):
        near = nearest_neighbours(latents, i, 12)
        d = np.linalg.norm(latents - latents[i], axis=1)
        ref = [j for j in np.lexsort((np.arange(5000), d)) if j != i][:12]
        assert near.tolist() == ref
    assert nearest_neighbours(latents, 4, 12)[0] == 17
    few = latents[:3]                                            # k larger than N - 1
    assert nearest_neighbours(few, 0, 12).tolist() == sorted(
        [1, 2], key=lambda j: np.linalg.norm(few[j] - few[0]))
    assert len(nearest_neighbours(latents[:1], 0, 12)) == 0


def test_duplicates_are_neighbours_and_the_point_itself_is_not():
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    x[7] = x[3]                                                  # two identical rows
    idx, dist = knn(x, 4)
    assert idx[3, 0] == 7 and idx[7, 0] == 3 and dist[3, 0] == dist[7, 0] == 0
    assert not (idx == np.arange(50)[:, None]).any()
    idx2, _ = knn(x, 4, exact=False)                             # the index drops itself too
    assert idx2[3, 0] == 7 and not (idx2 == np.arange(50)[:, None]).any()


def test_knn_query_is_the_same_in_numpy_and_in_torch(monkeypatch):
    rng = np.random.default_rng(2)
    base, queries = rng.normal(size=(300, 8)), rng.normal(size=(40, 8))
    small_idx, small_dist = knn_query(queries, base, 5)                       # numpy path
    monkeypatch.setattr("ssl_core.neighbours._NUMPY_QUERY_CELLS", 0)
    big_idx, big_dist = knn_query(queries, base, 5)                           # torch path
    assert np.array_equal(small_idx, big_idx) and np.allclose(small_dist, big_dist, atol=1e-4)
    d = np.linalg.norm(queries[:, None] - base[None], axis=2)
    assert np.array_equal(small_idx, np.argsort(d, 1)[:, :5])
    assert knn_query(base[:3], base, 1)[0][:, 0].tolist() == [0, 1, 2]       # itself first
