"""When writing a project file beside the database fails (a full disk, a read-only folder).

Project files (images.npy, predictions, models) are written to a temporary name and renamed
into place, so a failure can only leave the temporary file behind. `discard` removes it, and
`write_error` turns the OSError into a StoreError that says what happened in the user's terms.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .store import StoreError


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


def write_error(err: OSError, folder: Path, what: str) -> StoreError:
    """A StoreError saying why `what` could not be written into `folder` (after `discard`)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason = f"the disk holding {folder} is full"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"the project folder {folder} is read-only"
    else:
        reason = f"writing into {folder} failed"
    return StoreError(f"{reason}: could not save {what}; what was there before is unchanged "
                      f"({err.strerror})")
