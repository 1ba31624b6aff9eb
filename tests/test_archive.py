"""Tests for ssl_core.data.zip_archive: normal uploads come through intact, hostile or
broken members are skipped with a reason, and whole-archive problems raise
ArchiveError. Every zip is built in memory."""

from __future__ import annotations

import io
import stat
import struct
import time
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssl_core.data.zip_archive import (
    ArchiveError,
    ArchiveLimits,
    Skipped,
    common_root,
    iter_zip,
)


def make_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def read_all(data: bytes, limits: ArchiveLimits = ArchiveLimits()) -> tuple[dict[str, bytes], list[Skipped]]:
    skipped: list[Skipped] = []
    members = {m.path: m.data for m in iter_zip(io.BytesIO(data), limits, skipped)}
    return members, skipped


def central_entry(data: bytes, name: str) -> int:
    """Offset of ``name``'s central-directory record."""
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        (length,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46 : at + 46 + length] == name.encode():
            return at
        at += 4


def test_class_folders(tmp_path) -> None:
    data = make_zip([("cat/1.png", b"c1"), ("cat/2.png", b"c2"), ("dog/1.png", b"d1")])
    members, skipped = read_all(data)
    assert members == {"cat/1.png": b"c1", "cat/2.png": b"c2", "dog/1.png": b"d1"}
    assert skipped == []
    # Same result from a path on disk, and reading it writes nothing next to it.
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    assert [m.path for m in iter_zip(path)] == ["cat/1.png", "cat/2.png", "dog/1.png"]
    assert [m.path for m in iter_zip(str(path))] == list(members)
    assert list(tmp_path.iterdir()) == [path]


def test_wrapping_folder_and_common_root() -> None:
    members, _ = read_all(make_zip([("photos/", b""), ("photos/cat/1.png", b"x"), ("photos/dog/2.png", b"y")]))
    assert list(members) == ["photos/cat/1.png", "photos/dog/2.png"]  # directory entry dropped
    assert common_root(list(members)) == "photos/"
    assert common_root(["photos/a.png"]) == "photos/"
    assert common_root(["cat/1.png", "dog/1.png"]) == ""
    assert common_root(["photos/cat/1.png", "loose.png"]) == ""
    assert common_root([]) == ""


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.png", "escapes"),
        ("/abs.png", "absolute"),
        ("a/../../b.png", "escapes"),
        ("C:\\x.png", "absolute"),
        ("C:x.png", "absolute"),
        ("..\\x.png", "escapes"),
        ("a\\..\\..\\x.png", "escapes"),
    ],
)
def test_zip_slip_names_are_skipped(name: str, reason: str) -> None:
    members, skipped = read_all(make_zip([("ok/1.png", b"1"), (zipfile.ZipInfo(name), b"evil")]))
    assert list(members) == ["ok/1.png"]
    assert len(skipped) == 1 and reason in skipped[0].reason


def test_backslashes_become_separators() -> None:
    members, skipped = read_all(make_zip([(zipfile.ZipInfo("cat\\1.png"), b"x")]))
    assert members == {"cat/1.png": b"x"} and skipped == []


def test_symlink_is_skipped() -> None:
    link = zipfile.ZipInfo("cat/link.png")
    link.create_system = 3  # unix
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    members, skipped = read_all(make_zip([(link, b"/etc/passwd"), ("cat/1.png", b"x")]))
    assert list(members) == ["cat/1.png"]
    assert skipped == [Skipped("cat/link.png", "symbolic link")]


def test_nested_zip_is_expanded_with_prefix() -> None:
    inner = make_zip([("a/1.png", b"i1"), ("b/2.png", b"i2")])
    members, skipped = read_all(make_zip([("top.png", b"t"), ("sub/Inner.ZIP", inner)]))
    assert members == {"top.png": b"t", "sub/Inner.ZIP/a/1.png": b"i1", "sub/Inner.ZIP/b/2.png": b"i2"}
    assert skipped == []


