"""The map of a colour project: a provisional map first, then a VAE of the pretrained features
laid out with UMAP; the Samples page's nearest-real-image view of a feature-space VAE."""
import json

import numpy as np
from test_photos import shapes, write_folder

from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.jobs.map_job import build_map
from ssl_core.labeling.classes import LabelClass
from ssl_core.latentmap.layout import layout_quality
from ssl_core.latentmap.map_files import load_map, vae_folder
from ssl_core.latentmap.provisional import provisional_map, small_pixels
from ssl_core.results.nearest_samples import draws_images, latent_path, vae_class_neighbours
from ssl_core.results.samples import load_project_vae

TINY = {"vae_budget_s": 20, "vae": {"epochs": 30, "min_steps": 0, "hidden": [32, 16],
                                    "latent_dim": 4}}


def test_small_pixels_are_block_means_read_in_batches():
    X = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)
    small = small_pixels(X, side=16)                                          # (2, 16*16*3)
    expected = X.reshape(2, 16, 2, 16, 2, 3).mean((2, 4)).reshape(2, -1) / 255.0
    assert small.shape == (2, 768) and np.allclose(small, expected)


def test_the_provisional_map_separates_what_pixels_separate():
    X, y = shapes(20)
    xy, latents = provisional_map(X)
    assert xy.shape == (60, 2) and latents.shape == (60, 16) and np.isfinite(xy).all()
    assert layout_quality(xy, y) > 0.8                     # colours split cleanly even in pixels


def test_a_colour_project_gets_a_provisional_map_then_a_map_of_its_features(project, tmp_path):
    X, y = shapes(15)
    import_source(project, SourceSpec("folder", path=str(write_folder(tmp_path / "imgs", X, y))))
    seen = []

    def progress(fraction, message):          # what the page could show at each step
        data = load_map(project)
        seen.append((message, None if data is None else data.meta.get("provisional")))

    meta = build_map(project, TINY, progress)
    first_vae = next(i for i, (m, _) in enumerate(seen) if m.startswith("training the VAE"))
    assert seen[first_vae][1] is True                      # the provisional map was there first
    assert meta["representation"] == "efficientnet-lite0" and meta["provisional"] is False
    data = load_map(project)
    assert data.latents.shape == (45, 4) and not data.meta["provisional"]
    assert (vae_folder(project) / "projection.pt").is_file()
    assert layout_quality(data.layout, y) > 0.8
    again = build_map(project, TINY)                        # a rebuild starts from what is there
    assert again["vae_warm_start"] and again["layout_warm_start"]
    assert json.loads(project.map_meta_path.read_text())["seconds"]["provisional"] < 1.0


def test_a_feature_vae_shows_the_nearest_real_images_per_class(project, tmp_path):
    X, y = shapes(10)
    import_source(project, SourceSpec("folder", path=str(write_folder(tmp_path / "imgs", X))))
    build_map(project, TINY)
    vae, latents = load_project_vae(project), load_map(project).latents
    assert not draws_images(vae)
    labels = np.full(len(X), -1)
    labels[[0, 1, 10, 11]] = [5, 5, 7, 7]
    classes = [LabelClass(5, "red", "#ff0000"), LabelClass(7, "blue", "#0000ff"),
               LabelClass(9, "green", "#00ff00")]
    rows = vae_class_neighbours(vae, latents, X, labels, classes, n=4, seed=0)
    assert [r.grid is None for r in rows] == [False, False, True]         # green has no labels
    red = rows[0].grid.tiles
    assert red.shape == (4, 32, 32, 3) and all(any(np.array_equal(t, x) for x in X) for t in red)
    path = latent_path(latents, X, 0, 29, steps=5)
    assert path.tiles.shape == (7, 32, 32, 3) and np.array_equal(path.tiles[0], X[0])


def test_the_samples_page_of_a_photo_project_shows_nearest_real_images(latentlab_home, tmp_path):
    """A photo project with its feature VAE (the map) and a feature-mode GAN run: the Samples
    page says what the models draw and shows real images for both, no error, no traceback."""
    from conftest import REPO
    from streamlit.testing.v1 import AppTest

    from ssl_core.data.collection import ImageCollection
    from ssl_core.features.store import features_key, load_features
    from ssl_core.labeling.classes import add_class
    from ssl_core.labeling.label_log import set_labels
    from ssl_core.models.graph_classifier import GraphConfig
    from ssl_core.models.ssl_gan import SSLGAN, GANConfig
    from ssl_core.project.folder import Project
    from ssl_core.results.runs import create_run, finish_run

    project = Project.named("photos")
    X, _ = shapes(10)
    import_source(project, SourceSpec("folder", path=str(write_folder(tmp_path / "imgs", X))))
    build_map(project, TINY)
    red, blue = add_class(project.store, "red"), add_class(project.store, "blue")
    set_labels(project.store, [0, 1, 2], red.id)
    set_labels(project.store, [10, 11, 12], blue.id)
    images = ImageCollection(project).images()
    feats = load_features(project, features_key("efficientnet-lite0", images.shape[1:]),
                          len(images))
    y = np.full(len(images), -1)
    y[[0, 1, 2]], y[[10, 11, 12]] = red.id, blue.id
    cfg = GANConfig(representation="efficientnet-lite0", max_steps=20, check_every=10, z_dim=8,
                    graph=GraphConfig(feature_components=16), feature_widths=(16, 16))
    gan = SSLGAN.from_config(cfg, 0).fit(images, y, features=feats)
    run_id = create_run(project.store, "gan", {}, 6)
    folder = gan.save(project.models_dir / f"run-{run_id}")
    finish_run(project.store, run_id, {"model": str(folder), "n_labels": 6})

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/samples.py").run()
    assert not at.exception, at.exception
    assert not at.error
    captions = " ".join(c for img in at.image for c in img.captions)
    assert "Nearest real images to" in captions                     # the GAN's vectors
    text = " ".join(c.value for c in at.caption)
    assert "cannot draw pictures" in text and "draws feature vectors" in text
