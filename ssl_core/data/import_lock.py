"""One import per project at a time, across processes: the app's import jobs, the CLI, tests.

Every import holds an exclusive `fcntl.flock` on `<project>/.import.lock` from before it reads
the project's image count until its rows are committed. The choice, and why:

- flock belongs to the open file, so the kernel drops it when the holder's process ends in any
  way (crash, SIGKILL, a full disk): a dead import never leaves the project locked, and nothing
  has to guess whether a recorded holder is still alive (a row in the database would need that).
- Each `import_lock` opens the file itself, so two threads of one process (two browser tabs
  served by one Streamlit server) exclude each other too (POSIX `lockf` locks would not).
- A second import either is refused at once with ImportBusy, a one-line message naming the
  running import (the CLI: the user runs it again later), or waits its turn (`wait=True`,
  the app's import job: two tabs importing queue, the waiting one says so in its progress and
  can be cancelled there).

The lock file exists only while an import holds it (the holder removes it before letting go; a
waiter that locked a file no longer at that path tries again), so a project folder at rest has
no extra file. It holds a line about its holder (pid, source, start time), for the messages
only; the lock itself is the flock, never the file's contents or its presence (a killed import
leaves the file behind, unlocked). Holding the lock also makes it safe to remove what a killed
import left behind (its temporary pixel file, by name: see `remove_stale_temporaries`).
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ssl_core.project.errors import ProjectError
from ssl_core.project.files import write_error
from ssl_core.project.folder import Project

LOCK_NAME = ".import.lock"
POLL_S = 0.5                  # a waiting import tries the lock (and calls `waiting`) this often


class ImportBusy(ProjectError):
    """Another import into the same project is running; the message says which, in one line."""


def lock_path(project: Project) -> Path:
    return project.root / LOCK_NAME


@contextmanager
def import_lock(project: Project, source_label: str, wait: bool = False,
                waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the project's import lock for the block. Held by another import: raise ImportBusy
    (wait=False), or try again every POLL_S seconds, calling `waiting(message)` each time (it
    may raise to give up, e.g. a cancelled job)."""
    project.root.mkdir(parents=True, exist_ok=True)
    path = lock_path(project)
    while True:
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            if not wait:
                raise ImportBusy(busy_message(project, holder)) from None
            if waiting is not None:
                waiting(f"waiting for another import into project {project.name} to finish"
                        + _holder_now(path))
            time.sleep(POLL_S)
            continue
        if _is_current(fd, path):
            break
        os.close(fd)          # its holder removed it as we opened it: lock the one there now
    try:
        _describe_holder(fd, source_label)
        yield
    finally:
        try:
            path.unlink()     # while still held: a waiter that opened it sees that and retries
        except OSError:       # read-only folder: an empty file is left, harmless
            _describe_holder(fd, None)
        os.close(fd)          # releases the lock


def running_import(project: Project) -> str | None:
    """'source mnist, pid 123' while an import into `project` runs, else None: read from the
    holder's line (its file is removed when it finishes; a killed holder's pid is no longer
    alive). Takes no lock, so a glance never makes an import be refused; it may be stale a
    moment later."""
    try:
        pid, _, label = lock_path(project).read_text().rstrip("\n").split("\t", 2)
        return f"source {label}, pid {int(pid)}" if _alive(int(pid)) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def busy_message(project: Project, holder: str) -> str:
    return (f"another import into project {project.name} is running{holder}: "
            "import again when it has finished")


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        try:                                       # read-only folder: flock works read-only
            return os.open(path, os.O_RDONLY)
        except OSError:
            raise write_error(err, path.parent, "the import") from err


def _describe_holder(fd: int, source_label: str | None) -> None:
    """Write this holder's line into the lock file (None: empty it, the import is over)."""
    label = "".join(c if c.isprintable() else "?" for c in source_label or "")[:200]  # one line
    line = f"{os.getpid()}\t{time.time():.0f}\t{label}\n".encode() if source_label is not None else b""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, line, 0)
    except OSError:                                # read-only: the message just names no one
        pass


def _is_current(fd: int, path: Path) -> bool:
    """Whether the file locked through `fd` is still the one at `path`."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder_now(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        return _holder(fd, ago=False)
    finally:
        os.close(fd)


def _holder(fd: int, ago: bool = True) -> str:
    """' (source mnist, pid 123, started 12 s ago)' from the lock file, '' when unreadable."""
    try:
        pid, started, label = os.pread(fd, 1024, 0).decode().rstrip("\n").split("\t", 2)
        return (f" (source {label}, pid {int(pid)}"
                + (f", started {max(0.0, time.time() - float(started)):.0f} s ago)" if ago else ")"))
    except (OSError, ValueError, UnicodeDecodeError):
        return ""


_TEMPORARY = re.compile(r"^\.images\.npy\.(\d+)-[0-9a-f]+\.tmp$")   # project/files.py's names


def remove_stale_temporaries(project: Project) -> list[Path]:
    """Remove temporary pixel files of imports that died before cleaning up (killed). Call
    while holding the import lock: then no other import is writing one; a file whose process
    is still alive is left alone all the same. Unlinked, never truncated: unlinking leaves any
    memory map of the file valid."""
    removed = []
    for path in project.root.glob(".images.npy.*.tmp"):
        m = _TEMPORARY.match(path.name)
        if m is None or _alive(int(m.group(1))):
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                                # exists, someone else's
        return True
    return True
