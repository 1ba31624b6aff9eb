"""Outlier ranking (ssl_core/quality/outliers.py) on small synthetic data: scikit-learn's
digits drawn on a 28x28 canvas, with a few foreign images mixed in."""
import json

import numpy as np
import pytest

from ssl_core.quality import outliers as out
from ssl_core.quality.outliers import OutlierReport, find_outliers, outlier_scores, outlier_space


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """(1797, 28, 28, 1) uint8 digits on a dark background."""
    from PIL import Image
    from sklearn.datasets import load_digits

    x = np.zeros((1797, 28, 28, 1), np.uint8)
    for i, im in enumerate(load_digits().images):
        small = Image.fromarray((im * 255 / 16).astype(np.uint8)).resize((16, 16), Image.BILINEAR)
        x[i, 6:22, 6:22, 0] = np.asarray(small)
    return x


@pytest.fixture(scope="module")
def mixed(digits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits with 5 noise images and 5 inverted digits inserted at random places -> images,
    the ids of the 10 foreign ones, the ids of the 5 noise images."""
    rng = np.random.default_rng(0)
    foreign = np.concatenate([rng.integers(0, 256, (5, 28, 28, 1), dtype=np.uint8),
                              255 - digits[100:105]])
    x = np.concatenate([digits, foreign])
    order = rng.permutation(len(x))
    return (x[order], np.flatnonzero(order >= len(digits)),
            np.flatnonzero((order >= len(digits)) & (order < len(digits) + 5)))


def test_foreign_images_rank_top(mixed):
    x, foreign, _ = mixed
    report = find_outliers(outlier_space(x), top=10)
    assert sorted(report.ids) == sorted(foreign.tolist())
    assert report.scores == sorted(report.scores, reverse=True)
    assert report.method == "residual"


def test_a_pca_fitted_on_everything_would_hide_them(mixed):
    """Why the residual is cross-fitted: fitted on all rows, the strong outliers each take a
    component and then reconstruct well (this is the failure the halves prevent)."""
    from sklearn.decomposition import PCA

    x, foreign, _ = mixed
    space = outlier_space(x)
    pca = PCA(out.RESIDUAL_DIMS, random_state=0, svd_solver="randomized").fit(space)
    naive = np.linalg.norm(space - pca.inverse_transform(pca.transform(space)), axis=1)
    assert len(set(np.argsort(-naive)[:10]) & set(foreign)) < 5
    assert set(np.argsort(-outlier_scores(space))[:10]) == set(foreign)


def test_mean_knn_distance_ranks_isolated_noise_first(mixed):
    x, _, noise = mixed
    space = outlier_space(x)
    scores = outlier_scores(space, k=5, method="knn")
    assert scores.shape == (len(x),) and scores.dtype == np.float32
    assert set(np.argsort(-scores)[:5]) == set(noise)
    # LOF-like: the 5 noise images are each other's neighbours and look ordinary to it
    relative = outlier_scores(space, k=5, method="relative")
    assert relative.shape == (len(x),) and np.all(relative > 0)
    with pytest.raises(ValueError):
        outlier_scores(space, method="isolation")


def test_pixel_space_is_read_in_batches(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(out, "BATCH", 300)
    path = tmp_path / "images.npy"
    np.save(path, digits)
    images = np.load(path, mmap_mode="r")
    reads = []

    class Counting:
        shape = images.shape

        def __len__(self):
            return len(images)

        def __getitem__(self, key):
            reads.append(len(images[key]))
            return images[key]

        def __array__(self, *args, **kwargs):
            raise AssertionError("the whole image array was copied")

    space = outlier_space(Counting())
    assert space.shape == (len(digits), 784) and space.dtype == np.float32
    assert max(reads) <= 300 and sum(reads) == len(digits)
    assert np.allclose(space[7], digits[7].reshape(-1) / 255.0)


def test_large_colour_images_are_averaged_down():
    x = np.random.default_rng(1).integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)
    space = outlier_space(x)
    assert space.shape[0] == 20 and space.shape[1] <= out.PIXEL_VALUES
    assert space.mean() == pytest.approx(x.mean() / 255, abs=0.01)


def test_features_are_normalised_and_projected():
    rng = np.random.default_rng(2)
    wide = rng.normal(size=(600, 1280)).astype(np.float16)
    assert outlier_space(None, wide).shape == (600, out.FEATURE_DIMS)
    narrow = outlier_space(None, rng.normal(size=(50, 64)) * 7)
    assert narrow.shape == (50, 64)
    assert np.allclose(np.linalg.norm(narrow, axis=1), 1, atol=1e-5)


def test_report_ranks_ties_by_id_and_round_trips(mixed):
    x, _, _ = mixed
    full = find_outliers(outlier_space(x), top=None)
    assert sorted(full.ids) == list(range(len(x)))
    same = find_outliers(np.zeros((6, 3), np.float32), top=4, method="knn")
    assert same.ids == [0, 1, 2, 3]
    back = OutlierReport.from_dict(json.loads(json.dumps(full.to_dict())))
    assert back == full


def test_tiny_spaces():
    assert find_outliers(np.zeros((0, 4), np.float32)).ids == []
    assert find_outliers(np.ones((1, 4), np.float32)).ids == [0]
    few = np.array([[0, 0], [0, 1], [1, 0], [9, 9]], np.float32)
    assert find_outliers(few, top=1).ids == [3]       # too few rows for a subspace: kNN
