"""Sample grids (ssl_core.results.samples): GAN samples overall and per class, VAE samples per class
from the current labels, reconstructions, interpolation; typed errors when a model is missing;
greyscale and RGB; the same pictures for the same seed."""
import io
import json

import numpy as np
import pytest
from PIL import Image
from test_baseline import blobs

from ssl_core.labeling.classes import LabelClass
from ssl_core.models.ssl_gan import SSLGAN, GANConfig
from ssl_core.models.vae import VAE, VAEConfig
from ssl_core.results import samples
from ssl_core.results.runs import create_run, finish_run

TINY_VAE = VAEConfig(hidden=(32, 16), latent_dim=4, epochs=100, batch_size=32, lr=1e-2,
                    min_steps=0)  # 300 steps
TINY_GAN = GANConfig(pseudo_labels=False, max_steps=40, check_every=20)
CLASSES = [LabelClass(5, "five", "#0072B2"), LabelClass(15, "fifteen", "#E69F00"),
           LabelClass(25, "twenty-five", "#009E73")]


@pytest.fixture(scope="module")
def data():
    """blobs: 3 classes (5, 15, 25) of 12x12 greyscale images, a bright square per class."""
    return blobs(30)


@pytest.fixture(scope="module")
def vae(data):
    return VAE.from_config(TINY_VAE, random_state=0).fit(data[0])


@pytest.fixture(scope="module")
def gan(data):
    X, y = data
    few = np.where(np.arange(len(y)) % 10 == 0, y, -1)
    return SSLGAN.from_config(TINY_GAN, random_state=0).fit(X, few)


def save_run(project, model, method="gan"):
    """A finished run whose model is saved where the train job saves it."""
    run_id = create_run(project.store, method, {}, 9)
    folder = model.save(project.models_dir / f"run-{run_id}")
    finish_run(project.store, run_id, {"model": str(folder), "n_labels": 9})
    return run_id


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_grid_upscales_tiny_greyscale_with_nearest_neighbour_and_keeps_rgb():
    rng = np.random.default_rng(0)
    digits = samples.Grid(rng.integers(0, 256, (5, 8, 8, 1), dtype=np.uint8), cols=3)
    sheet = decode_png(digits.png())
    assert sheet.ndim == 2                                        # greyscale PNG
    assert sheet.shape == digits.image().shape[:2] == (2 * 58 + 2, 3 * 58 + 2)  # 8 px -> 56, 2 px gaps
    tile = sheet[2:58, 2:58]
    assert np.array_equal(tile, digits.tiles[0, :, :, 0].repeat(7, 0).repeat(7, 1))  # blocks, no blur
    photos = samples.Grid(rng.integers(0, 256, (4, 40, 30, 3), dtype=np.uint8), cols=4)
    sheet = decode_png(photos.png())
    assert sheet.shape == (40 + 4, 4 * 32 + 2, 3)                 # big enough: not upscaled
    assert np.array_equal(sheet[2:42, 2:32], photos.tiles[0])
    apart = samples.Grid(photos.tiles, cols=4, gap_after=(0,))   # a wider gap after column 0
    sheet = apart.image()
    assert sheet.shape == (44, 4 * 32 + 2 + 10, 3)
    assert (sheet[:, 32:44] == samples.BLANK).all()
    assert np.array_equal(sheet[2:42, 44:74], photos.tiles[1])


