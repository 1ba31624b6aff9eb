"""The import as the worker runs it, and what an import leaves behind when things go wrong:
run_import_job's result and its failure when nothing is imported (the upload is removed either
way), the persisted last import report, a project that stays usable after an import that found
no image or one killed before it committed, and a hypothesis property that any folder of valid
and junk files imports without raising. What each kind of source imports as is in
test_importer.py, whose file helpers these tests share."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_importer import encode, folder, gray_pngs, write_files

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import ImportConfig, ImportFailed, import_source, last_import_report
from ssl_core.data.sources import SourceSpec
from ssl_core.jobs.import_job import run_import_job
from ssl_core.project.folder import Project


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
    store = ImageCollection(project)
    assert store.n_images == 0 and store.shape is None and len(store.images()) == 0
    # Still usable: a good import afterwards starts at id 0.
    good = write_files(tmp_path / "good", gray_pngs([70, 170], (8, 8)))
    report = import_source(project, folder(good))
    assert report.imported == 2 and report.first_id == 0
    assert store.images().shape == (2, 8, 8, 3)



# ---------------------------------------------------------------------- crash consistency
def test_images_file_longer_than_the_database_is_ignored_and_overwritten(project, tmp_path):
    first = write_files(tmp_path / "first", gray_pngs([10, 20, 30], (8, 8), "L"))
    import_source(project, folder(first))
    store = ImageCollection(project)
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
        store = ImageCollection(project)
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
    assert ImageCollection(project).n_images == 0


def test_import_job_returns_the_report(project, tmp_path):
    src = write_files(tmp_path / "src", gray_pngs([5, 250], (12, 10)))
    ctx = fake_ctx(project)
    result = run_import_job(ctx, {"source": {"kind": "folder", "path": str(src)},
                                  "config": ImportConfig(size=(6, 6), channels=1).to_dict()})
    assert result["imported"] == 2 and result["first_id"] == 0
    assert tuple(result["size"]) == (6, 6) and result["channels"] == 1
    assert ImageCollection(project).images().shape == (2, 6, 6, 1)
    assert ctx.calls and ctx.calls[-1][0] == 1.0
