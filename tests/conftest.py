"""Shared fixtures. Every test gets its own LATENTLAB_HOME, so no test touches real projects.

`require()` is how a test says it needs a component (Chromium, the shared datasets): missing
locally it skips, missing in CI (CI=true) it fails, so CI can never pass by skipping."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
sys.path.insert(0, str(REPO))

from ssl_core.data.importer import import_source  # noqa: E402
from ssl_core.data.sources import SourceSpec  # noqa: E402
from ssl_core.project.folder import Project  # noqa: E402


def require(condition: bool, what: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{what} is missing, and CI must provide it")
        pytest.skip(f"{what} is missing")


@pytest.fixture(autouse=True)
def latentlab_home(tmp_path, monkeypatch):
    home = tmp_path / "latentlab-home"
    monkeypatch.setenv("LATENTLAB_HOME", str(home))
    yield home
    _cancel_leftover_jobs(tmp_path)


def _cancel_leftover_jobs(root: Path) -> None:
    """Workers outlive the test that started them (their own session, like in the app): ask
    any still active to stop, so a map or train job a page test started in passing does not
    take the two cores from the tests after it."""
    from ssl_core.jobs import records as jobs

    for db in list(root.glob("**/project.db"))[:20]:
        try:
            store = Project(db.parent).store
            for job in jobs.active_jobs(store):
                jobs.request_cancel(store, job.id)
        except Exception:          # a test may leave a broken or read-only project on purpose
            pass


@pytest.fixture
def project(tmp_path) -> Project:
    return Project.create(tmp_path / "project")


@pytest.fixture
def digits_project(project) -> Project:
    import_source(project, SourceSpec("digits"))
    return project


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The publishers' MNIST / Fashion-MNIST files (read-only), beside the repository."""
    root = Path(os.environ.get("LATENTLAB_TEST_DATA", REPO.parent / "shared" / "data"))
    require((root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file(),
            f"the MNIST files under {root}")
    return root


TEST_WORKER = "job_fixtures"   # the worker module that also knows the test job kinds


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for worker processes that may run the test job kinds (tests/job_fixtures.py,
    started with `module=TEST_WORKER`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


HOSTILE = ["../../etc", "a/b", "a_b", "<script>", "CON", "con.txt", "=SUM(A1)", "..",
           "x\x00\u202ey"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Project:
    """Digits, 5 labels of each of the digits 0-2, one real 'graph' train job in a worker.
    Read-only for the tests that use it (test_export*.py), so built once for the session;
    test_train_page.py has its own `trained`."""
    import time

    import numpy as np

    from ssl_core.data.collection import ImageCollection
    from ssl_core.jobs import records as jobs
    from ssl_core.jobs import worker
    from ssl_core.labeling.classes import add_class
    from ssl_core.labeling.label_log import set_labels

    project = Project.create(tmp_path_factory.mktemp("trained") / "digits")
    import_source(project, SourceSpec("digits"))
    gt = ImageCollection(project).ground_truth()
    for d in range(3):
        cls = add_class(project.store, f"digit {d}")
        pick = np.flatnonzero((gt.labels == d) & ~gt.is_test)[:5]
        set_labels(project.store, pick.tolist(), cls.id)
    job_id = worker.launch(project, "train", {"method": "graph", "budget_s": 20,
                                              "compare_baseline": False})
    deadline = time.monotonic() + 240
    while not (job := jobs.get_job(project.store, job_id)).status.finished:
        assert time.monotonic() < deadline, "the train job did not finish in time"
        time.sleep(0.2)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.error
    return project


@pytest.fixture
def hostile(tmp_path) -> Project:
    """Eight images with formula-like file names, classes with hostile names; images 0-3
    labeled, predictions for all (images 4-6 confident, image 7 not)."""
    import numpy as np
    from PIL import Image

    from ssl_core.labeling.classes import add_class
    from ssl_core.labeling.label_log import set_labels
    from ssl_core.results.predictions import save_predictions

    folder = tmp_path / "files"
    folder.mkdir()
    names = ["=1+1.png", "@cmd.png", "-2.png", "+x.png", "plain.png", "tab.png", "u.png", "v.png"]
    for i, name in enumerate(names):
        Image.new("RGB", (6, 4), (30 * i, 255 - 30 * i, 7 * i)).save(folder / name)
    project = Project.create(tmp_path / "hostile")
    import_source(project, SourceSpec("folder", path=str(folder)))
    ids = {name: add_class(project.store, name).id for name in HOSTILE}
    classes = ["../../etc", "a/b", "a_b", "=SUM(A1)", "CON", "<script>", "x\x00\u202ey", "con.txt"]
    for image, name in enumerate(classes[:4]):
        set_labels(project.store, [image], ids[name])
    columns = list(ids)                                             # class of each column
    proba = np.full((8, len(columns)), 0.01, np.float32)
    for image, name in enumerate(classes):
        proba[image, columns.index(name)] = 0.9 if image < 7 else 0.5
    save_predictions(project, proba, np.array([ids[c] for c in columns]), None, "test")
    return project


def tree_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root (files and folders) with its size and mtime."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            snap[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return snap