def test_nesting_beyond_max_depth_is_skipped() -> None:
    level3 = make_zip([("deep.png", b"d")])
    level2 = make_zip([("mid.png", b"m"), ("l3.zip", level3)])
    outer = make_zip([("l2.zip", level2)])
    members, skipped = read_all(outer)  # default max_depth=2: one level of nesting
    assert list(members) == ["l2.zip/mid.png"]
    assert [s.path for s in skipped] == ["l2.zip/l3.zip"] and "too deep" in skipped[0].reason
    members, skipped = read_all(outer, ArchiveLimits(max_depth=1))
    assert members == {} and [s.path for s in skipped] == ["l2.zip"]
    assert list(read_all(outer, ArchiveLimits(max_depth=3))[0]) == ["l2.zip/mid.png", "l2.zip/l3.zip/deep.png"]


def test_corrupt_nested_zip_is_skipped() -> None:
    members, skipped = read_all(make_zip([("bad.zip", b"not a zip at all"), ("ok.png", b"x")]))
    assert list(members) == ["ok.png"]
    assert skipped[0].path == "bad.zip" and "not a readable zip" in skipped[0].reason


def test_zip_bomb_is_skipped_quickly() -> None:
    bomb = make_zip([("bomb.png", bytes(50_000_000)), ("ok.png", b"x")])
    assert len(bomb) < 100_000
    start = time.perf_counter()
    members, skipped = read_all(bomb)
    assert time.perf_counter() - start < 0.5  # refused from the directory entry, never inflated
    assert list(members) == ["ok.png"]
    assert skipped[0].path == "bomb.png" and "zip bomb" in skipped[0].reason


def test_small_compressible_files_are_not_bombs() -> None:
    members, skipped = read_all(make_zip([("blank.bmp", bytes(100_000))]))
    assert members == {"blank.bmp": bytes(100_000)} and skipped == []


def test_declared_too_large_is_skipped() -> None:
    members, skipped = read_all(make_zip([("big.png", b"x" * 5000)]), ArchiveLimits(max_member_bytes=1000))
    assert members == {} and "too large" in skipped[0].reason


def test_lying_size_header_cannot_exceed_the_read_cap() -> None:
    payload = bytes(range(256)) * 40  # 10,240 bytes
    data = bytearray(make_zip([("liar.png", payload)]))
    limits = ArchiveLimits(max_member_bytes=1000)
    # Claim 100 bytes in both the local header and the central directory.
    central = central_entry(bytes(data), "liar.png")
    struct.pack_into("<I", data, 22, 100)
    struct.pack_into("<I", data, central + 24, 100)
    members, skipped = read_all(bytes(data), limits)
    assert members == {} and "corrupt" in skipped[0].reason  # stopped after 100 bytes: CRC mismatch
    # Even with a CRC forged for the first 100 bytes, only those 100 bytes come out.
    crc = zlib.crc32(payload[:100])
    struct.pack_into("<I", data, 14, crc)
    struct.pack_into("<I", data, central + 16, crc)
    members, skipped = read_all(bytes(data), limits)
    assert members == {"liar.png": payload[:100]} and skipped == []


def test_total_budget_stops_extraction() -> None:
    data = make_zip([(f"{i}.png", bytes([i]) * 1000) for i in range(4)], zipfile.ZIP_STORED)
    members, skipped = read_all(data, ArchiveLimits(max_total_bytes=2500))
    assert list(members) == ["0.png", "1.png"]
    assert [s.path for s in skipped] == ["2.png", "3.png"]
    assert all("total size limit" in s.reason for s in skipped)


def test_too_many_members_refuses_the_archive() -> None:
    data = make_zip([(f"{i}.png", b"x") for i in range(6)])
    with pytest.raises(ArchiveError, match="6 files, more than the limit of 5"):
        iter_zip(io.BytesIO(data), ArchiveLimits(max_members=5))
    # Millions of entries are refused from the end record, before zipfile parses them.
    with pytest.raises(ArchiveError, match="6 entries"):
        iter_zip(io.BytesIO(data), ArchiveLimits(max_members=2))
    # An end record that understates the count is caught once the directory is parsed.
    lying = bytearray(data)
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", lying, end + 8, 1, 1)
    with pytest.raises(ArchiveError, match="6 files"):
        iter_zip(io.BytesIO(bytes(lying)), ArchiveLimits(max_members=5))
    assert len(list(iter_zip(io.BytesIO(data), ArchiveLimits(max_members=6)))) == 6
    # Directory entries do not count as files.
    with_dirs = make_zip([(f"d{i}/", b"") for i in range(6)] + [("d0/a.png", b"x")])
    assert len(list(iter_zip(io.BytesIO(with_dirs), ArchiveLimits(max_members=5)))) == 1


