"""Job lifecycle with real worker processes: finish, fail, cancel, kill -9, never started."""
import os
import signal
import time

from conftest import TEST_WORKER, worker_env

from ssl_core.data.collection import ImageCollection
from ssl_core.jobs import records as jobs
from ssl_core.jobs import worker
from ssl_core.jobs.records import JobStatus


def wait_for(project, job_id, predicate, timeout=30.0) -> jobs.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_job(project.store, job_id)
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never satisfied the condition: {job}")


def finished(job):
    return job.status.finished


def test_import_job_runs_in_a_worker_and_succeeds(project):
    job_id = worker.launch(project, "import", {"source": {"kind": "digits"}})
    job = wait_for(project, job_id, finished, timeout=60)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.result["imported"] == 1797 and job.progress == 1.0
    assert ImageCollection(project).n_images == 1797
    assert (project.logs_dir / f"job-{job_id}.log").is_file()


def test_progress_is_reported_and_job_finishes(project):
    job_id = worker.launch(project, "test.sleep", {"seconds": 1.5}, env=worker_env(), module=TEST_WORKER)
    running = wait_for(project, job_id, lambda j: j.progress > 0.2)
    assert running.status is JobStatus.RUNNING and running.message.startswith("step")
    job = wait_for(project, job_id, finished)
    assert job.status is JobStatus.SUCCEEDED and job.result == {"steps": 15}


def test_failing_job_records_its_error(project):
    job_id = worker.launch(project, "test.fail", {"message": "disk on fire"}, env=worker_env(), module=TEST_WORKER)
    job = wait_for(project, job_id, finished)
    assert job.status is JobStatus.FAILED
    assert "RuntimeError: disk on fire" in job.error


def test_unknown_kind_fails_cleanly(project):
    job = wait_for(project, worker.launch(project, "no-such-kind"), finished)
    assert job.status is JobStatus.FAILED and "unknown job kind" in job.error


def test_cancel_stops_a_running_job(project):
    job_id = worker.launch(project, "test.sleep", {"seconds": 30}, env=worker_env(), module=TEST_WORKER)
    wait_for(project, job_id, lambda j: j.status is JobStatus.RUNNING)
    t0 = time.monotonic()
    jobs.request_cancel(project.store, job_id)
    job = wait_for(project, job_id, finished, timeout=10)
    assert job.status is JobStatus.CANCELLED
    assert time.monotonic() - t0 < 5


def test_cancel_of_a_job_that_ignores_it_stops_the_worker(project):
    env = worker_env(LATENTLAB_CANCEL_GRACE_S="1")
    job_id = worker.launch(project, "test.deaf", {"seconds": 120}, env=env, module=TEST_WORKER)
    wait_for(project, job_id, lambda j: j.status is JobStatus.RUNNING)
    jobs.request_cancel(project.store, job_id)
    job = wait_for(project, job_id, finished, timeout=10)
    assert job.status is JobStatus.CANCELLED


def test_cancel_of_a_queued_job_is_immediate(project):
    job_id = jobs.create_job(project.store, "test.sleep", {})
    jobs.request_cancel(project.store, job_id)
    assert jobs.get_job(project.store, job_id).status is JobStatus.CANCELLED
    assert not jobs.claim(project.store, job_id, os.getpid())  # a late worker cannot take it


def test_killed_worker_shows_as_failed_within_seconds(project):
    job_id = worker.launch(project, "test.sleep", {"seconds": 60}, env=worker_env(), module=TEST_WORKER)
    wait_for(project, job_id, lambda j: j.status is JobStatus.RUNNING)
    with project.store.read() as conn:
        pid = conn.execute("SELECT pid FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    job = wait_for(project, job_id, finished, timeout=jobs.STALE_AFTER_S + 5)
    assert job.status is JobStatus.FAILED and "stopped responding" in job.error
    assert time.monotonic() - t0 < jobs.STALE_AFTER_S + 3


def test_job_that_never_starts_is_reported(project):
    job_id = jobs.create_job(project.store, "import", {})
    assert jobs.reap_stale(project.store, now=time.time() + jobs.START_TIMEOUT_S + 1) == [job_id]
    job = jobs.get_job(project.store, job_id)
    assert job.status is JobStatus.FAILED and "failed to start" in job.error


def test_a_finished_job_keeps_its_first_outcome(project):
    job_id = jobs.create_job(project.store, "x", {})
    assert jobs.claim(project.store, job_id, 1)
    assert jobs.succeed(project.store, job_id, {"ok": True})
    assert not jobs.fail(project.store, job_id, "late")
    assert jobs.get_job(project.store, job_id).status is JobStatus.SUCCEEDED
