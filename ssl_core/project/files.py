"""The one way Latentlab writes a file or folder beside the database: atomically.

Every project file (images.npy, the map, predictions, models, previews, exports, checkpoints)
is written under a temporary name that is unique to its writer (two writers never share one),
flushed and fsynced, then renamed over its target. A reader sees the old file or the new one,
never half of either, and a crash, a cancel or a full disk leaves at most a temporary file,
which is removed when the failure is seen. A failed write raises FileWriteError, whose
message says what happened in the user's terms (a full disk, a read-only folder).

    with atomic_path(target, "the predictions") as tmp:    # write whatever you like to tmp
        np.savez(tmp, ...)
    write_bytes_atomic(target, data, "the map's metadata")
    with atomic_folder(folder, "the model of run 3") as tmp_folder:
        model.save(tmp_folder)                            # the folder is swapped in whole

torch reports a short write on a full disk as RuntimeError; inside these helpers it counts as
a full disk when the disk is in fact (nearly) full, and propagates otherwise.
"""
from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ssl_core.project.errors import ProjectError

NEARLY_FULL_BYTES = 1 << 20   # less free space than this: a failed write is a full disk


class FileWriteError(ProjectError):
    """A project file could not be written (full disk, read-only folder, ...); nothing that was
    there before changed. `os_error` is the underlying OSError."""

    def __init__(self, message: str, os_error: OSError | None = None):
        super().__init__(message)
        self.os_error = os_error


def temporary_path(target: Path) -> Path:
    """A name beside `target`, unique to this writer (process id and a random part)."""
    target = Path(target)
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def is_temporary(path: Path) -> bool:
    """Whether `path` is a temporary name made by `temporary_path`."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


@contextmanager
def atomic_path(target: str | Path, what: str) -> Iterator[Path]:
    """Yield a temporary path beside `target`; when the block ends without an error the file
    written there is fsynced and renamed over `target`. On any error it is removed; OSError
    (and torch's RuntimeError on a full disk) become FileWriteError."""
    target = Path(target)
    tmp = temporary_path(target)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as err:
        full = _nearly_full(target.parent)             # before the cleanup frees the space
        discard(tmp)
        raise _as_write_error(err, target.parent, what, full) from err


def write_atomic(target: str | Path, write: Callable[[BinaryIO], object], what: str) -> Path:
    """write(fh) into a temporary file, then rename it over `target` (see atomic_path)."""
    with atomic_path(target, what) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return Path(target)


def write_bytes_atomic(target: str | Path, data: bytes, what: str) -> Path:
    return write_atomic(target, lambda fh: fh.write(data), what)


@contextmanager
def atomic_folder(folder: str | Path, what: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside `folder`; when the block succeeds its files are
    fsynced and it replaces `folder` whole (the old one is renamed aside, the new one into
    place, the old one removed: a crash in between leaves either whole, at worst under the
    aside name). On error the temporary folder is removed and FileWriteError says why."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(folder)
    try:
        tmp.mkdir()
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                _fsync_file(file)
    except BaseException as err:
        full = _nearly_full(folder.parent)
        discard(tmp)
        raise _as_write_error(err, folder.parent, what, full) from err
    aside = folder.with_name(f".{folder.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        if folder.exists():
            folder.rename(aside)
        tmp.rename(folder)
        _fsync_dir(folder.parent)
    except OSError as err:                             # renames need no space: rare
        discard(tmp)
        if aside.exists() and not folder.exists():
            aside.rename(folder)
        raise _as_write_error(err, folder.parent, what, False) from err
    shutil.rmtree(aside, ignore_errors=True)


def discard(path: Path) -> None:
    """Remove a half-written file or folder. Each file is emptied first: the writer that
    failed may still hold it open (in its exception's frames), and an open file keeps its
    blocks after it is removed: on a full disk, the room needed to record the failure."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        try:
            os.truncate(file, 0)
        except OSError:
            pass
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_error(err: OSError, folder: Path, what: str) -> FileWriteError:
    """A FileWriteError saying why `what` could not be written into `folder`."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason = f"the disk holding {folder} is full"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"the project folder {folder} is read-only"
    else:
        reason = f"writing into {folder} failed"
    return FileWriteError(f"{reason}: could not save {what}; what was there before is unchanged "
                          f"({err.strerror})", err)


def _as_write_error(err: BaseException, folder: Path, what: str, full: bool) -> BaseException:
    """The exception to raise for `err`: OSError -> FileWriteError; torch's RuntimeError on a
    (nearly) full disk -> FileWriteError; anything else unchanged."""
    if isinstance(err, FileWriteError):          # an inner atomic write (a file of a folder):
        return write_error(err.os_error, folder, what) if err.os_error else err   # outer terms
    if isinstance(err, OSError):
        return write_error(err, folder, what)
    if isinstance(err, RuntimeError) and full:
        return write_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), folder, what)
    return err


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX: fsync the directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def release_rows(arr, start: int, stop: int) -> None:
    """Flush rows start..stop of a writable memory-mapped numpy array (np.memmap or
    np.lib.format.open_memmap) and drop them from this process's resident memory: they stay in
    the page cache and are written back by the kernel, so a file written row by row (pixels,
    features) does not stay resident as it grows."""
    import mmap

    import numpy as np

    mm = getattr(arr, "_mmap", None)
    if mm is None or stop <= start:
        return
    row = int(np.prod(arr.shape[1:])) * arr.itemsize
    base = arr.offset if hasattr(arr, "offset") else 0
    page = mmap.PAGESIZE
    lo = (base + start * row) // page * page
    hi = base + stop * row
    mm.flush(lo, hi - lo) if hi > lo else None
    try:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    except (AttributeError, OSError, ValueError):  # no madvise here: the kernel reclaims later
        pass
