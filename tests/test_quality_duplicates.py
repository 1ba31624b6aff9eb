"""Exact and near-duplicate detection (ssl_core/quality/duplicates.py, descriptor.py) on
small synthetic data: scikit-learn's 1,797 digits drawn 16x16 on a 28x28 canvas, with copies
appended."""
import json
from pathlib import Path

import numpy as np
import pytest

from ssl_core.quality import duplicates as dup
from ssl_core.quality.descriptor import affine, crop, jpeg, near_copy, pixel_descriptor
from ssl_core.quality.duplicates import DuplicateReport, exact_representatives, find_duplicates

DATA = Path("/work/shared/data")


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """(~1,600, 28, 28, 1) uint8: distinct digits on a dark background. The set has natural
    near-twins (two 1s 16 grey levels apart in all, consecutive 4s of one writer), which the
    detector rightly groups: images closer than 0.12 to another one are left out."""
    from PIL import Image
    from sklearn.datasets import load_digits

    out = np.zeros((1797, 28, 28, 1), np.uint8)
    for i, im in enumerate(load_digits().images):
        small = Image.fromarray((im * 255 / 16).astype(np.uint8)).resize((16, 16), Image.BILINEAR)
        out[i, 6:22, 6:22, 0] = np.asarray(small)
    d = pixel_descriptor(out)
    dist = np.sqrt(np.maximum(0, 2 - 2 * d @ d.T))                     # (N, N) unit rows
    np.fill_diagonal(dist, np.inf)
    keep = dist.min(1) >= 0.12
    assert keep.sum() > 1500
    return out[keep]


def test_near_copies_are_grouped_and_distinct_images_are_not(digits):
    n = len(digits)
    copies = [affine(digits[10], 1.0, 2, -1),              # shifted
              jpeg(digits[20], 70),                        # re-encoded
              affine(digits[30], 1.08),                    # rescaled
              crop(digits[40], 0.05, 0.5, 0.5),            # slightly cropped
              jpeg(affine(digits[50], 0.93, -2, 1), 80)]   # all at once
    report = find_duplicates(np.concatenate([digits, np.stack(copies)]))
    want = [(10, n), (20, n + 1), (30, n + 2), (40, n + 3), (50, n + 4)]
    assert sorted(g.ids for g in report.groups) == want    # nothing else is grouped
    assert not any(g.exact for g in report.groups)
    assert all(0 < g.max_distance <= report.threshold for g in report.groups)


def test_exact_copies_are_grouped_as_exact_largest_first(digits):
    n = len(digits)
    x = np.concatenate([digits, digits[[60, 61, 60]]])
    report = find_duplicates(x)
    assert [(g.ids, g.exact, g.max_distance) for g in report.groups] == [
        ((60, n, n + 2), True, 0.0), ((61, n + 1), True, 0.0)]


def test_exact_copies_are_merged_in_even_when_the_search_misses_them(digits, monkeypatch):
    import ssl_core.neighbours

    def blind(x, k, **kw):        # an index that finds no neighbour at all
        return np.full((len(x), k), -1, np.int64), np.full((len(x), k), np.inf, np.float32)

    monkeypatch.setattr(ssl_core.neighbours, "knn", blind)
    report = find_duplicates(np.concatenate([digits[:300], digits[[5, 5]], [jpeg(digits[7], 70)]]))
    assert [(g.ids, g.exact) for g in report.groups] == [((5, 300, 301), True)]


def test_a_mixed_group_is_not_exact(digits):
    n = len(digits)
    report = find_duplicates(np.concatenate([digits, digits[[70]], [jpeg(digits[70], 75)]]))
    assert [(g.ids, g.exact) for g in report.groups] == [((70, n, n + 1), False)]
    assert report.groups[0].max_distance > 0


class CountingImages:
    """An (N, H, W, C) memmap that records how many rows each read returns and refuses to be
    turned into one whole array."""

    def __init__(self, array):
        self.array, self.reads = array, []
        self.shape, self.dtype = array.shape, array.dtype

    def __len__(self):
        return len(self.array)

    def __getitem__(self, key):
        rows = self.array[key]
        self.reads.append(len(rows))
        return rows

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole image array was copied")


