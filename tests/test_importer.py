"""The importer end to end: sources -> one uint8 array in the project + an import report.

Everything goes through import_source(project, SourceSpec(...), ImportConfig(...)) and is read
back through ImageStore, the way the app and the worker use them."""
from __future__ import annotations

import io
import os
import struct
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ssl_core import labels
from ssl_core.imagestore import ImageStore
from ssl_core.importer import (ImportConfig, ImportFailed, import_source, last_import_report,
                               run_import_job)
from ssl_core.project import Project
from ssl_core.sources import SourceSpec, load_digits


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
    store = ImageStore(project)
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
    assert ImageStore(p1).images().shape == (7, 32, 32, 3)
    assert stored_by_name(p1)["wide1.png"][5, 5].tolist() == [220, 220, 220]

    # Flip the majority: now the gray 48x64 files win.
    more = {f"wide{i}.png": encode(solid(30 + i, (64, 48), "L"), "PNG") for i in range(2, 8)}
    write_files(src, more)
    p2 = Project.create(tmp_path / "p2")
    report = import_source(p2, folder(src))
    assert (report.size, report.channels) == ((48, 64), 1)
    assert ImageStore(p2).images().shape == (13, 48, 64, 1)

    # An explicit configuration overrides both.
    p3 = Project.create(tmp_path / "p3")
    report = import_source(p3, folder(src), ImportConfig(size=(16, 16), channels=1))
    assert (report.size, report.channels) == ((16, 16), 1)
    stored = stored_by_name(p3)
    assert ImageStore(p3).images().shape == (13, 16, 16, 1)
    assert stored["g04_210.png"][8, 8, 0] == 210


# ----------------------------------------------------------------------------- appending
def test_second_import_appends_and_conforms_to_the_project_shape(digits_project, tmp_path):
    store = ImageStore(digits_project)
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
    images = np.asarray(ImageStore(project).images())
    assert images.shape == (1799, 32, 32, 3)
    assert [int(images[i].mean()) for i in (0, 1)] == [50, 150]
    digits = load_digits().images[..., 0].astype(float)  # (1797, 8, 8)
    stored = images[2:].astype(float)
    assert (stored[..., 0] == stored[..., 1]).all() and (stored[..., 1] == stored[..., 2]).all()
    pooled = stored[..., 0].reshape(1797, 8, 4, 8, 4).mean(axis=(2, 4))  # back to 8x8
    assert np.corrcoef(pooled.ravel(), digits.ravel())[0, 1] > 0.9


# ---------------------------------------------------------------------------- nothing new
@pytest.mark.parametrize("contents", ["corrupt-only", "empty"])
def test_import_without_any_image_leaves_the_project_usable(project, tmp_path, contents):
    files = {"a.png": b"", "b.png": b"\x89PNG\r\n\x1a\n broken", "c.jpg": b"text"} \
        if contents == "corrupt-only" else {}
    src = write_files(tmp_path / "src", files)
    src.mkdir(exist_ok=True)
    report = import_source(project, folder(src))
    assert report.imported == 0
    assert len(report.skipped) == len(files)
    assert "No image could be imported" in report.summary()
    store = ImageStore(project)
    assert store.n_images == 0 and store.shape is None and len(store.images()) == 0
    # Still usable: a good import afterwards starts at id 0.
    good = write_files(tmp_path / "good", gray_pngs([70, 170], (8, 8)))
    report = import_source(project, folder(good))
    assert report.imported == 2 and report.first_id == 0
    assert store.images().shape == (2, 8, 8, 3)


# --------------------------------------------------------------------------- ground truth
def test_ground_truth_is_stored_apart_from_user_labels(digits_project):
    store = ImageStore(digits_project)
    y = labels.current_labels(digits_project.store)
    assert y.shape == (1797,) and (y == -1).all()
    assert labels.list_classes(digits_project.store) == []
    gt = store.ground_truth()
    reference = load_digits()
    assert gt.available and gt.class_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(gt.labels, reference.gt)
    np.testing.assert_array_equal(gt.is_test, reference.is_test)
    np.testing.assert_array_equal(np.asarray(store.images()), reference.images)


def test_mnist_import_keeps_the_publishers_split(project, shared_data):
    report = import_source(project, SourceSpec("mnist", data_root=str(shared_data), download=False))
    assert report.imported == 70_000 and report.n_with_ground_truth == 70_000
    store = ImageStore(project)
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
    store = ImageStore(project)
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


# ---------------------------------------------------------------------- crash consistency
def test_images_file_longer_than_the_database_is_ignored_and_overwritten(project, tmp_path):
    first = write_files(tmp_path / "first", gray_pngs([10, 20, 30], (8, 8), "L"))
    import_source(project, folder(first))
    store = ImageStore(project)
    committed = np.array(store.images())
    assert committed.shape == (3, 8, 8, 1)
    # An import killed after swapping in a longer images.npy but before committing its rows.
    bigger = project.images_path.with_name("killed-import.npy")
    arr = np.lib.format.open_memmap(bigger, mode="w+", dtype=np.uint8, shape=(8, 8, 8, 1))
    arr[:3] = committed
    arr[3:] = 250
    arr.flush()
    del arr
    os.replace(bigger, project.images_path)
    assert np.load(project.images_path, mmap_mode="r").shape[0] == 8
    assert store.n_images == 3 and store.shape == (8, 8, 1)
    np.testing.assert_array_equal(store.images(), committed)

    second = write_files(tmp_path / "second", gray_pngs([40, 50], (8, 8), "L"))
    report = import_source(project, folder(second))
    assert report.first_id == 3 and report.imported == 2
    assert store.n_images == 5
    images = np.asarray(store.images())
    np.testing.assert_array_equal(images[:3], committed)
    assert [int(images[i].mean()) for i in (3, 4)] == [40, 50]  # not the orphaned 250s
    assert np.load(project.images_path, mmap_mode="r").shape[0] == 5


