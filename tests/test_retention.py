"""Run retention: the newest N model folders per method stay, plus pinned, exported, current and
in-progress runs; the others are deleted and the bytes freed reported. And the project's disk
use by part, as the Jobs page shows it."""
import numpy as np
import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from ssl_core.jobs import records as jobs
from ssl_core.project.disk_use import disk_use, human_bytes
from ssl_core.project.folder import Project, projects_dir
from ssl_core.results import retention
from ssl_core.results.predictions import save_predictions
from ssl_core.results.runs import create_run, finish_run


def _run(project: Project, method: str, size: int, *, job_id=None, finished=True) -> int:
    """A run with a model folder of `size` bytes (two files, one in a sub-folder)."""
    run_id = create_run(project.store, method, {}, 10, job_id)
    folder = project.models_dir / f"run-{run_id}"
    (folder / "graph").mkdir(parents=True)
    (folder / "weights.pt").write_bytes(b"w" * (size - 100))
    (folder / "graph" / "cache.npz").write_bytes(b"g" * 100)
    if finished:
        finish_run(project.store, run_id, {"n_labels": 10})
    return run_id


def test_prune_keeps_newest_per_method_pinned_exported_current_and_running(project):
    store = project.store
    default = [_run(project, "default", 1000 + k) for k in range(9)]        # oldest first
    gan = [_run(project, "ssl_gan", 500) for _ in range(2)]
    running_job = jobs.create_job(store, "train", {})                       # queued
    running = _run(project, "default", 700, job_id=running_job, finished=False)
    failed_job = jobs.create_job(store, "train", {})
    jobs.fail(store, failed_job, "boom")
    failed = _run(project, "default", 300, job_id=failed_job, finished=False)
    retention.set_pinned(store, default[0])
    retention.set_pinned(store, default[1])
    retention.set_pinned(store, default[1], False)                          # unpinned again
    retention.mark_exported(store, default[2])
    save_predictions(project, np.full((4, 2), 0.5), np.array([1, 2]), default[3], "default")
    (project.models_dir / "vae").mkdir()                                    # the map's model
    (project.models_dir / "run-999").mkdir()                                # no such run: left
    (project.models_dir / ".deleting-run-77-0000").mkdir()                  # a prune cut short

    # newest 3 'default' folders: failed, running, default[8]; running is protected anyway
    plan = retention.plan_prune(project, keep=3)
    expected = [default[7], default[6], default[5], default[4], default[1]]
    assert plan.deleted == expected
    sizes = {r: 1000 + k for k, r in enumerate(default)}
    assert plan.freed_bytes == sum(sizes[r] for r in expected)
    assert all((project.models_dir / f"run-{r}").is_dir() for r in expected)  # a plan only

    done = retention.prune_runs(project, keep=3)
    assert done.deleted == expected and done.freed_bytes == plan.freed_bytes
    left = {p.name for p in project.models_dir.iterdir()}
    assert left == {f"run-{r}" for r in [default[0], default[2], default[3], default[8], *gan,
                                         running, failed, 999]} | {"vae"}
    assert retention.prune_runs(project, keep=3).deleted == []             # nothing more to do
    assert len(retention.pinned_runs(store)) == 1                          # rows kept; pins too
    with pytest.raises(ValueError):
        retention.prune_runs(project, keep=0)


def test_disk_use_sums_each_part(project):
    (project.root / "images.npy").write_bytes(b"i" * 5000)
    (project.root / "features").mkdir()
    (project.root / "features" / "x.npy").write_bytes(b"f" * 3000)
    (project.root / "layout.npy").write_bytes(b"l" * 200)
    (project.models_dir / "vae").mkdir(parents=True)
    (project.models_dir / "vae" / "weights.pt").write_bytes(b"v" * 800)
    run = _run(project, "default", 1200)
    use = disk_use(project)
    assert use.bytes_by_part["images"] == 5000 and use.bytes_by_part["features"] == 3000
    assert use.bytes_by_part["map"] == 1000 and use.bytes_by_run == {run: 1200}
    assert use.bytes_by_part["runs"] == 1200
    db = sum(p.stat().st_size for p in project.root.glob("project.db*"))
    assert use.bytes_by_part["database"] == db > 0 and use.total >= 10_400
    assert human_bytes(1_234_567) == "1.2 MB"


def test_jobs_page_shows_disk_use_and_pins_a_run():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    project = Project.open(projects_dir() / "digits")
    runs = [_run(project, "default", 2000) for _ in range(7)]
    at.switch_page("pages/jobs.py").run()
    assert not at.exception, at.exception
    assert any(h.value.startswith("Disk use: ") for h in at.subheader)
    assert any("Images " in c.value and "Models (runs) 14.0 kB" in c.value for c in at.caption)
    at.multiselect(key="runs_pinned").select(runs[0]).run()
    assert retention.pinned_runs(project.store) == {runs[0]}
    at.button(key="prune_runs").click().run()                    # 7 runs, keep 5: runs[1] goes
    assert not at.exception, at.exception
    assert sorted(p.name for p in project.models_dir.glob("run-*")) == sorted(
        f"run-{r}" for r in [runs[0], *runs[2:]])