def test_missing_models_raise_typed_errors_that_say_what_to_do(project, data, vae):
    with pytest.raises(samples.NoVAEYet, match="build the map on the Map page"):
        samples.load_project_vae(project)
    with pytest.raises(samples.NoGANYet, match="train the gan method on the Train page"):
        samples.load_gan(project)
    create_run(project.store, "gan", {}, 9)                       # still running: no model yet
    save_run(project, vae, method="graph")                        # another method's run
    with pytest.raises(samples.NoGANYet, match="Train page"):
        samples.load_gan(project)
    assert samples.gan_runs(project.store) == []
    folder = project.models_dir / "vae"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"method": "vae-embedding"}))
    (folder / "weights.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(samples.NoVAEYet, match="Rebuild the map"):
        samples.load_project_vae(project)
    vae.save(folder)                                              # weights that do not fit
    meta = json.loads((folder / "config.json").read_text())       # the config
    meta["config"]["hidden"] = [8, 8]
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(samples.NoVAEYet, match="Rebuild the map"):
        samples.load_project_vae(project)
    assert issubclass(samples.NoVAEYet, samples.SamplesUnavailable)


def test_a_vae_for_other_images_asks_for_a_new_map(digits_project, vae):
    vae.save(digits_project.models_dir / "vae")                   # 12x12 VAE, 8x8 images
    with pytest.raises(samples.NoVAEYet, match="12×12×1 images .* 8×8×1: rebuild the map"):
        samples.load_project_vae(digits_project)


def test_project_vae_loads(project, vae, data):
    vae.save(project.models_dir / "vae")
    loaded = samples.load_project_vae(project)
    assert np.array_equal(loaded.transform(data[0][:5]), vae.transform(data[0][:5]))


def test_vae_samples_per_class_come_from_the_labeled_images_region(data, vae):
    X, y = data
    labels = np.where((np.arange(len(y)) % 5 == 0) & (y != 15), y, -1)   # no labels of 15
    labels[np.flatnonzero(y == 5)[1]] = 5
    rows = samples.vae_class_samples(vae, X, labels, CLASSES, n=6, seed=3)
    assert [r.class_id for r in rows] == [5, 15, 25]
    assert [r.name for r in rows] == ["five", "fifteen", "twenty-five"]
    five, fifteen, twenty_five = rows
    assert fifteen.grid is None and fifteen.note == "no labeled images yet"
    assert twenty_five.grid.tiles.shape == (6, 12, 12, 1) and twenty_five.grid.cols == 6
    assert "labeled images" in twenty_five.note
    corner = twenty_five.grid.tiles[:, 7:11, 4:8].mean()          # class 25's bright square
    assert corner > twenty_five.grid.tiles[:, 1:5, 1:5].mean() + 50
    assert five.grid.tiles[:, 1:5, 1:5].mean() > five.grid.tiles[:, 7:11, 4:8].mean() + 50
    again = samples.vae_class_samples(vae, X, labels, CLASSES, n=6, seed=3)
    assert np.array_equal(again[2].grid.tiles, twenty_five.grid.tiles)      # same seed, same
    other = samples.vae_class_samples(vae, X, labels, CLASSES, n=6, seed=4)
    assert not np.array_equal(other[2].grid.tiles, twenty_five.grid.tiles)
    nothing = samples.vae_class_samples(vae, X, np.full(len(y), -1), CLASSES)
    assert all(r.grid is None for r in nothing)


def test_one_label_is_sampled_with_a_note(data, vae):
    X, y = data
    labels = np.full(len(y), -1)
    labels[0] = 5
    (row,) = samples.vae_class_samples(vae, X, labels, CLASSES[:1], n=4)
    assert row.grid.tiles.shape == (4, 12, 12, 1) and "only 1 labeled image" in row.note


def test_reconstructions_sit_under_their_originals(data, vae):
    X, _ = data
    ids = samples.random_ids(len(X), 14, seed=1)
    grid = samples.reconstructions(vae, X, ids, cols=12)
    assert grid.cols == 12 and grid.tiles.shape == (48, 12, 12, 1)  # 12 + 12, then 2 (+10 blank) x 2
    assert np.array_equal(grid.tiles[:12], X[ids[:12]])
    assert np.array_equal(grid.tiles[12:24], vae.reconstruct(X[ids[:12]]))
    assert np.array_equal(grid.tiles[24:26], X[ids[12:]])
    assert (grid.tiles[26:36] == samples.BLANK).all()
    assert np.array_equal(grid.tiles[36:38], vae.reconstruct(X[ids[12:]]))
    few = samples.reconstructions(vae, X, [3, 4], cols=12)
    assert few.cols == 2 and few.tiles.shape == (4, 12, 12, 1)
    with pytest.raises(ValueError, match="no image 999"):
        samples.reconstructions(vae, X, [1, 999])


def test_interpolation_runs_from_one_image_to_the_other(data, vae):
    X, y = data
    a, b = int(np.flatnonzero(y == 5)[0]), int(np.flatnonzero(y == 25)[0])
    grid = samples.interpolation(vae, X, a, b, steps=7)
    assert grid.cols == 9 and grid.tiles.shape == (9, 12, 12, 1)
    assert np.array_equal(grid.tiles[0], X[a]) and np.array_equal(grid.tiles[-1], X[b])
    rec_a, rec_b = vae.reconstruct(X[[a, b]]).astype(int)
    first, last = grid.tiles[1].astype(int), grid.tiles[-2].astype(int)
    assert np.abs(first - rec_a).max() <= 1 and np.abs(last - rec_b).max() <= 1
    assert np.abs(first - rec_a).mean() < np.abs(first - rec_b).mean()
    middle = grid.tiles[4].astype(int)
    assert np.abs(middle - rec_a).mean() > np.abs(first - rec_a).mean()   # it moves away from a
    assert np.array_equal(samples.interpolation(vae, X, a, b, steps=7).tiles, grid.tiles)


def test_gan_samples_from_the_newest_run_or_a_chosen_one(project, gan):
    older = save_run(project, gan)
    newest = save_run(project, gan)
    run, model = samples.load_gan(project)
    assert run.id == newest and [r.id for r in samples.gan_runs(project.store)] == [newest, older]
    assert samples.load_gan(project, older)[0].id == older
    with pytest.raises(samples.NoGANYet, match="not a finished gan run"):
        samples.load_gan(project, 999)
    grid = samples.generated(model, 20, seed=2)
    assert grid.tiles.shape == (20, 12, 12, 1) and grid.cols == 12
    assert np.array_equal(samples.generated(model, 20, seed=2).tiles, grid.tiles)
    assert not np.array_equal(samples.generated(model, 20, seed=3).tiles, grid.tiles)
    assert np.array_equal(grid.tiles, gan.sample(20, seed=2))     # the saved generator


def test_gan_samples_per_class_name_the_classes_and_skip_new_ones(gan):
    assert samples.samples_per_class(gan)
    live = [CLASSES[0], CLASSES[2], LabelClass(40, "new", "#000000")]   # 15 deleted since
    rows = samples.gan_class_samples(gan, live, n=5, seed=1)
    assert [(r.class_id, r.name) for r in rows] == [(5, "five"), (15, "class 15"),
                                                   (25, "twenty-five"), (40, "new")]
    assert "deleted" in rows[1].note and rows[1].grid is not None
    assert rows[3].grid is None and "train again" in rows[3].note
    for row in rows[:3]:
        assert row.grid.tiles.shape == (5, 12, 12, 1)
        assert np.array_equal(row.grid.tiles, gan.sample(5, label=row.class_id, seed=1))


def test_a_moved_project_still_finds_its_gan(project, gan):
    run_id = create_run(project.store, "gan", {}, 9)
    folder = gan.save(project.models_dir / f"run-{run_id}")
    finish_run(project.store, run_id, {"model": f"/somewhere/else/models/{folder.name}"})
    assert samples.load_gan(project)[0].id == run_id
    (folder / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(samples.NoGANYet, match="cannot be read"):
        samples.load_gan(project)


def test_rgb_images_of_any_size():
    rng = np.random.default_rng(0)
    X = np.zeros((40, 10, 14, 3), np.uint8)
    X[:20, :, :, 0] = 220                                         # red images and blue images
    X[20:, :, :, 2] = 220
    X = np.clip(X + rng.integers(0, 30, X.shape), 0, 255).astype(np.uint8)
    # colour images train the conv VAE (conv_nets.py), which needs a few hundred steps
    vae = VAE.from_config(VAEConfig(latent_dim=2, batch_size=20, lr=3e-3, min_steps=400,
                                    conv_width=(8, 16)), random_state=0).fit(X)
    assert vae.kind_ == "conv"
    assert samples.reconstructions(vae, X, [0, 39]).tiles.shape == (4, 10, 14, 3)
    strip = samples.interpolation(vae, X, 0, 39, steps=4)
    assert strip.tiles.shape == (6, 10, 14, 3)
    labels = np.repeat([1, 2], 20)
    rows = samples.vae_class_samples(vae, X, labels, [LabelClass(1, "red", "#ff0000"),
                                                      LabelClass(2, "blue", "#0000ff")], n=3)
    red, blue = (r.grid.tiles.astype(int) for r in rows)
    assert red[..., 0].mean() > red[..., 2].mean() and blue[..., 2].mean() > blue[..., 0].mean()
    sheet = decode_png(strip.png())
    tile_w = 14 * 5 + 2                                           # 10 px tall: upscaled 5x
    assert sheet.shape == (10 * 5 + 4, 6 * tile_w + 2 + 2 * (tile_w // 3), 3)  # ends set apart


def test_picking_images():
    assert samples.parse_ids(" 3, 17 42,", 50).tolist() == [3, 17, 42]
    with pytest.raises(ValueError, match="'x' is not an image id"):
        samples.parse_ids("3, x", 50)
    with pytest.raises(ValueError, match="from 0 to 49; no image 50"):
        samples.parse_ids("50", 50)
    with pytest.raises(ValueError, match="no image ids"):
        samples.parse_ids(" , ", 50)
    ids = samples.random_ids(100, 12, seed=4)
    assert len(set(ids.tolist())) == 12 and ids.tolist() == sorted(ids.tolist())
    assert np.array_equal(ids, samples.random_ids(100, 12, seed=4))
    assert len(samples.random_ids(5, 12)) == 5
    labels = np.full(100, -1)
    labels[[10, 11]], labels[[70, 71]] = 3, 8
    for seed in range(5):
        a, b = samples.default_pair(labels, seed)
        assert {labels[a], labels[b]} == {3, 8}                   # two different classes
    a, b = samples.default_pair(np.full(100, -1))
    assert a != b and 0 <= a < 100 and 0 <= b < 100
    assert samples.default_pair(np.full(1, -1)) == (0, 0)