# ---------------------------------------------------------------------- the import report
def test_last_import_report_is_persisted(project, tmp_path):
    assert last_import_report(project) is None
    src = write_files(tmp_path / "a", {**gray_pngs([1, 2], (8, 8)), "bad.png": b"nope"})
    first = import_source(project, folder(src))
    assert last_import_report(project) == first
    assert first.seconds > 0
    again = Project.open(project.root)  # another process opening the project sees the same
    assert last_import_report(again).summary() == first.summary()
    assert last_import_report(again).skipped == [{"path": "bad.png", "reason": first.skipped[0]["reason"]}]
    second = import_source(project, SourceSpec("digits"))
    got = last_import_report(project)
    assert got == second and got.first_id == 2 and got.imported == 1797
    assert got.ground_truth_classes == [str(d) for d in range(10)]


# ------------------------------------------------------------------------------ property
_MODES = ["L", "RGB", "RGBA", "P", "1", "LA", "I;16"]


@st.composite
def file_entries(draw):
    """Either ('png', bytes) for a valid small PNG, or ('junk', bytes)."""
    if draw(st.booleans()):
        mode = draw(st.sampled_from(_MODES))
        w, h = draw(st.integers(1, 24)), draw(st.integers(1, 24))
        seed = draw(st.integers(0, 2**16))
        rng = np.random.default_rng(seed)
        if mode == "I;16":
            im = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
        else:
            im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
        return "png", encode(im, "PNG")
    return "junk", draw(st.binary(max_size=300))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(entries=st.lists(file_entries(), min_size=1, max_size=6))
def test_any_folder_imports_without_raising(entries):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = write_files(root / "src", {f"f{i}.png": data for i, (_, data) in enumerate(entries)})
        project = Project.create(root / "project")
        report = import_source(project, folder(src))
        assert report.imported + len(report.skipped) == len(entries)
        skipped = {s["path"] for s in report.skipped}
        valid = {f"f{i}.png" for i, (kind, _) in enumerate(entries) if kind == "png"}
        assert not valid & skipped  # every valid PNG was imported
        store = ImageStore(project)
        assert store.n_images == report.imported
        assert set(store.names()) == {f"f{i}.png" for i in range(len(entries))} - skipped
        if report.imported:
            assert store.images().shape == (report.imported, *report.size, report.channels)


# ------------------------------------------------------------------------------- the job
def fake_ctx(project):
    calls = []
    return SimpleNamespace(project=project, progress=lambda frac, msg: calls.append((frac, msg)),
                           calls=calls)


def test_import_job_fails_when_nothing_is_imported(project, tmp_path):
    src = write_files(tmp_path / "src", {"a.png": b"", "b.png": b"junk"})
    upload = tmp_path / "upload.zip"
    upload.write_bytes(b"left over upload")
    ctx = fake_ctx(project)
    with pytest.raises(ImportFailed) as err:
        run_import_job(ctx, {"source": {"kind": "folder", "path": str(src)},
                             "delete_after": str(upload)})
    assert "No image could be imported" in str(err.value)
    assert "a.png" in str(err.value) and "b.png" in str(err.value)
    assert not upload.exists()  # the uploaded archive is removed even when the import fails
    assert ImageStore(project).n_images == 0


def test_import_job_returns_the_report(project, tmp_path):
    src = write_files(tmp_path / "src", gray_pngs([5, 250], (12, 10)))
    ctx = fake_ctx(project)
    result = run_import_job(ctx, {"source": {"kind": "folder", "path": str(src)},
                                  "config": ImportConfig(size=(6, 6), channels=1).to_dict()})
    assert result["imported"] == 2 and result["first_id"] == 0
    assert tuple(result["size"]) == (6, 6) and result["channels"] == 1
    assert ImageStore(project).images().shape == (2, 6, 6, 1)
    assert ctx.calls and ctx.calls[-1][0] == 1.0


def test_ground_truth_classes_is_empty_without_ground_truth(project, tmp_path):
    from PIL import Image

    from ssl_core.importer import import_source as run_import
    from ssl_core.imagestore import ImageStore
    from ssl_core.sources import SourceSpec as Spec

    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("L", (6, 6), 40 * i).save(flat / f"{i}.png")
    run_import(project, Spec("folder", path=str(flat)))
    assert ImageStore(project).ground_truth_classes() == []
    run_import(project, Spec("digits"))
    assert ImageStore(project).ground_truth_classes() == [str(d) for d in range(10)]
