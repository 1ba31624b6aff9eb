"""Sample grids: what the generative models have learned, as pictures (the Samples page).

- GAN samples from a finished `gan` run, overall and per class (for a class, the generator's
  draws the discriminator finds most likely to be that class: `SSLGAN.sample`);
- VAE samples per class from the project's VAE (the map job's), drawn from each class's latent
  Gaussian fitted to the current labels (`VAE.set_class_regions`);
- reconstructions: images above their VAE reconstructions;
- interpolation: the decoded straight line between two images' latent means.

Everything returns a `Grid` (tiles in reading order + a column count; `.image()` tiles them,
upscaling tiny images such as 8x8 digits with nearest neighbour; `.png()`), the same for the
same seed. When a model does not exist yet the loaders raise `SamplesUnavailable` (`NoVAEYet`,
`NoGANYet`), whose message tells the user what to do. torch is imported only when a model is
loaded, so importing this module is cheap.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssl_core.data.collection import ImageCollection
from ssl_core.data.thumbnails import contact_sheet, to_png
from ssl_core.labeling.classes import LabelClass
from ssl_core.project.folder import Project
from ssl_core.project.store import Store
from ssl_core.results.runs import Run, list_runs

if TYPE_CHECKING:
    from ssl_core.models.base import SSLEstimator
    from ssl_core.models.vae import VAE

GAN_METHOD = "gan"
BLANK = 255              # padding tiles: the contact sheet's background, so they disappear
# what loading a damaged or mismatched model folder raises (ModelFileError is a ValueError;
# a state_dict that does not fit its config raises RuntimeError or KeyError)
LOAD_ERRORS = (ValueError, OSError, KeyError, RuntimeError)


class SamplesUnavailable(LookupError):
    """A grid cannot be made yet; str(err) tells the user what to do about it."""


class NoVAEYet(SamplesUnavailable):
    """The project has no usable VAE (the map job trains it)."""


class NoGANYet(SamplesUnavailable):
    """The project has no finished gan run with a readable model."""


@dataclass(frozen=True)
class Grid:
    tiles: np.ndarray    # (n, H, W, C) uint8, in reading order
    cols: int            # tiles per row
    gap_after: tuple[int, ...] = ()   # columns followed by a wider gap (sets ends apart)

    def __repr__(self) -> str:
        return f"Grid({len(self.tiles)} tiles of {_size(self.tiles.shape[1:])}, {self.cols} per row)"

    def image(self, scale: int | None = None, pad: int = 2) -> np.ndarray:
        """One (rows*h, cols*w, C) uint8 picture; tiny tiles upscaled (nearest neighbour)."""
        sheet = contact_sheet(self.tiles, cols=self.cols, pad=pad, scale=scale)
        if not self.gap_after:
            return sheet
        tile_w = (sheet.shape[1] - pad) // self.cols                   # tile width + pad
        cuts = [pad + (q + 1) * tile_w for q in sorted(self.gap_after)]
        gap = np.full((sheet.shape[0], max(tile_w // 3, pad), sheet.shape[2]), BLANK, np.uint8)
        parts = np.split(sheet, cuts, axis=1)
        return np.concatenate([p for part in parts[:-1] for p in (part, gap)] + [parts[-1]], axis=1)

    def png(self, scale: int | None = None) -> bytes:
        return to_png(self.image(scale))


@dataclass(frozen=True)
class ClassGrid:
    class_id: int
    name: str            # user text: escape it before putting it into markdown
    grid: Grid | None    # None: no samples for this class, `note` says why
    note: str = ""


# -- models --------------------------------------------------------------------------------
def load_project_vae(project: Project) -> "VAE":
    """The VAE the map job trained on all of the project's images."""
    from ssl_core.models.vae import VAE

    folder = project.models_dir / "vae"
    if not (folder / "config.json").is_file():
        raise NoVAEYet("No VAE yet: build the map on the Map page (it trains a VAE on all images, "
                       "no labels needed), then come back for its samples.")
    try:
        vae = VAE.load(folder)
    except LOAD_ERRORS as err:
        raise NoVAEYet(f"The project's VAE cannot be read ({err}). Rebuild the map on the Map "
                       "page.") from err
    shape = ImageCollection(project).shape
    pixels = getattr(vae, "draws_images", True)
    if pixels and shape is not None and tuple(vae.input_shape_) != tuple(shape):
        raise NoVAEYet(f"The VAE was trained on {_size(vae.input_shape_)} images but the project's "
                       f"images are {_size(shape)}: rebuild the map on the Map page.")
    return vae