def test_a_memmap_is_read_in_batches_never_whole(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(dup, "BATCH", 256)
    path = tmp_path / "images.npy"
    np.save(path, np.concatenate([digits, digits[[3]]]))
    images = CountingImages(np.load(path, mmap_mode="r"))
    report = find_duplicates(images)
    assert [g.ids for g in report.groups] == [(3, len(digits))]
    assert max(images.reads) <= max(256, dup.CALIBRATION_SAMPLE) < len(images)
    assert sum(images.reads) <= 2 * len(images) + dup.CALIBRATION_SAMPLE  # hash + describe + cal


def test_a_precomputed_space_gives_the_same_groups(digits):
    x = np.concatenate([digits, [affine(digits[9], 1.05, 1, 0)], digits[[4]]])
    space = pixel_descriptor(x).astype(np.float16)         # stored like features: (N, D) fp16
    got = find_duplicates(x, space=space)
    assert [g.ids for g in got.groups] == [g.ids for g in find_duplicates(x).groups]
    assert len(got.groups) == 2


def test_calibration_says_what_the_threshold_means(digits):
    report = find_duplicates(digits, seed=3)
    cal = report.calibration
    assert cal["n"] == dup.CALIBRATION_SAMPLE and cal["threshold"] == report.threshold > 0
    assert cal["positive_quantiles"]["p98"] == pytest.approx(report.threshold)
    assert 0 < cal["ratio"] <= dup.MAX_RATIO
    assert cal["estimated_recall"] >= 0.95 and cal["estimated_false_link_rate"] <= 0.05
    assert cal["negative_quantiles"]["p50"] > cal["positive_quantiles"]["p95"]
    assert report.seconds > 0


def test_report_survives_a_json_round_trip(digits):
    report = find_duplicates(np.concatenate([digits[:400], digits[[1]], [jpeg(digits[2], 70)]]))
    back = DuplicateReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert back == report and len(back.groups) == 2


def test_tiny_collections():
    img = np.zeros((1, 12, 12, 3), np.uint8)
    img[0, 3:8, 4:6] = 200
    assert find_duplicates(img[:0]).groups == [] and find_duplicates(img).groups == []
    two = find_duplicates(np.concatenate([img, img]))
    assert [(g.ids, g.exact) for g in two.groups] == [((0, 1), True)]
    other = img.copy()
    other[0, 9:11, 1:11] = 255
    assert find_duplicates(np.concatenate([img, other, other])).groups[0].ids == (1, 2)


def test_exact_representatives_point_at_the_first_copy():
    x = np.zeros((5, 4, 4, 1), np.uint8)
    x[1, 0, 0] = x[3, 0, 0] = 1
    x[4, 1, 1] = 2
    assert exact_representatives(x, batch=2).tolist() == [0, 1, 0, 1, 4]


def test_descriptor_ignores_shift_scale_and_background_polarity(digits):
    d = pixel_descriptor(np.stack([digits[11], affine(digits[11], 1.0, 2, 2),
                                   affine(digits[11], 1.1), 255 - digits[11], digits[12]]))
    assert np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-5)
    dist = np.linalg.norm(d[1:] - d[0], axis=1)
    assert dist[0] < 1e-4 and dist[2] < 1e-4               # integer shift; light background
    assert dist[1] < 0.15 < dist[3]                        # rescaled copy vs another digit


def test_near_copy_is_a_small_change_of_the_same_shape(digits):
    rng = np.random.default_rng(0)
    copies = np.stack([near_copy(digits[i], rng) for i in range(50)])
    assert copies.shape == (50, 28, 28, 1) and copies.dtype == np.uint8
    assert (copies != digits[:50]).any(axis=(1, 2, 3)).mean() > 0.9
    colour = np.repeat(digits[:2], 3, axis=3)
    assert near_copy(colour[0], rng).shape == (28, 28, 3)


@pytest.mark.skipif(not (DATA / "MNIST").exists(), reason="MNIST under /work/shared/data")
def test_mnist_copies_are_found_among_real_digits():
    from benchmarks.quality_duplicates import make_copies
    from ssl_core.data.sources import SourceSpec, load_source

    mnist = load_source(SourceSpec("mnist", data_root=str(DATA), download=False)).images[:4000]
    copies, sources, _ = make_copies(mnist, np.random.default_rng(5), n_near=30, n_exact=10)
    report = find_duplicates(np.concatenate([mnist, copies]))
    group_of = {i: gi for gi, g in enumerate(report.groups) for i in g.ids}
    found = [group_of.get(4000 + c, -1) == group_of.get(int(s), -2) for c, s in enumerate(sources)]
    assert sum(found) >= 38
    assert sum(len(g.ids) for g in report.groups) <= 2 * 40 + 10    # few natural pairs


def test_wide_features_with_their_extractor(digits):
    """Photos: stored (N, D) features and the extractor that made them; above 256 dims the
    search runs in a PCA of them, the calibration copies projected the same way."""
    w = np.random.default_rng(0).normal(size=(784, 1024)).astype(np.float32) / 32

    def extractor(batch):                   # a stand-in feature extractor: (B, 1024) float32
        return pixel_descriptor(batch) @ w

    n = len(digits)
    x = np.concatenate([digits, [jpeg(digits[15], 70), affine(digits[16], 1.06, 1, 0)]])
    report = find_duplicates(x, describe=extractor, space=extractor(x).astype(np.float16))
    assert [g.ids for g in report.groups] == [(15, n), (16, n + 1)]
    assert report.calibration["estimated_recall"] >= 0.9


def test_a_space_where_copies_are_not_closer_than_neighbours_keeps_its_groups_honest():
    """scikit-learn's 8x8 digits as they are: a 2 px shift is a quarter of the image, so copies
    are about as far as different digits. The guard caps the linked negatives at 5% and says so;
    without it the copies' 98% quantile linked far more."""
    from sklearn.datasets import load_digits

    images = (load_digits().images * 16).clip(0, 255).astype(np.uint8)[..., None]   # (1797, 8, 8, 1)
    report = find_duplicates(images, seed=0)
    cal = report.calibration
    assert cal["precision_guard"] is True
    assert cal["estimated_false_link_rate"] <= dup.MAX_FALSE_LINK
    assert report.threshold < cal["positive_quantiles"]["p98"]
    linked_before = dup._precision_guard(0.5, 1e9, np.array([0.1] * 60 + [1.0] * 40), np.zeros(100))
    assert linked_before == (np.nextafter(0.1, -np.inf), True)    # 60% linked -> below them all
    assert dup._precision_guard(0.05, 1e9, np.array([0.1] * 100), np.zeros(100)) == (0.05, False)
    # 10% real duplicates among the negatives, the rest far: the threshold stays
    real = np.array([0.01] * 10 + [1.0] * 90)
    assert dup._precision_guard(0.5, 1e9, real, np.zeros(100)) == (0.5, False)
