"""Colour photos: pretrained features (stored once, extended after an import), the representation
each project and method uses, methods on features, the importer on mixed sizes and in bounded
memory, the provisional and the feature-space map. Synthetic colour images stand in for photos
(shapes of different colours): real photos are measured by the benchmarks, not here."""
import json
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from ssl_core import load_model, make_estimator
from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import common_size, import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.features.choice import default_representation, set_project_representation
from ssl_core.features.extractors import FeatureUnavailable, efficientnet_extractor, get_extractor
from ssl_core.features.store import features_path, project_features
from ssl_core.models.representation import feature_matrix


def shapes(n_per_class: int = 12, side: int = 32, seed: int = 0):
    """(N, side, side, 3) uint8 colour images of 3 classes (a red disc, a blue bar, a green
    square on a light background, each moved, resized and noised) and their classes (N,)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    images, labels = [], []
    for k, colour in enumerate(((200, 30, 30), (30, 40, 200), (30, 160, 40))):
        for _ in range(n_per_class):
            img = np.full((side, side, 3), 235, np.float32) + rng.normal(0, 8, (side, side, 3))
            cy, cx = rng.uniform(0.35, 0.65, 2) * side
            r = rng.uniform(0.2, 0.3) * side
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2 if k == 0 else
                    (abs(yy - cy) < r / 3) & (abs(xx - cx) < r) if k == 1 else
                    (abs(yy - cy) < r) & (abs(xx - cx) < r))
            img[mask] = np.array(colour) + rng.normal(0, 15, 3)
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(k)
    return np.stack(images), np.array(labels)


def few_labels(y: np.ndarray, per_class: int = 2) -> np.ndarray:
    out = np.full(len(y), -1)
    for c in np.unique(y):
        out[np.flatnonzero(y == c)[:per_class]] = c
    return out


def write_folder(root, images, labels=None, sizes=None):
    for i, img in enumerate(images):
        folder = root / (f"class{labels[i]}" if labels is not None else "")
        folder.mkdir(parents=True, exist_ok=True)
        pil = Image.fromarray(img)
        if sizes is not None:
            pil = pil.resize(sizes[i])
        pil.save(folder / f"{i:04d}.png")
    return root


def test_the_default_representation_follows_the_image_shape():
    assert default_representation((8, 8, 1)) == "pixels"             # digits
    assert default_representation((28, 28, 1)) == "pixels"           # MNIST
    assert default_representation((128, 128, 3)) == "efficientnet-lite0"   # photos
    assert default_representation((28, 28, 3)) == "efficientnet-lite0"
    assert default_representation((64, 64, 1)) == "efficientnet-lite0"


def test_onnx_and_eager_torch_give_the_same_features():
    X, _ = shapes(3)
    fast = efficientnet_extractor("lite0", 224).transform(X)                    # (9, 1280)
    slow = efficientnet_extractor("lite0", 224, backend="torch").transform(X)
    cos = (fast * slow).sum(1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(slow, axis=1)
    assert fast.shape == (9, 1280) and cos.min() > 0.9999


def test_features_are_computed_once_and_extended_after_an_import(project, tmp_path):
    X, y = shapes(6)
    import_source(project, SourceSpec("folder", path=str(write_folder(tmp_path / "a", X[:12]))))
    images = ImageCollection(project).images()
    rep, first = project_features(project, images)
    assert rep == "efficientnet-lite0" and first.shape == (12, 1280) and first.dtype == np.float16
    path = features_path(project, "efficientnet-lite0-224")
    stamp = path.stat().st_mtime_ns
    messages = []
    _, again = project_features(project, images, lambda f, m: messages.append(m))
    assert path.stat().st_mtime_ns == stamp and "already computed" in messages[-1]
    first = np.array(first)
    import_source(project, SourceSpec("folder", path=str(write_folder(tmp_path / "b", X[12:]))))
    images = ImageCollection(project).images()
    messages.clear()
    _, both = project_features(project, images, lambda f, m: messages.append(m))
    assert both.shape == (18, 1280) and np.array_equal(both[:12], first)   # old rows kept as they were
    assert "6 new" in messages[-1]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["rows"] == 18 and meta["extracted_rows"] == 6
    fresh = efficientnet_extractor("lite0", 224).transform(np.asarray(images[12:]))
    assert np.allclose(both[12:].astype(np.float32), fresh, atol=2e-2 * np.abs(fresh).max())


def test_a_project_can_choose_its_representation(project):
    set_project_representation(project.store, "pixels")
    assert project.store.get_meta("representation") == "pixels"
    with pytest.raises(ValueError, match="unknown representation"):
        set_project_representation(project.store, "resnet9000")
    assert project.store.get_meta("representation") == "pixels"


def test_the_default_method_on_colour_images_picks_the_pretrained_features_itself(tmp_path):
    X, y = shapes(12)
    model = make_estimator("default", random_state=0).fit(X, few_labels(y), time_budget_s=60)
    assert model.representation_ == "efficientnet-lite0" and model.head_ is not None
    unlabeled = few_labels(y) < 0
    assert (model.predict(X)[unlabeled] == y[unlabeled]).mean() > 0.9
    feats = feature_matrix("efficientnet-lite0", X)
    assert np.allclose(model.predict_proba(X), model.predict_proba(X, features=feats), atol=1e-4)
    loaded = load_model(model.save(tmp_path / "m"))
    assert loaded.representation_ == "efficientnet-lite0"
    assert np.allclose(loaded.predict_proba(X, features=feats), model.predict_proba(X, features=feats),
                       atol=1e-5)


def test_the_baseline_on_features_learns_from_the_labeled_images_only():
    X, y = shapes(12)
    feats = feature_matrix("efficientnet-lite0", X)
    labels = few_labels(y, 3)
    model = make_estimator("baseline", random_state=0).fit(X, labels, features=feats,
                                                          time_budget_s=30)
    keep = labels >= 0
    assert np.allclose(model.projection_.mean, feats[keep].astype(np.float32).mean(0),
                       atol=1e-4)                                    # labeled rows only
    assert model.projection_.components is None                               # no PCA of 9 rows
    assert (model.predict(X, features=feats)[~keep] == y[~keep]).mean() > 0.8


def test_wrong_features_are_a_clear_error():
    X, y = shapes(4)
    with pytest.raises(ValueError, match=r"features must be \(12, 1280\)"):
        make_estimator("graph").fit(X, few_labels(y), features=np.zeros((12, 7), np.float32))


def test_a_torchvision_backbone_offline_says_what_to_do(monkeypatch):
    import urllib.error

    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(FeatureUnavailable, match=r"not in the torch cache .* resnet18-.*\.pth there"):
        get_extractor("torchvision:resnet18", (32, 32, 3))


def test_mixed_sizes_are_stored_as_a_square_of_their_median_side():
    assert common_size([(28, 28)] * 9 + [(30, 20)], 128) == (28, 28)          # one size wins
    photos = [(150, 200), (46, 50), (46, 50), (300, 400), (120, 90), (600, 800), (180, 150)]
    assert common_size(photos, 128) == (128, 128)                            # median side 180
    assert common_size([(40, 30), (50, 50), (60, 20)], 128) == (50, 50)


def test_import_decodes_straight_into_the_file(project, tmp_path):
    """Decoded images are never all in memory at once: the import's traced peak stays far
    below the pixels it writes (1,200 images of 64x64x3 = 14.7 MB)."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (1200, 64, 64, 3), dtype=np.uint8)
    folder = write_folder(tmp_path / "many", X)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    tracemalloc.start()
    report = import_source(project, SourceSpec("folder", path=str(folder)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.imported == 1200 and len(report.skipped) == 1
    stored = ImageCollection(project).images()
    order = np.argsort(ImageCollection(project).names())
    assert np.array_equal(stored[order], X)                 # every row where it belongs
    assert peak < 0.5 * X.nbytes, peak
