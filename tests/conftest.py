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

from ssl_core.importer import import_source  # noqa: E402
from ssl_core.project import Project  # noqa: E402
from ssl_core.sources import SourceSpec  # noqa: E402


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
    from ssl_core import jobs

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


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for worker processes that may run the test job kinds (tests/job_fixtures.py)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")])
    env["LATENTLAB_JOB_PLUGINS"] = "job_fixtures"
    env.update(extra)
    return env


def tree_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root (files and folders) with its size and mtime."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            snap[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return snap
