"""Imports at the same moment, and readers during an import (data/import_lock.py, importer.py).

The bad interleavings are forced, not hoped for: an import is held right after writing its new
pixel file (a wrapper around importer.write_pixel_file waits on a threading.Event), and the
other import, the reader or the CLI acts while it is held. Names that only exist since these
races were closed are imported inside the tests, so each test fails on its own on older code.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from test_importer import encode, folder, write_files

from ssl_core import cli
from ssl_core.data import importer
from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.project.folder import Project

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 20            # only reached when the code under test is wrong (a hang, not a race)


def source(root: Path, prefix: str, values: list[int]) -> dict[str, int]:
    """A folder of 8x8 grey PNGs, one solid value each; returns {file name: value}."""
    files = {f"{prefix}{i:02d}.png": v for i, v in enumerate(values)}
    write_files(root, {n: encode(Image.new("L", (8, 8), v), "PNG") for n, v in files.items()})
    return files


def assert_rows_match_sources(project: Project, *sources: dict[str, int]) -> None:
    """Every committed row's pixels are the ones its source gave it, and the pixel file holds
    at least the committed rows."""
    store = ImageCollection(project)
    names, pixels = store.names(), np.asarray(store.images())
    assert len(names) == len(pixels) == store.n_images
    expected = {n: v for s in sources for n, v in s.items()}
    for name, img in zip(names, pixels):
        assert img.shape == (8, 8, 1)
        assert (img == expected[name]).all(), f"row {name!r} holds another image's pixels"


class HeldImport:
    """Runs import_source in a thread and holds it right after its new pixel file is written
    (before the swap and the commit) until `release()`."""

    def __init__(self, monkeypatch, project: Project, spec, **kw):
        self.written, self.go_on = threading.Event(), threading.Event()
        self.result, self.error, self.tmp = None, None, None
        real = importer.write_pixel_file
        held = self

        def write_and_hold(tmp, *args, **kwargs):
            keep = real(tmp, *args, **kwargs)
            if threading.current_thread() is held.thread:
                held.tmp = tmp
                held.written.set()
                assert held.go_on.wait(WAIT_S)
            return keep

        monkeypatch.setattr(importer, "write_pixel_file", write_and_hold)
        self.thread = threading.Thread(target=self._run, args=(project, spec), kwargs=kw)

    def _run(self, project, spec, **kw):
        try:
            self.result = import_source(project, spec, **kw)
        except BaseException as err:                       # checked by the test
            self.error = err
        finally:
            self.written.set()                             # never leave the test waiting

    def start(self) -> "HeldImport":
        self.thread.start()
        assert self.written.wait(WAIT_S)
        return self

    def release(self):
        self.go_on.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()
        return self


# ----------------------------------------------------------------- (1) two imports at once
def test_second_import_at_the_same_moment_is_refused_in_one_line(project, tmp_path, monkeypatch):
    a = source(tmp_path / "a", "a", [10, 20, 30])
    b = source(tmp_path / "b", "b", [200, 210])
    first = HeldImport(monkeypatch, project, folder(tmp_path / "a")).start()
    try:
        try:
            second = import_source(project, folder(tmp_path / "b"))
        except Exception as err:                 # noqa: BLE001 - which one is checked below
            second = err
    finally:
        first.release()
    assert_rows_match_sources(project, a, b)    # first of all: rows and pixels agree
    assert type(second).__name__ == "ImportBusy", f"not refused: {second!r}"
    message = str(second)
    assert "another import into project project is running" in message and "\n" not in message
    assert "folder:a" in message                          # says which import holds the project
    assert first.error is None and first.result.imported == 3
    assert_rows_match_sources(project, a)
    assert ImageCollection(project).n_images == 3
    import_source(project, folder(tmp_path / "b"))        # once it has finished: appended
    assert_rows_match_sources(project, a, b)
    assert ImageCollection(project).n_images == 5
    assert sorted(p.name for p in project.root.iterdir() if p.name.startswith(".")) == []


def test_the_app_import_job_queues_behind_a_running_import(project, tmp_path, monkeypatch):
    from ssl_core.jobs.import_job import run_import_job

    a = source(tmp_path / "a", "a", [10, 20, 30])
    b = source(tmp_path / "b", "b", [200, 210])
    first = HeldImport(monkeypatch, project, folder(tmp_path / "a")).start()
    waiting, messages, outcome = threading.Event(), [], {}

    def progress(fraction, message=None):
        messages.append(message)
        if message and message.startswith("waiting for another import"):
            waiting.set()

    ctx = SimpleNamespace(project=project, progress=progress)

    def second():
        try:
            outcome["result"] = run_import_job(
                ctx, {"source": {"kind": "folder", "path": str(tmp_path / "b")}})
        except BaseException as err:
            outcome["error"] = err
        finally:
            waiting.set()

    job = threading.Thread(target=second)
    job.start()
    try:
        assert waiting.wait(WAIT_S)
        assert "error" not in outcome and "result" not in outcome    # it waits, and says so
        assert ImageCollection(project).n_images == 0
    finally:
        first.release()
        job.join(WAIT_S)
    assert first.error is None and outcome.get("error") is None
    assert outcome["result"]["imported"] == 2 and outcome["result"]["first_id"] == 3
    assert "waiting for another import into project project to finish (source folder:a" \
        in next(m for m in messages if m and m.startswith("waiting"))
    assert_rows_match_sources(project, a, b)


def test_a_waiting_import_job_can_be_cancelled_and_changes_nothing(project, tmp_path, monkeypatch):
    from ssl_core.jobs.import_job import run_import_job

    class Cancelled(Exception):
        pass

    a = source(tmp_path / "a", "a", [10, 20])
    source(tmp_path / "b", "b", [200])
    first = HeldImport(monkeypatch, project, folder(tmp_path / "a")).start()
    calls = []

    def progress(fraction, message=None):        # the worker's ctx.progress: a cancel point
        calls.append(message)
        if message and message.startswith("waiting for another import"):
            raise Cancelled()

    try:
        with pytest.raises(Cancelled):
            run_import_job(SimpleNamespace(project=project, progress=progress),
                           {"source": {"kind": "folder", "path": str(tmp_path / "b")}})
    finally:
        first.release()
    assert not any(m and m.startswith("opening") for m in calls)   # never began importing
    assert_rows_match_sources(project, a)


def test_cli_import_while_another_runs_prints_one_line_and_fails(project, tmp_path, monkeypatch,
                                                                 capsys):
    a = source(tmp_path / "a", "a", [10, 20, 30])
    source(tmp_path / "b", "b", [200, 210])
    first = HeldImport(monkeypatch, project, folder(tmp_path / "a")).start()
    try:
        rc = cli.main(["import", "--project", str(project.root), "--source", "folder",
                       "--path", str(tmp_path / "b")])
    finally:
        first.release()
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("error: another import into project project is running")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert_rows_match_sources(project, a)


def test_the_lock_is_held_across_processes_and_freed_when_its_holder_dies(project, tmp_path):
    from ssl_core.data.import_lock import ImportBusy, running_import

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from ssl_core.data.import_lock import import_lock; "
         "from pathlib import Path; from ssl_core.project.folder import Project\n"
         f"with import_lock(Project(Path({str(project.root)!r})), 'mnist'):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        source(tmp_path / "b", "b", [200, 210])
        with pytest.raises(ImportBusy, match=f"source mnist, pid {holder.pid}, started"):
            import_source(project, folder(tmp_path / "b"))
        assert running_import(project) == f"source mnist, pid {holder.pid}"
    finally:
        holder.kill()                                    # SIGKILL: no cleanup of its own
        holder.wait()
    assert running_import(project) is None
    assert import_source(project, folder(tmp_path / "b")).imported == 2


# ------------------------------------------------------------------ (2) readers and imports
def test_committed_rows_keep_their_bytes_for_readers_across_imports(project, tmp_path,
                                                                    monkeypatch):
    """A reader maps the images, imports run (one held mid-way while another is tried): the
    reader's map stays readable with the same bytes (no SIGBUS: the file is renamed over,
    never truncated), and every row once committed reads the same from then on."""
    a = source(tmp_path / "a", "a", [10, 20, 30])
    b = source(tmp_path / "b", "b", [100, 110])
    c = source(tmp_path / "c", "c", [200, 210])
    import_source(project, folder(tmp_path / "a"))
    store = ImageCollection(project)
    reader = store.images()                            # memory-mapped, 3 rows
    seen = np.array(reader)
    held = HeldImport(monkeypatch, project, folder(tmp_path / "b")).start()
    try:
        try:
            import_source(project, folder(tmp_path / "c"))   # refused now (or, before: raced)
        except Exception:                                    # noqa: BLE001 - any refusal
            pass
        assert (np.asarray(reader) == seen).all()
        later = store.images()                             # whatever is committed now
        later_seen = np.array(later)
    finally:
        held.release()
    assert (np.asarray(reader) == seen).all()               # touched after two swaps
    assert (np.asarray(later) == later_seen).all()
    now = np.asarray(store.images())
    assert (now[:len(seen)] == seen).all()
    assert (now[:len(later_seen)] == later_seen).all(), \
        "rows committed earlier now hold other pixels"
    assert_rows_match_sources(project, a, b, c)


# ------------------------------------------------------------------ (3) temporary files
def test_temporary_names_are_per_import_and_cleaned_up(project, tmp_path, monkeypatch):
    source(tmp_path / "a", "a", [10, 20])
    source(tmp_path / "b", "b", [200])
    # What a killed import leaves: a temporary named for a process that no longer exists.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = project.root / f".images.npy.{dead.pid}-0123abcd.tmp"
    leftover.write_bytes(b"\0" * 4096)
    names = []
    real = importer.write_pixel_file
    monkeypatch.setattr(importer, "write_pixel_file",
                        lambda tmp, *a, **k: (names.append(tmp), real(tmp, *a, **k))[1])
    import_source(project, folder(tmp_path / "a"))
    import_source(project, folder(tmp_path / "b"))
    assert len(names) == 2 and names[0] != names[1]
    for name in names:
        assert name.parent == project.root and name != project.images_path
        assert f".{os.getpid()}-" in name.name and not name.exists()
    assert not leftover.exists()                       # removed by the next import, under its lock

    def fail_after_writing(tmp, *a, **k):             # a failure after the file was written
        names.append(tmp)
        real(tmp, *a, **k)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importer, "write_pixel_file", fail_after_writing)
    before = np.array(ImageCollection(project).images())
    with pytest.raises(Exception, match="full"):
        import_source(project, folder(tmp_path / "b"))
    assert not names[-1].exists()
    assert sorted(p.name for p in project.root.glob(".images.npy.*")) == []
    assert (np.asarray(ImageCollection(project).images()) == before).all()


# ------------------------------------------------------------ (4) checks that survive -O
def test_consistency_checks_raise_under_python_O():
    code = """
