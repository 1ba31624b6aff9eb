"""Safe, in-memory reading of uploaded ``.zip`` archives.

Users upload their image collections as zip files, often with class
subfolders, sometimes with zips inside zips, and sometimes (by accident or
not) with hostile content: ``../`` paths, absolute paths, symlinks, zip bombs,
headers that lie about sizes. :func:`iter_zip` yields the usable regular
files and reports every refused member in a ``skipped`` list instead of
raising, so one bad entry never costs the user the whole upload. Only a
problem with the archive as a whole raises :class:`ArchiveError`.

Nothing is ever written to disk: members are read into memory under hard caps.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import typing
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

try:  # zipfile itself treats lzma as optional
    import lzma

    _LZMA_ERRORS: tuple[type[Exception], ...] = (lzma.LZMAError,)
except ImportError:
    _LZMA_ERRORS = ()

__all__ = ["ArchiveError", "ArchiveLimits", "ArchiveMember", "Skipped", "iter_zip", "common_root"]

# Ways a single member's data can turn out to be broken while it is read.
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, *_LZMA_ERRORS)
# Ways zipfile can fail while parsing a central directory (NotImplementedError:
# an entry claims a zip format version newer than zipfile supports).
_DIRECTORY_ERRORS = (
    zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, NotImplementedError, *_LZMA_ERRORS
)
_JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
_DRIVE = re.compile(r"^[A-Za-z]:")  # 'C:\x' and the drive-relative 'C:x'
_EOCD = struct.Struct("<4s4H2LH")  # end-of-central-directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


class ArchiveError(ValueError):
    """The whole archive is refused: not a zip, corrupt central directory,
    larger than ``max_archive_bytes`` or more than ``max_members`` entries.
    ``str()`` is a clear human message."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps that keep a hostile or accidental upload from exhausting memory."""

    max_archive_bytes: int = 2 * 2**30  # refuse archives larger than this on disk
    max_members: int = 100_000  # refuse archives with more file entries than this
    max_member_bytes: int = 64 * 2**20  # a member larger than this (declared OR actually read) is skipped
    max_total_bytes: int = 4 * 2**30  # stop extracting once this much has been decompressed
    max_ratio: float = 250.0  # a member compressing better than this is a zip bomb -> skipped
    max_depth: int = 2  # zips nested deeper than this are skipped (1 = no nested zips)
    ratio_floor_bytes: int = 2**20  # the ratio test only applies above this size (tiny files compress wildly)


@dataclass(frozen=True)
class ArchiveMember:
    """One regular file read from the archive."""

    path: str  # normalised POSIX relative path; nested zip members are prefixed 'inner.zip/...'
    data: bytes  # the decompressed content


@dataclass(frozen=True)
class Skipped:
    """A member that was refused, and why (shown to the user)."""

    path: str  # the member's path as far as it could be normalised
    reason: str  # short human reason, e.g. 'zip bomb (compression ratio 1030:1)'


class _Budget:
    """Decompressed bytes still allowed, shared by an archive and its nested zips."""

    def __init__(self, total: int) -> None:
        self.left = total


def iter_zip(
    source: str | os.PathLike[str] | typing.BinaryIO,
    limits: ArchiveLimits = ArchiveLimits(),
    skipped: list[Skipped] | None = None,
) -> Iterator[ArchiveMember]:
    """Yield every usable regular file of the zip ``source``, in archive order.

    The archive is opened and checked eagerly, so :class:`ArchiveError` is
    raised by this call itself rather than by the first ``next()``. Refused
    members are appended to ``skipped``; junk such as ``__MACOSX/`` and
    ``.DS_Store`` is dropped silently. Members named ``*.zip`` are expanded in
    place (prefixed with their own path) instead of being yielded.
    """
    if isinstance(source, (str, os.PathLike)):
        size = os.path.getsize(source)
        fp: typing.BinaryIO = open(source, "rb")  # noqa: SIM115 - closed by the generator
    else:
        fp = source
        size = fp.seek(0, io.SEEK_END)
        fp.seek(0)
    try:
        if size > limits.max_archive_bytes:
            raise ArchiveError(
                f"archive too large: {size / 2**20:.1f} MiB exceeds the "
                f"{limits.max_archive_bytes / 2**20:.1f} MiB limit"
            )
        zf = _open_zip(fp, limits, "the archive")
    except BaseException:
        if fp is not source:
            fp.close()
        raise
    report = skipped if skipped is not None else []
    return _iterate(zf, fp if fp is not source else None, limits, report)