def map_latents(project: Project, vae) -> np.ndarray:
    """The map's latents (N, z) of every image, which a feature-space VAE's draws are compared
    with; NoVAEYet when the map is missing, provisional or older than the latest import."""
    from ssl_core.latentmap.map_files import load_map

    data = load_map(project)
    if data is None or data.meta.get("provisional") or data.latents.shape[1] != vae.latent_dim:
        raise NoVAEYet("The map is being built (or is older than the latest import): its latents "
                       "are what the VAE's samples are shown with. Come back when the Map page "
                       "shows the VAE's map.")
    return data.latents


def feature_space(project: Project, model, images: np.ndarray) -> np.ndarray:
    """A feature-space model's view (N, d) of every image of the project, from its stored
    features (computed by the map or train job)."""
    from ssl_core.features.store import features_key, load_features

    key = features_key(model.representation_, tuple(images.shape[1:]))
    feats = load_features(project, key, len(images))
    if feats is None:
        raise NoGANYet(f"The images' {model.representation_} features are not computed yet: "
                       "build the map or train again.")
    return model.graph_space(images, feats)


def gan_runs(store: Store) -> list[Run]:
    """Finished runs of the gan method that saved a model, newest first."""
    return [r for r in list_runs(store) if r.method == GAN_METHOD and r.summary
            and r.summary.get("model")]


def load_gan(project: Project, run_id: int | None = None) -> tuple[Run, "SSLEstimator"]:
    """(run, model) of the newest finished gan run, or of run `run_id`."""
    from ssl_core.models.registry import load_model

    runs = gan_runs(project.store)
    if not runs:
        raise NoGANYet("No GAN yet: train the gan method on the Train page to see its samples.")
    run = runs[0] if run_id is None else next((r for r in runs if r.id == run_id), None)
    if run is None:
        raise NoGANYet(f"Run {run_id} is not a finished gan run: pick another, or train the gan "
                       "method on the Train page.")
    try:
        model = load_model(_model_folder(project, run))
    except LOAD_ERRORS as err:
        raise NoGANYet(f"The model of run {run.id} cannot be read ({err}). Train the gan method "
                       "again on the Train page.") from err
    if not hasattr(model, "sample"):
        raise NoGANYet(f"Run {run.id} holds a {model.method!r} model, which cannot generate "
                       "images. Train the gan method on the Train page.")
    return run, model


def _model_folder(project: Project, run: Run) -> Path:
    """Where the run saved its model; after the project folder was moved, its place in this one."""
    saved = Path(run.summary["model"])
    return saved if saved.is_dir() else project.models_dir / saved.name


def samples_per_class(model) -> bool:
    """Whether the model's `sample` takes a class label."""
    return hasattr(model, "sample") and "label" in inspect.signature(model.sample).parameters


# -- grids ---------------------------------------------------------------------------------
def generated(model, n: int = 48, seed: int = 0, cols: int = 12) -> Grid:
    """n samples of a generative model (SSLGAN, VAE, VAEMethod), not conditioned on a class."""
    return Grid(model.sample(n, seed=seed), min(cols, max(n, 1)))


def gan_class_samples(model, classes: list[LabelClass], n: int = 8,
                      seed: int = 0) -> list[ClassGrid]:
    """One row of n samples per class the model was trained on (`model.classes_`, named from
    `classes`: the project's live classes), then the live classes it does not know, skipped."""
    by_id = {c.id: c for c in classes}
    rows = []
    for cid in (int(c) for c in model.classes_):
        name = by_id[cid].name if cid in by_id else f"class {cid}"
        note = "" if cid in by_id else "deleted or merged since this run"
        rows.append(ClassGrid(cid, name, Grid(model.sample(n, label=cid, seed=seed), n), note))
    known = {int(c) for c in model.classes_}
    rows += [ClassGrid(c.id, c.name, None, "not in this run (it had no labels then): train again")
             for c in classes if c.id not in known]
    return rows


