"""Export images sorted into one folder per class, the layout torchvision's ImageFolder and
Keras' image_dataset_from_directory read:

    <class>/<id>_<image name>.png   labeled images, and/or unlabeled images whose prediction
                                     reaches a confidence threshold
    index.csv                        one row per file: path, id, name, source, class, origin
                                     ('label' or 'prediction'), confidence (ignored by both readers)

Class names are user text, so folder names are made path-safe (`safe_component`): no
separators, no '..', no control or format characters, no Windows-reserved names, at most 100
UTF-8 bytes; classes whose safe names collide (also ignoring case) get '-2', '-3', ... so
distinct classes stay distinct. Images are PNGs encoded one at a time from the stored pixels and
streamed into a zip in a temporary file that is renamed when complete: 70,000 MNIST images
never sit in memory at once. PNGs are stored, not deflated again (they are compressed already).
"""
from __future__ import annotations

import csv
import io
import time
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ssl_core.data.collection import ImageCollection
from ssl_core.export.tables import defuse
from ssl_core.labeling.classes import list_classes
from ssl_core.labeling.label_log import current_labels
from ssl_core.progress import Progress
from ssl_core.project.files import atomic_path
from ssl_core.project.folder import Project
from ssl_core.results.predictions import load_predictions

INDEX_NAME = "index.csv"
MAX_NAME_BYTES = 100
_FORBIDDEN = set('<>:"/\\|?*')
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
             *(f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789¹²³")}



def safe_component(text: str, fallback: str) -> str:
    """One path component made safe on Linux, macOS and Windows; `fallback` when nothing is left."""
    text = unicodedata.normalize("NFC", str(text))
    text = "".join("_" if c in _FORBIDDEN or unicodedata.category(c)[0] == "C" else c
                   for c in text)
    text = text.strip(" .")                                 # no '..', no hidden or trailing dots
    text = text.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(" .")
    if not text:
        return fallback
    if text.split(".")[0].rstrip(" ").upper() in _RESERVED:    # 'CON', 'con.txt', 'COM1 .x'
        text = "_" + text
    return text


def class_folders(names: dict[int, str], taken: tuple[str, ...] = (INDEX_NAME,)) -> dict[int, str]:
    """Class id -> folder name: path-safe and distinct (also ignoring case) in class id order."""
    used = {t.casefold() for t in taken}
    folders = {}
    for class_id in sorted(names):
        base = safe_component(names[class_id], fallback=f"class-{class_id}")
        folder, k = base, 2
        while folder.casefold() in used:
            folder, k = f"{base}-{k}", k + 1
        used.add(folder.casefold())
        folders[class_id] = folder
    return folders


@dataclass(frozen=True)
class Selection:
    """Which images go into the export, in image id order."""
    ids: np.ndarray          # (M,) image ids
    classes: np.ndarray      # (M,) class id of each
    predicted: np.ndarray    # (M,) bool: taken from the prediction (False: the user's label)
    confidence: np.ndarray   # (M,) the prediction's probability; 1.0 for labels

    @property
    def n_labeled(self) -> int:
        return int((~self.predicted).sum())

    @property
    def n_predicted(self) -> int:
        return int(self.predicted.sum())


def select_images(project: Project, include_labeled: bool = True, include_predicted: bool = False,
                  min_confidence: float = 0.9) -> Selection:
    """Labeled images with their label, and/or unlabeled images whose predicted class (a live
    class) has probability >= min_confidence. Cheap: the page counts with it as options change."""
    n = ImageCollection(project).n_images
    labels = current_labels(project.store, n)                         # (N,) class id or -1
    take_label = labels >= 0 if include_labeled else np.zeros(n, bool)
    classes, confidence = labels.copy(), np.ones(n, np.float64)
    take_pred = np.zeros(n, bool)
    pred = load_predictions(project, n) if include_predicted else None
    if pred is not None:
        live = np.array([c.id for c in list_classes(project.store)], np.int64)
        predicted, conf = pred.labels[:n], pred.confidence[:n]
        take_pred = (labels < 0) & (conf >= min_confidence) & np.isin(predicted, live)
        classes[take_pred], confidence[take_pred] = predicted[take_pred], conf[take_pred]
    ids = np.flatnonzero(take_label | take_pred)
    return Selection(ids, classes[ids], take_pred[ids], confidence[ids])


@dataclass(frozen=True)
class ImageFolderExport:
    path: Path
    n_images: int
    n_labeled: int
    n_predicted: int
    per_class: dict[str, int] = field(default_factory=dict)   # folder name -> images

    def summary(self) -> str:
        return (f"wrote {self.n_images:,} images ({self.n_labeled:,} labeled, "
                f"{self.n_predicted:,} predicted) in {len(self.per_class)} class folders "
                f"to {self.path}")


def png_bytes(pixels: np.ndarray) -> bytes:
    """(H, W, 1|3) uint8 -> PNG file contents."""
    pixels = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels       # (H, W) or (H, W, 3)
    image = Image.fromarray(np.ascontiguousarray(pixels))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def export_imagefolder(project: Project, out: str | Path, include_labeled: bool = True,
                       include_predicted: bool = False, min_confidence: float = 0.9,
                       progress: Progress | None = None) -> ImageFolderExport:
    """Write the ImageFolder zip to `out` (atomically); ValueError when nothing is selected."""
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError("min_confidence must lie in 0..1")
    selection = select_images(project, include_labeled, include_predicted, min_confidence)
    if len(selection.ids) == 0:
        raise ValueError(_nothing_selected(include_labeled, include_predicted, min_confidence))
    names = {c.id: c.name for c in list_classes(project.store, include_deleted=True)}
    folders = class_folders({int(c): names[int(c)] for c in np.unique(selection.classes)})
    store = ImageCollection(project)
    images, image_names, sources = store.images(), store.names(), store.sources()  # (N, H, W, C)
    width = len(str(max(len(images) - 1, 0)))
    stamp = time.localtime()[:6]
    counts: Counter[str] = Counter()
    index = io.StringIO()
    rows = csv.writer(index)
    rows.writerow(["path", "id", "name", "source", "class", "origin", "confidence"])
    out = Path(out)
    with atomic_path(out, "the ImageFolder zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for done, (i, c, predicted, conf) in enumerate(zip(selection.ids, selection.classes,
                                                           selection.predicted,
                                                           selection.confidence), 1):
            folder = folders[int(c)]
            stem = safe_component(image_names[i].rsplit("/", 1)[-1].rsplit(".", 1)[0], "image")
            path = f"{folder}/{i:0{width}d}_{stem}.png"
            info = zipfile.ZipInfo(path, stamp)
            info.external_attr = 0o644 << 16
            zf.writestr(info, png_bytes(images[i]))
            counts[folder] += 1
            rows.writerow([path, int(i), defuse(image_names[i]), defuse(sources[i]),
                           defuse(names[int(c)]), "prediction" if predicted else "label",
                           f"{conf:.6f}"])
            if progress is not None and (done % 1000 == 0 or done == len(selection.ids)):
                progress(done / len(selection.ids), f"{done:,} of {len(selection.ids):,} images")
        info = zipfile.ZipInfo(INDEX_NAME, stamp)
        info.external_attr = 0o644 << 16
        zf.writestr(info, index.getvalue().encode("utf-8"), zipfile.ZIP_DEFLATED)
    return ImageFolderExport(out, len(selection.ids), selection.n_labeled, selection.n_predicted,
                             dict(sorted(counts.items())))


def _nothing_selected(include_labeled: bool, include_predicted: bool, min_confidence: float) -> str:
    if not (include_labeled or include_predicted):
        return "nothing to export: include labeled and/or predicted images"
    reasons = ["no image is labeled"] if include_labeled else []
    if include_predicted:
        reasons.append(f"no unlabeled image is predicted with confidence >= {min_confidence:g} "
                       "(or there are no predictions yet)")
    return "nothing to export: " + " and ".join(reasons)
