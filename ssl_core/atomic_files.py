"""When writing a project file beside the database fails (a full disk, a read-only folder).

Project files (images.npy, predictions, models) are written to a temporary name and renamed
into place, so a failure can only leave the temporary file behind. `discard` removes it, and
`write_error` turns the OSError into a StoreError that says what happened in the user's terms;
`save_model_folder` does both around an estimator's `save`.
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


def save_model_folder(model, tmp: Path, what: str) -> None:
    """model.save(tmp) (a folder the caller then renames into place). A failed write removes
    tmp and raises StoreError; torch reports a short write on a full disk as RuntimeError, which
    counts as a full disk only when the disk is in fact (nearly) full, else it propagates."""
    tmp = Path(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save(tmp)
    except (OSError, RuntimeError) as err:
        full = shutil.disk_usage(tmp.parent).free < 1 << 20      # before the cleanup frees it
        discard(tmp)
        if not isinstance(err, OSError):
            if not full:
                raise
            err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise write_error(err, tmp.parent, what) from err
