"""The importer end to end: sources -> one uint8 array in the project + an import report.

Everything goes through import_source(project, SourceSpec(...), ImportConfig(...)) and is read
back through ImageCollection, the way the app and the worker use them. The import job, the persisted
report and the failure paths (no image, a killed import, random files) are in test_import_job.py."""
from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import ImportConfig, import_source
from ssl_core.data.sources import SourceSpec, load_digits
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project


# ------------------------------------------------------------------------------ helpers
def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def solid(color, size=(32, 32), mode="RGB") -> Image.Image:
    """A one-colour image; size is PIL's (width, height)."""
    return Image.new(mode, size, color)


def noisy(size=(64, 64)) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def header_bomb(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR claims width x height (with a correct CRC)."""
    png = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    png[16:24] = struct.pack(">II", width, height)  # after signature(8) + length(4) + b'IHDR'(4)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def gray_pngs(values: list[int], size=(32, 32), mode="RGB") -> dict[str, bytes]:
    return {f"g{i:02d}_{v}.png": encode(solid((v, v, v) if mode == "RGB" else v, size, mode), "PNG")
            for i, v in enumerate(values)}


def stored_by_name(project: Project) -> dict[str, np.ndarray]:
    store = ImageCollection(project)
    return dict(zip(store.names(), np.asarray(store.images())))


def folder(path: Path) -> SourceSpec:
    return SourceSpec("folder", path=str(path))


# --------------------------------------------------------------------- good and bad files
def test_mixed_folder_imports_the_good_files_and_reports_the_bad(project, tmp_path):
    good = {  # name -> (bytes, the RGB colour it must come out as)
        "rgb_red.png": (encode(solid((255, 0, 0)), "PNG"), (255, 0, 0)),
        "rgba_green.png": (encode(solid((0, 255, 0, 255), mode="RGBA"), "PNG"), (0, 255, 0)),
        "palette_blue.png": (encode(solid((0, 0, 255)).convert("P"), "PNG"), (0, 0, 255)),
        "gray16.png": (encode(Image.fromarray(np.full((30, 40), 32896, np.uint16)), "PNG"),
                       (128, 128, 128)),
        "cmyk_cyan.jpg": (encode(solid((255, 0, 0, 0), mode="CMYK"), "JPEG", quality=95),
                          (0, 255, 255)),
        "photo_orange.jpg": (encode(solid((255, 128, 0), (64, 48)), "JPEG", quality=95),
                             (255, 128, 0)),
        "teal.bmp": (encode(solid((0, 128, 128)), "BMP"), (0, 128, 128)),
        "yellow.gif": (encode(solid((255, 255, 0)), "GIF"), (255, 255, 0)),
        "magenta.webp": (encode(solid((255, 0, 255)), "WEBP", lossless=True), (255, 0, 255)),
    }
    png_noise, jpg_noise = encode(noisy(), "PNG"), encode(noisy(), "JPEG", quality=90)
    bad = {  # name -> (bytes, words the reason must contain)
        "trunc.png": (png_noise[: len(png_noise) // 2], ("truncated", "corrupt")),
        "trunc.jpg": (jpg_noise[: len(jpg_noise) // 2], ("truncated", "corrupt")),
        "zero.png": (b"", ("empty",)),
        "readme.png": (b"These are my holiday photos, please label them.\n" * 5, ("not an image",)),
        "bomb.png": (header_bomb(20_000, 20_000), ("too large",)),
    }
    src = write_files(tmp_path / "mixed", {n: d for n, (d, _) in {**good, **bad}.items()})
    fracs = []
    t0 = time.perf_counter()
    report = import_source(project, folder(src), progress=lambda f, m: fracs.append(f))
    assert time.perf_counter() - t0 < 3.0  # the 400-Mpx header bomb is refused from its header

    assert report.imported == len(good)
    assert (report.size, report.channels) == ((32, 32), 3)  # 7 of 9 good files are 32x32
    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert set(reasons) == set(bad)
    for name, (_, words) in bad.items():
        assert any(w in reasons[name] for w in words), (name, reasons[name])
    summary = report.summary()
    assert f"Skipped {len(bad)} files" in summary
    for name in bad:
        assert f"  {name}: {reasons[name]}" in summary

    stored = stored_by_name(project)
    assert set(stored) == set(good)
    for name, (_, color) in good.items():
        img = stored[name]
        assert img.shape == (32, 32, 3)
        assert np.abs(img[16, 16].astype(int) - color).max() <= 12, (name, img[16, 16], color)
    assert 0.0 <= min(fracs) and fracs[-1] == 1.0


def test_most_common_size_and_channels_are_the_default(tmp_path):
    files = {**gray_pngs([10, 60, 110, 160, 210], (32, 32)),                 # 5 RGB 32x32
             **{f"wide{i}.png": encode(solid(v, (64, 48), "L"), "PNG")      # 2 gray 48x64
                for i, v in enumerate((90, 220))}}
    src = write_files(tmp_path / "src", files)
    p1 = Project.create(tmp_path / "p1")
    report = import_source(p1, folder(src))
    assert (report.size, report.channels) == ((32, 32), 3)
    assert ImageCollection(p1).images().shape == (7, 32, 32, 3)
    assert stored_by_name(p1)["wide1.png"][5, 5].tolist() == [220, 220, 220]

    # Flip the majority: now the gray 48x64 files win.
    more = {f"wide{i}.png": encode(solid(30 + i, (64, 48), "L"), "PNG") for i in range(2, 8)}
    write_files(src, more)
    p2 = Project.create(tmp_path / "p2")
    report = import_source(p2, folder(src))
    assert (report.size, report.channels) == ((48, 64), 1)
    assert ImageCollection(p2).images().shape == (13, 48, 64, 1)

    # An explicit configuration overrides both.
    p3 = Project.create(tmp_path / "p3")
    report = import_source(p3, folder(src), ImportConfig(size=(16, 16), channels=1))
    assert (report.size, report.channels) == ((16, 16), 1)
    stored = stored_by_name(p3)
    assert ImageCollection(p3).images().shape == (13, 16, 16, 1)
    assert stored["g04_210.png"][8, 8, 0] == 210


# ----------------------------------------------------------------------------- appending
def test_second_import_appends_and_conforms_to_the_project_shape(digits_project, tmp_path):
    store = ImageCollection(digits_project)
    before = np.array(store.images())
    names_before = store.names()
    gt_before = store.ground_truth()
    src = write_files(tmp_path / "pets", {
        "cat/a.png": encode(solid((40, 40, 40)), "PNG"),
        "cat/b.png": encode(solid((120, 120, 120)), "PNG"),
        "dog/c.png": encode(solid((200, 200, 200)), "PNG"),
    })
    report = import_source(digits_project, folder(src))
    assert report.imported == 3 and report.first_id == 1797
    assert (report.size, report.channels) == ((8, 8), 1)
    assert store.n_images == 1800 and store.shape == (8, 8, 1)
    after = np.asarray(store.images())
    np.testing.assert_array_equal(after[:1797], before)  # earlier ids are untouched
    assert store.names()[:1797] == names_before
    assert store.names()[1797:] == ["cat/a.png", "cat/b.png", "dog/c.png"]
    assert store.sources()[1797:] == ["folder:pets"] * 3
    assert [int(after[i].mean()) for i in (1797, 1798, 1799)] == [40, 120, 200]
    gt = store.ground_truth()
    assert gt.class_names == gt_before.class_names + ["cat", "dog"]
    np.testing.assert_array_equal(gt.labels[:1797], gt_before.labels)
    assert gt.labels[1797:].tolist() == [10, 10, 11]


def test_arrays_are_conformed_to_an_existing_file_project(project, tmp_path):
    src = write_files(tmp_path / "src", gray_pngs([50, 150], (32, 32)))
    import_source(project, folder(src))
    report = import_source(project, SourceSpec("digits"))
    assert report.first_id == 2 and report.imported == 1797
    images = np.asarray(ImageCollection(project).images())
    assert images.shape == (1799, 32, 32, 3)
    assert [int(images[i].mean()) for i in (0, 1)] == [50, 150]
    digits = load_digits().images[..., 0].astype(float)  # (1797, 8, 8)
    stored = images[2:].astype(float)
    assert (stored[..., 0] == stored[..., 1]).all() and (stored[..., 1] == stored[..., 2]).all()
    pooled = stored[..., 0].reshape(1797, 8, 4, 8, 4).mean(axis=(2, 4))  # back to 8x8
    assert np.corrcoef(pooled.ravel(), digits.ravel())[0, 1] > 0.9


# --------------------------------------------------------------------------- ground truth
def test_ground_truth_is_stored_apart_from_user_labels(digits_project):
    store = ImageCollection(digits_project)
    y = labels.current_labels(digits_project.store)
    assert y.shape == (1797,) and (y == -1).all()
    assert label_classes.list_classes(digits_project.store) == []
    gt = store.ground_truth()
    reference = load_digits()
    assert gt.available and gt.class_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(gt.labels, reference.gt)
    np.testing.assert_array_equal(gt.is_test, reference.is_test)
    np.testing.assert_array_equal(np.asarray(store.images()), reference.images)


def test_mnist_import_keeps_the_publishers_split(project, shared_data):
    report = import_source(project, SourceSpec("mnist", data_root=str(shared_data), download=False))
    assert report.imported == 70_000 and report.n_with_ground_truth == 70_000
    store = ImageCollection(project)
    assert store.images().shape == (70_000, 28, 28, 1)
    gt = store.ground_truth()
    assert gt.is_test.sum() == 10_000 and not gt.is_test[:60_000].any()
    assert np.bincount(gt.labels[gt.is_test], minlength=10).tolist() == \
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------------------- zips
def test_zip_upload_with_wrapper_slip_members_and_nested_zip(project, tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("x.png", encode(solid((9, 9, 9)), "PNG"))
    upload = tmp_path / "uploads" / "photos.zip"
    upload.parent.mkdir()
    with zipfile.ZipFile(upload, "w") as zf:
        zf.writestr("photos/cat/1.png", encode(solid((30, 30, 30)), "PNG"))
        zf.writestr("photos/dog/2.png", encode(solid((60, 60, 60)), "PNG"))
        zf.writestr("photos/extra.zip", inner.getvalue())
        zf.writestr(zipfile.ZipInfo("../evil.png"), encode(solid((1, 2, 3)), "PNG"))
        zf.writestr(zipfile.ZipInfo("/abs.png"), encode(solid((1, 2, 3)), "PNG"))
    parent_before = sorted(os.listdir(tmp_path.parent))
    report = import_source(project, SourceSpec("zip", path=str(upload)))
    assert report.imported == 3
    assert {s["path"] for s in report.skipped} == {"../evil.png", "/abs.png"}
    store = ImageCollection(project)
    stored = stored_by_name(project)
    assert {n: int(v.mean()) for n, v in stored.items()} == \
        {"cat/1.png": 30, "dog/2.png": 60, "extra.zip/x.png": 9}
    gt = store.ground_truth()
    names = store.names()
    assert gt.class_names[gt.labels[names.index("cat/1.png")]] == "cat"
    assert gt.class_names[gt.labels[names.index("dog/2.png")]] == "dog"
    assert sorted(os.listdir(tmp_path.parent)) == parent_before
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "uploads" / "evil.png").exists()
    assert not Path("/abs.png").exists()


def test_ground_truth_classes_is_empty_without_ground_truth(project, tmp_path):
    from PIL import Image

    from ssl_core.data.collection import ImageCollection
    from ssl_core.data.importer import import_source as run_import
    from ssl_core.data.sources import SourceSpec as Spec

    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("L", (6, 6), 40 * i).save(flat / f"{i}.png")
    run_import(project, Spec("folder", path=str(flat)))
    assert ImageCollection(project).ground_truth_classes() == []
    run_import(project, Spec("digits"))
    assert ImageCollection(project).ground_truth_classes() == [str(d) for d in range(10)]
