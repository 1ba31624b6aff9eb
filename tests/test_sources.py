"""Folder and zip sources end to end: class subfolders as ground truth, splits, junk and
symlinks, limits, zip wrappers, zip-slip and nested archives. The decoder and the zip guard
have their own tests (test_images.py, test_archive.py); here we check what the sources make
of them."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import tree_snapshot

from ssl_core.data.sources import (
    FileData,
    SourceError,
    SourceSpec,
    hash_split,
    load_source,
)


def make_zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def by_name(data: FileData) -> dict[str, tuple[str | None, bool]]:
    """{item name: (ground-truth class name or None, is_test)}."""
    return {it.name: (data.class_names[it.gt] if it.gt >= 0 else None, it.is_test)
            for it in data.items}



# -------------------------------------------------------------------------------- folders
def touch(root: Path, rel: str, data: bytes | None = None) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if data is not None else rel.encode())
    return p


def test_folder_class_subfolders_give_sorted_ground_truth(tmp_path):
    for rel in ["zebra/1.png", "ant/2.png", "ant/3.png", "mole/4.png", "zebra/sub/5.png"]:
        touch(tmp_path / "photos", rel)
    data = load_source(SourceSpec("folder", path=str(tmp_path / "photos")))
    assert isinstance(data, FileData)
    assert data.class_names == ["ant", "mole", "zebra"]
    got = {name: gt for name, (gt, _) in by_name(data).items()}
    assert got == {"ant/2.png": "ant", "ant/3.png": "ant", "mole/4.png": "mole",
                   "zebra/1.png": "zebra", "zebra/sub/5.png": "zebra"}
    assert data.skipped == []
    # Items read the file's bytes.
    for it in data.items:
        assert it.read() == it.name.encode()
    # The split is the stable name hash.
    assert all(it.is_test == hash_split(it.name) for it in data.items)


def test_flat_folder_has_no_ground_truth(tmp_path):
    for i in range(6):
        touch(tmp_path, f"img{i}.png")
    data = load_source(SourceSpec("folder", path=str(tmp_path)))
    assert len(data.items) == 6
    assert data.class_names == [] and all(it.gt == -1 for it in data.items)


def test_top_level_files_are_unlabeled_beside_class_folders(tmp_path):
    for rel in ["loose.png", "cat/1.png", "dog/2.png"]:
        touch(tmp_path, rel)
    data = load_source(SourceSpec("folder", path=str(tmp_path)))
    assert data.class_names == ["cat", "dog"]
    got = {name: gt for name, (gt, _) in by_name(data).items()}
    assert got == {"loose.png": None, "cat/1.png": "cat", "dog/2.png": "dog"}


def test_train_test_layout_keeps_the_folders_split(tmp_path):
    rels = {"train/cat/1.png": False, "train/dog/2.png": False, "train/dog/3.png": False,
            "test/cat/4.png": True, "test/dog/5.png": True, "val/cat/6.png": True}
    for rel in rels:
        touch(tmp_path, rel)
    data = load_source(SourceSpec("folder", path=str(tmp_path)))
    assert data.class_names == ["cat", "dog"]
    got = by_name(data)
    assert {n: t for n, (_, t) in got.items()} == rels
    assert {n: c for n, (c, _) in got.items()} == {r: r.split("/")[1] for r in rels}


def test_hash_split_is_about_a_fifth_and_stable_when_files_are_added(tmp_path):
    fractions = np.mean([hash_split(f"img_{i:05d}.png") for i in range(5000)])
    assert 0.17 < fractions < 0.23
    for i in range(40):
        touch(tmp_path, f"cls{i % 2}/{i}.png")
    first = {it.name: it.is_test for it in load_source(SourceSpec("folder", path=str(tmp_path))).items}
    for i in range(40, 80):
        touch(tmp_path, f"cls{i % 3}/{i}.png")
    second = {it.name: it.is_test for it in load_source(SourceSpec("folder", path=str(tmp_path))).items}
    assert len(second) == 80
    assert {n: second[n] for n in first} == first


def test_hidden_files_and_os_junk_are_ignored(tmp_path):
    for rel in ["cat/1.png", ".hidden.png", ".git/objects/x.png", "cat/.DS_Store", "cat/._1.png",
                "__MACOSX/cat/._1.png", "Thumbs.db", "dog/desktop.ini", "dog/2.png"]:
        touch(tmp_path, rel)
    data = load_source(SourceSpec("folder", path=str(tmp_path)))
    assert sorted(it.name for it in data.items) == ["cat/1.png", "dog/2.png"]
    assert data.class_names == ["cat", "dog"]
    assert data.skipped == []


def test_symlinks_are_skipped_with_a_reason(tmp_path):
    outside = touch(tmp_path, "secret/outside.png")
    root = tmp_path / "photos"
    touch(root, "cat/1.png")
    (root / "cat" / "link.png").symlink_to(outside)
    (root / "linked-dir").symlink_to(tmp_path / "secret", target_is_directory=True)
    data = load_source(SourceSpec("folder", path=str(root)))
    assert [it.name for it in data.items] == ["cat/1.png"]
    assert [s.path for s in data.skipped] == ["cat/link.png"]
    assert "symlink" in data.skipped[0].reason


def test_folder_with_more_files_than_max_files(tmp_path):
    for i in range(5):
        touch(tmp_path, f"{i}.png")
    assert len(load_source(SourceSpec("folder", path=str(tmp_path)), max_files=5).items) == 5
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("folder", path=str(tmp_path)), max_files=4)
    assert "more than 4" in str(err.value)


def test_path_that_is_not_a_folder(tmp_path):
    file = touch(tmp_path, "a.png")
    for path in (file, tmp_path / "missing"):
        with pytest.raises(SourceError) as err:
            load_source(SourceSpec("folder", path=str(path)))
        assert str(path) in str(err.value)
    with pytest.raises(SourceError):
        load_source(SourceSpec("folder"))  # no path at all


def test_unknown_kind_and_missing_data_root():
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("imagenet"))
    assert "digits" in str(err.value)
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("mnist"))
    assert "data root" in str(err.value)


# ----------------------------------------------------------------------------------- zips
def test_zip_class_folders_and_split_layout(tmp_path):
    z = make_zip(tmp_path / "up.zip", [("loose.png", b"l"), ("cat/1.png", b"c"), ("dog/2.png", b"d"),
                                       ("__MACOSX/cat/._1.png", b"junk"), ("cat/.DS_Store", b"junk")])
    data = load_source(SourceSpec("zip", path=str(z)))
    assert data.class_names == ["cat", "dog"]
    assert {n: c for n, (c, _) in by_name(data).items()} == \
        {"loose.png": None, "cat/1.png": "cat", "dog/2.png": "dog"}
    assert {it.name: it.read() for it in data.items} == \
        {"loose.png": b"l", "cat/1.png": b"c", "dog/2.png": b"d"}
    z2 = make_zip(tmp_path / "split.zip", [("train/cat/1.png", b"1"), ("test/dog/2.png", b"2")])
    got = by_name(load_source(SourceSpec("zip", path=str(z2))))
    assert got == {"train/cat/1.png": ("cat", False), "test/dog/2.png": ("dog", True)}


def test_zip_single_wrapping_folder_is_stripped(tmp_path):
    z = make_zip(tmp_path / "photos.zip", [("photos/cat/1.png", b"1"), ("photos/dog/2.png", b"2"),
                                           ("photos/cat/3.png", b"3")])
    data = load_source(SourceSpec("zip", path=str(z)))
    assert data.class_names == ["cat", "dog"]
    assert {n: c for n, (c, _) in by_name(data).items()} == \
        {"cat/1.png": "cat", "dog/2.png": "dog", "cat/3.png": "cat"}


def test_zip_slip_members_are_skipped_and_nothing_is_written(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    z = make_zip(work / "evil.zip", [("../evil.png", b"e"), ("/abs.png", b"a"),
                                     ("ok/../../escape.png", b"x"), ("cat/1.png", b"c"),
                                     ("dog/2.png", b"d")])
    parent_before = tree_snapshot(tmp_path.parent)
    data = load_source(SourceSpec("zip", path=str(z)))
    assert [it.name for it in data.items] == ["cat/1.png", "dog/2.png"]
    assert data.class_names == ["cat", "dog"]
    skipped = {s.path: s.reason for s in data.skipped}
    assert set(skipped) == {"../evil.png", "/abs.png", "ok/../../escape.png"}
    assert "absolute" in skipped["/abs.png"] and ".." in skipped["../evil.png"]
    assert tree_snapshot(tmp_path.parent) == parent_before
    assert [p.name for p in work.iterdir()] == ["evil.zip"]


def test_nested_zip_members_are_listed(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("a.png", b"A")
        zf.writestr("b.png", b"B")
    z = make_zip(tmp_path / "outer.zip", [("top.png", b"T"), ("more.zip", inner.getvalue())])
    data = load_source(SourceSpec("zip", path=str(z)))
    assert {it.name: it.read() for it in data.items} == \
        {"top.png": b"T", "more.zip/a.png": b"A", "more.zip/b.png": b"B"}


def test_not_a_zip_is_a_source_error(tmp_path):
    bad = tmp_path / "holiday.zip"
    bad.write_bytes(b"GIF89a definitely not a zip" * 10)
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("zip", path=str(bad)))
    assert "holiday.zip" in str(err.value)


def test_zip_with_more_files_than_max_files(tmp_path):
    z = make_zip(tmp_path / "many.zip", [(f"{i}.png", b"x") for i in range(6)])
    assert len(load_source(SourceSpec("zip", path=str(z)), max_files=6).items) == 6
    with pytest.raises(SourceError) as err:
        load_source(SourceSpec("zip", path=str(z)), max_files=5)
    assert "more than 5" in str(err.value)