def common_root(paths: list[str]) -> str:
    """Return ``'top/'`` if every path lies under the same single top-level
    folder (so a wrapping folder can be stripped to expose class folders), else ``''``."""
    tops = {p.split("/", 1)[0] for p in paths if "/" in p}
    if not paths or len(tops) != 1 or any("/" not in p for p in paths):
        return ""
    return tops.pop() + "/"


def _iterate(
    zf: zipfile.ZipFile, owned: typing.BinaryIO | None, limits: ArchiveLimits, skipped: list[Skipped]
) -> Iterator[ArchiveMember]:
    """Walk the top-level archive, closing what :func:`iter_zip` opened at the end."""
    try:
        yield from _walk(zf, "", 1, limits, _Budget(limits.max_total_bytes), skipped, set())
    finally:
        zf.close()
        if owned is not None:
            owned.close()


def _open_zip(fp: typing.BinaryIO, limits: ArchiveLimits, what: str) -> zipfile.ZipFile:
    """Parse the central directory after a cheap entry-count check, or raise ArchiveError."""
    declared = _declared_entries(fp)
    # The declared count includes directory entries, so allow them generous
    # room here; the exact file count is checked once the directory is parsed.
    if declared is not None and declared > 2 * limits.max_members:
        raise ArchiveError(f"{what} has {declared} entries, more than the limit of {limits.max_members}")
    try:
        zf = zipfile.ZipFile(fp)
    except _DIRECTORY_ERRORS as err:
        raise ArchiveError(f"{what} is not a readable zip file ({err})") from err
    files = sum(not info.is_dir() for info in zf.infolist())  # the declared count may lie
    if files > limits.max_members:
        zf.close()
        raise ArchiveError(f"{what} has {files} files, more than the limit of {limits.max_members}")
    return zf


def _declared_entries(fp: typing.BinaryIO) -> int | None:
    """Entry count from the end-of-central-directory record, read without parsing entries.

    zipfile builds an object per entry up front, so an archive with millions
    of entries must be refused before that happens. None when no record is found
    (zipfile then reports the archive as unreadable).
    """
    end = fp.seek(0, io.SEEK_END)
    start = max(0, end - (_EOCD.size + 65535))  # the record ends with a comment of at most 64 KiB
    fp.seek(start)
    tail = fp.read()
    fp.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return None
    entries = _EOCD.unpack_from(tail, at)[4]
    if entries != 0xFFFF or at < _ZIP64_LOCATOR.size:
        return entries
    # Zip64: the locator just before the record points at the 64-bit record.
    sig, _disk, offset, _disks = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
    if sig != b"PK\x06\x07" or offset > end - _ZIP64_EOCD.size:
        return entries
    fp.seek(offset)
    record = fp.read(_ZIP64_EOCD.size)
    fp.seek(0)
    if len(record) < _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
        return entries
    return _ZIP64_EOCD.unpack(record)[7]