@pytest.mark.parametrize(
    "data", [b"", b"just some text", b"\x89PNG\r\n\x1a\n" + bytes(100)], ids=["empty", "text", "png"]
)
def test_not_a_zip_refuses_the_archive(data: bytes, tmp_path) -> None:
    with pytest.raises(ArchiveError, match="not a readable zip"):
        iter_zip(io.BytesIO(data))
    path = tmp_path / "fake.zip"
    path.write_bytes(data)
    with pytest.raises(ArchiveError):
        iter_zip(path)


def test_archive_too_large() -> None:
    with pytest.raises(ArchiveError, match="archive too large"):
        iter_zip(io.BytesIO(make_zip([("a.png", b"x" * 100)])), ArchiveLimits(max_archive_bytes=50))


def test_os_junk_is_ignored_silently() -> None:
    junk = ["__MACOSX/", "__MACOSX/cat/._1.png", "cat/._1.png", "cat/.DS_Store",
            "Thumbs.db", "dog/desktop.ini"]
    members, skipped = read_all(make_zip([(name, b"junk") for name in junk] + [("cat/1.png", b"x")]))
    assert members == {"cat/1.png": b"x"} and skipped == []


def test_corrupt_member_is_skipped_and_the_rest_survive() -> None:
    payload = bytes(range(256)) * 64
    data = bytearray(make_zip([("a.png", b"A" * 100), ("b.png", payload), ("c.png", b"C" * 100)]))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("b.png")
    start = info.header_offset + 30 + len("b.png")  # local header, then compressed data
    for offset in range(start + 5, start + info.compress_size - 5, 7):
        data[offset] ^= 0xA5
    members, skipped = read_all(bytes(data))
    assert members == {"a.png": b"A" * 100, "c.png": b"C" * 100}
    assert [s.path for s in skipped] == ["b.png"] and "corrupt" in skipped[0].reason


def test_encrypted_member_is_skipped() -> None:
    data = bytearray(make_zip([("secret.png", b"s"), ("open.png", b"o")]))
    struct.pack_into("<H", data, 6, 1)  # first local header: general purpose flag bit 0
    central = central_entry(bytes(data), "secret.png")
    struct.pack_into("<H", data, central + 8, 1)
    members, skipped = read_all(bytes(data))
    assert members == {"open.png": b"o"} and skipped == [Skipped("secret.png", "encrypted")]


def test_duplicate_paths_keep_the_first() -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = make_zip([("a.png", b"first"), ("a.png", b"second")])
    members, skipped = read_all(data)
    assert members == {"a.png": b"first"} and "duplicate" in skipped[0].reason


SEED = make_zip([("a/1.png", b"hello" * 50), ("b/2.png", bytes(range(256)) * 3),
                 ("in.zip", make_zip([("x/1.png", b"a" * 300)]))])


@settings(max_examples=100, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_damaged_archives_fail_only_in_documented_ways(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SEED)
    for where, value in flips:
        data[where] = value
    skipped: list[Skipped] = []
    try:
        members = list(iter_zip(io.BytesIO(bytes(data)), ArchiveLimits(max_members=50), skipped))
    except ArchiveError:
        return
    assert all(isinstance(m.data, bytes) and not m.path.startswith("/") for m in members)
    assert all(s.reason for s in skipped)


def test_zip64_entry_count_is_read_from_the_64bit_record(monkeypatch) -> None:
    # Make zipfile write Zip64 end records for a tiny archive, then saturate the
    # classic record's counts as they are in a real archive of > 65535 entries.
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
    data = bytearray(make_zip([(f"{i}.png", b"x") for i in range(6)]))
    monkeypatch.undo()
    assert b"PK\x06\x06" in data
    struct.pack_into("<HH", data, data.rindex(b"PK\x05\x06") + 8, 0xFFFF, 0xFFFF)
    data = bytes(data)
    with pytest.raises(ArchiveError, match="6 entries"):
        iter_zip(io.BytesIO(data), ArchiveLimits(max_members=2))
    assert len(list(iter_zip(io.BytesIO(data)))) == 6