def vae_class_samples(vae: "VAE", images: np.ndarray, labels: np.ndarray,
                      classes: list[LabelClass], n: int = 8, seed: int = 0) -> list[ClassGrid]:
    """One row of n samples per class, from the class's latent Gaussian fitted to its labeled
    images (sets the VAE's class regions to the current labels). Classes without labels are
    skipped with a note. images (N, H, W, C) uint8, labels (N,) class id or -1."""
    labels = np.asarray(labels)
    labeled = np.flatnonzero(labels >= 0)
    counts = {c.id: int((labels == c.id).sum()) for c in classes}
    if len(labeled):
        vae.set_class_regions(vae.transform(np.asarray(images[labeled])), labels[labeled])
    rows = []
    for c in classes:
        if counts[c.id] == 0:
            rows.append(ClassGrid(c.id, c.name, None, "no labeled images yet"))
            continue
        note = ("only 1 labeled image: samples spread widely around it" if counts[c.id] == 1
                else f"from {counts[c.id]:,} labeled images")
        rows.append(ClassGrid(c.id, c.name, Grid(vae.sample(n, label=c.id, seed=seed), n), note))
    return rows


def reconstructions(vae: "VAE", images: np.ndarray, ids, cols: int = 12) -> Grid:
    """Images over their reconstructions: rows alternate between up to `cols` originals and
    the same images reconstructed, so each reconstruction sits under its original."""
    ids = check_ids(ids, len(images))
    originals = np.asarray(images[ids])                                # (k, H, W, C)
    rebuilt = vae.reconstruct(originals)                               # (k, H, W, C)
    cols = min(cols, len(ids))
    blank = np.full((cols, *originals.shape[1:]), BLANK, np.uint8)
    tiles = []
    for s in range(0, len(ids), cols):
        pad = blank[:cols - len(originals[s:s + cols])]
        tiles += [originals[s:s + cols], pad, rebuilt[s:s + cols], pad]
    return Grid(np.concatenate(tiles), cols)


def interpolation(vae: "VAE", images: np.ndarray, a: int, b: int, steps: int = 10) -> Grid:
    """One row: image a, `steps` images decoded along the line from a's latent mean to b's
    (the first and last are a's and b's reconstructions), image b."""
    a, b = check_ids([a, b], len(images))
    frames = vae.interpolate(np.asarray(images[a]), np.asarray(images[b]), steps)  # (steps, H, W, C)
    ends = np.asarray(images[[a, b]])
    return Grid(np.concatenate([ends[:1], frames, ends[1:]]), steps + 2, gap_after=(0, steps))


# -- picking images ------------------------------------------------------------------------
def check_ids(ids, n_images: int) -> np.ndarray:
    """ids as an int64 array; ValueError (a message for the user) when empty or out of range."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) == 0:
        raise ValueError("no image ids given")
    bad = ids[(ids < 0) | (ids >= n_images)]
    if len(bad):
        raise ValueError(f"image ids run from 0 to {n_images - 1}; no image {int(bad[0])}")
    return ids


def parse_ids(text: str, n_images: int) -> np.ndarray:
    """'3, 17 42' -> array([3, 17, 42]); ValueError with a message for the user when bad."""
    tokens = text.replace(",", " ").split()
    if not all(t.isdigit() for t in tokens):
        bad = next(t for t in tokens if not t.isdigit())
        raise ValueError(f"{bad!r} is not an image id: write ids as numbers, e.g. 3, 17, 42")
    return check_ids([int(t) for t in tokens], n_images)


def random_ids(n_images: int, k: int, seed: int = 0) -> np.ndarray:
    """k distinct image ids (fewer when there are fewer images), in increasing order."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_images, size=min(k, n_images), replace=False)).astype(np.int64)


def default_pair(labels: np.ndarray, seed: int = 0) -> tuple[int, int]:
    """Two images to interpolate between: of two different labeled classes when at least two
    classes have labels, otherwise two random images (the same one when there is only one)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    present = np.unique(labels[labels >= 0])
    if len(present) >= 2:
        ca, cb = rng.choice(present, size=2, replace=False)
        return (int(rng.choice(np.flatnonzero(labels == ca))),
                int(rng.choice(np.flatnonzero(labels == cb))))
    if len(labels) < 2:
        return 0, 0
    a, b = rng.choice(len(labels), size=2, replace=False)
    return int(a), int(b)


def _size(shape) -> str:
    h, w, c = shape
    return f"{h}×{w}×{c}"