def _walk(
    zf: zipfile.ZipFile,
    prefix: str,
    depth: int,
    limits: ArchiveLimits,
    budget: _Budget,
    skipped: list[Skipped],
    seen: set[str],
) -> Iterator[ArchiveMember]:
    """Yield the members of ``zf`` (itself at nesting ``depth``), recursing into nested zips."""
    for info in zf.infolist():
        if info.is_dir() or _is_junk(info.filename):
            continue
        path, problem = _clean_path(info.filename)
        path = prefix + path
        if problem is None:
            problem = _refusal(info, path, limits, budget, seen)
        if problem is None and path.lower().endswith(".zip") and depth >= limits.max_depth:
            problem = f"nested zip too deep (limit {limits.max_depth} levels)"
        if problem is not None:
            skipped.append(Skipped(path, problem))
            continue
        data, problem = _read(zf, info, limits, budget)
        if data is None:
            skipped.append(Skipped(path, problem or "unreadable"))
            continue
        seen.add(path)
        if not path.lower().endswith(".zip"):
            yield ArchiveMember(path, data)
            continue
        try:
            inner = _open_zip(io.BytesIO(data), limits, "nested zip")
        except ArchiveError as err:
            skipped.append(Skipped(path, str(err)))
            continue
        with inner:
            yield from _walk(inner, path + "/", depth + 1, limits, budget, skipped, seen)


def _is_junk(name: str) -> bool:
    """OS litter that users never meant to upload: dropped without a report."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if not parts or "__MACOSX" in parts:
        return True
    last = parts[-1]
    return last.startswith("._") or last.lower() in _JUNK_NAMES


def _clean_path(name: str) -> tuple[str, str | None]:
    """Normalise a member name to a relative POSIX path, or say why it is unsafe."""
    slashed = name.replace("\\", "/")  # Windows tools write backslashes; treat both as separators
    if slashed.startswith("/") or _DRIVE.match(slashed):
        return slashed, "absolute path"
    parts = [p for p in slashed.split("/") if p not in ("", ".")]
    if ".." in parts:
        return slashed, "path escapes the archive ('..')"
    if not parts:
        return slashed, "empty path"
    return "/".join(parts), None


def _refusal(
    info: zipfile.ZipInfo, path: str, limits: ArchiveLimits, budget: _Budget, seen: set[str]
) -> str | None:
    """Why a member must be skipped, judged from its directory entry alone (None = fine)."""
    kind = stat.S_IFMT(info.external_attr >> 16)  # unix mode lives in the high 16 bits
    if kind == stat.S_IFLNK:
        return "symbolic link"
    if kind not in (0, stat.S_IFREG):
        return "not a regular file"
    if info.flag_bits & 0x1:
        return "encrypted"
    if path in seen:
        return "duplicate path in archive"
    if info.file_size > limits.max_member_bytes:
        return f"too large ({info.file_size / 2**20:.1f} MiB > {limits.max_member_bytes / 2**20:.1f} MiB)"
    if info.file_size > limits.ratio_floor_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            return f"zip bomb (compression ratio {ratio:.0f}:1)"
    if info.file_size > budget.left:
        return "archive total size limit reached"
    return None


def _read(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits, budget: _Budget
) -> tuple[bytes | None, str | None]:
    """Read one member under a hard cap; (data, None) or (None, reason)."""
    # Never more than the member cap (+1 to detect overflow) nor the remaining budget.
    cap = min(limits.max_member_bytes, budget.left) + 1
    try:
        with zf.open(info) as stream:
            data = stream.read(cap)
            overflow = len(data) == cap
    except NotImplementedError as err:  # e.g. Deflate64 or AES, which zipfile cannot decode
        return None, f"unsupported compression ({err})"
    except _MEMBER_ERRORS as err:
        return None, f"corrupt data ({str(err) or type(err).__name__})"
    if overflow:
        # The header lied about the size: what we hold is a truncated prefix.
        if len(data) > limits.max_member_bytes:
            return None, f"too large (more than {limits.max_member_bytes / 2**20:.1f} MiB)"
        budget.left = 0
        return None, "archive total size limit reached"
    budget.left -= len(data)
    if len(data) > limits.ratio_floor_bytes and len(data) / max(info.compress_size, 1) > limits.max_ratio:
        return None, "zip bomb (compression ratio)"
    return data, None