import sys
import numpy as np
from ssl_core.data.importer import ImportInconsistent, check_append
assert sys.flags.optimize == 1
assert False, "asserts are gone under -O"
good = dict(n_old=3, n_now=3, old_shape=(8, 8, 1), shape=(8, 8, 1), file_shape=(5, 8, 8, 1),
            keep=np.ones(2, bool), names=["x", "y"], gt=np.array([-1, 0]),
            is_test=np.zeros(2, bool), n_classes=1)
check_append(**good)
bad = [dict(n_now=5), dict(file_shape=(4, 8, 8, 1)), dict(keep=np.ones(3, bool)),
       dict(names=["x"]), dict(old_shape=(8, 8, 3)), dict(gt=np.array([0, 1]))]
for change in bad:
    try:
        check_append(**{**good, **change})
    except ImportInconsistent as err:
        assert "\\n" not in str(err)
        print("raised:", err)
    else:
        print("NOT RAISED", change)
"""
    out = subprocess.run([sys.executable, "-O", "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "NOT RAISED" not in out.stdout and out.stdout.count("raised:") == 6, out.stdout
    assert "another import" in out.stdout and "the pixel file holds (4, 8, 8, 1)" in out.stdout


def test_a_failed_check_stops_the_import_before_the_swap(project, tmp_path, monkeypatch):
    from ssl_core.project.errors import ProjectError

    a = source(tmp_path / "a", "a", [10, 20])
    source(tmp_path / "b", "b", [200, 210])
    import_source(project, folder(tmp_path / "a"))
    real = importer.write_pixel_file
    tmps = []

    def writes_fewer_flags(tmp, *a, **k):            # a writer that loses track of one image
        tmps.append(tmp)
        return real(tmp, *a, **k)[:-1]

    monkeypatch.setattr(importer, "write_pixel_file", writes_fewer_flags)
    file_before = project.images_path.stat().st_ino
    with pytest.raises(Exception) as err:         # noqa: PT011 - which one is checked below
        import_source(project, folder(tmp_path / "b"))
    assert project.images_path.stat().st_ino == file_before, "swapped in before the check"
    assert not tmps[0].exists()
    assert_rows_match_sources(project, a)
    assert type(err.value).__name__ == "ImportInconsistent", repr(err.value)
    assert isinstance(err.value, ProjectError)        # the CLI prints it as one line
    assert "written-image flags for 2 images" in str(err.value)


def test_a_waiter_that_locks_a_lock_file_just_removed_locks_the_current_one(project, monkeypatch):
    """The lock file is removed by each holder before it lets go; an import that opened it
    just before must not count the old, removed file as the lock."""
    from ssl_core.data import import_lock as lock

    opened, release, released = threading.Event(), threading.Event(), threading.Event()

    def first():
        with lock.import_lock(project, "first"):
            opened.set()
            release.wait(WAIT_S)
        released.set()

    holder = threading.Thread(target=first)
    holder.start()
    assert opened.wait(WAIT_S)
    real_open, inodes = lock._open, []

    def open_then_let_go(path):               # opened while held; the holder then lets go
        fd = real_open(path)
        inodes.append(os.fstat(fd).st_ino)
        if not release.is_set():
            release.set()
            assert released.wait(WAIT_S)
        return fd

    monkeypatch.setattr(lock, "_open", open_then_let_go)
    with lock.import_lock(project, "second"):
        assert lock.running_import(project) == f"source second, pid {os.getpid()}"
        current = lock.lock_path(project).stat().st_ino
    holder.join(WAIT_S)
    assert len(inodes) == 2 and inodes[-1] == current     # tried again on the file there now
    assert not lock.lock_path(project).exists()
