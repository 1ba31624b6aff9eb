"""The ImageFolder zip export: safe_component and class_folders turn hostile class names into
one harmless, distinct folder name each, the zip's entries stay inside their folders and hold
the stored pixels losslessly with an index.csv, the options choose which labeled and predicted
images go in, an export with nothing to write leaves no file, and the zip is streamed to disk
while it is written. The other exports, their CLI commands and the Export page are in
test_export.py; the `trained` and `hostile` projects come from conftest.py."""
import io
import zipfile
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import pytest
from conftest import HOSTILE
from PIL import Image

from ssl_core.data.collection import ImageCollection
from ssl_core.export.imagefolder import (
    MAX_NAME_BYTES,
    class_folders,
    export_imagefolder,
    safe_component,
    select_images,
)
from ssl_core.labeling.label_log import current_labels
from ssl_core.results.predictions import load_predictions


@pytest.mark.parametrize("name", HOSTILE + ["", ".", " . ", "COM1", "lpt9.tar.gz", "AUX ",
                                            "é" * 200, "a\\b", "a:b*c?", "\n\t", "ok name"])
def test_safe_component_is_one_harmless_path_component(name):
    safe = safe_component(name, fallback="fallback")
    assert safe and safe not in (".", "..") and not safe.startswith(".")
    assert not set(safe) & set('<>:"/\\|?*') and all(c.isprintable() for c in safe)
    assert safe.split(".")[0].strip().upper() not in ("CON", "PRN", "AUX", "NUL", "COM1", "LPT9")
    assert len(safe.encode()) <= MAX_NAME_BYTES and safe == safe.strip(" .")
    assert safe_component("ok name", "x") == "ok name"


def test_class_folders_keep_distinct_classes_distinct():
    folders = class_folders({1: "a/b", 2: "a_b", 3: "A_B", 4: "", 5: "index.csv", 6: "..", 7: "b"})
    assert folders == {1: "a_b", 2: "a_b-2", 3: "A_B-3", 4: "class-4", 5: "index.csv-2",
                       6: "class-6", 7: "b"}


def test_imagefolder_zip_stays_inside_its_folders(hostile, tmp_path):
    result = export_imagefolder(hostile, tmp_path / "images.zip", include_labeled=True,
                                include_predicted=True, min_confidence=0.8)
    assert (result.n_images, result.n_labeled, result.n_predicted) == (7, 4, 3)  # image 7: 0.5
    with zipfile.ZipFile(tmp_path / "images.zip") as zf:
        entries = zf.namelist()
        index = pd.read_csv(io.BytesIO(zf.read("index.csv")), keep_default_na=False)
        pixels = {n: np.asarray(Image.open(io.BytesIO(zf.read(n))))
                  for n in entries if n != "index.csv"}
        zf.extractall(tmp_path / "out")
    folders = set()
    for entry in entries:
        parts = PurePosixPath(entry).parts
        assert "\\" not in entry and not entry.startswith("/") and ":" not in entry
        assert entry == "index.csv" or (len(parts) == 2 and parts[1].endswith(".png")), entry
        assert not {"", ".", ".."} & set(parts) and all(c.isprintable() for c in entry)
        if len(parts) == 2:
            folders.add(parts[0])
    assert len(folders) == 7 and len({f.casefold() for f in folders}) == 7
    assert folders == set(result.per_class)
    assert {"CON", "a/b", "../../etc", "<script>"}.isdisjoint(folders) and "_CON" in folders
    root = (tmp_path / "out").resolve()
    extracted = [p for p in root.rglob("*") if p.is_file()]
    assert len(extracted) == 8 and all(p.resolve().is_relative_to(root) for p in extracted)
    assert {p.parent.name for p in extracted if p.suffix == ".png"} == folders
    stored = ImageCollection(hostile).images()
    assert index["id"].tolist() == list(range(7))
    assert index["origin"].tolist() == ["label"] * 4 + ["prediction"] * 3
    assert index["class"].tolist() == ["../../etc", "a/b", "a_b", "'=SUM(A1)", "CON", "<script>",
                                       "x\x00\u202ey"]
    assert index["confidence"].tolist()[4:] == pytest.approx([0.9] * 3)
    for path, image_id in zip(index["path"], index["id"]):
        assert np.array_equal(pixels[path], stored[image_id])       # lossless, RGB kept


def test_imagefolder_options_choose_the_images(trained, tmp_path):
    labels = current_labels(trained.store)
    pred = load_predictions(trained)
    confident = (labels < 0) & (pred.confidence >= 0.6)
    assert 0 < confident.sum() < (labels < 0).sum()
    sel = select_images(trained, include_labeled=False, include_predicted=True, min_confidence=0.6)
    assert np.array_equal(sel.ids, np.flatnonzero(confident)) and sel.n_labeled == 0
    assert np.array_equal(sel.classes, pred.labels[confident])
    sel = select_images(trained, True, True, 0.6)
    assert sel.n_labeled == 15 and sel.n_predicted == confident.sum()
    calls = []
    result = export_imagefolder(trained, tmp_path / "l.zip",
                                progress=lambda fraction, message: calls.append((fraction, message)))
    assert result.n_images == 15 and calls[-1] == (1.0, "15 of 15 images")
    assert result.per_class == {"digit 0": 5, "digit 1": 5, "digit 2": 5}
    with zipfile.ZipFile(tmp_path / "l.zip") as zf:
        first = sorted(n for n in zf.namelist() if n.startswith("digit 0/"))[0]
    image_id = np.flatnonzero(labels == 1)[0]                      # digits/<id>, 4-digit ids
    assert first == f"digit 0/{image_id:04d}_{image_id}.png"


def test_imagefolder_with_nothing_selected_writes_nothing(trained, digits_project, tmp_path):
    out = tmp_path / "keep.zip"
    out.write_bytes(b"previous")
    with pytest.raises(ValueError, match="include labeled and/or predicted"):
        export_imagefolder(trained, out, include_labeled=False, include_predicted=False)
    with pytest.raises(ValueError, match="no image is labeled"):
        export_imagefolder(digits_project, out)
    with pytest.raises(ValueError, match="min_confidence"):
        export_imagefolder(trained, out, min_confidence=1.5)
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == [
        "keep.zip", "project"]


def test_imagefolder_streams_to_disk_while_it_writes(trained, tmp_path):
    """The zip grows on disk during the export: PNGs are not collected in memory first."""
    sizes = []

    def progress(fraction, message):
        done = round(fraction * 1797)
        sizes.append((done, sum(p.stat().st_size for p in tmp_path.glob(".all.zip.*.tmp"))))

    result = export_imagefolder(trained, tmp_path / "all.zip", include_labeled=True,
                                include_predicted=True, min_confidence=0.0, progress=progress)
    assert result.n_images == 1797 and [d for d, _ in sizes] == [1000, 1797]
    assert sizes[0][1] > 1000 * 60 and sizes[1][1] > sizes[0][1]     # >= 1000 PNGs on disk
    assert not list(tmp_path.glob("*.tmp"))
