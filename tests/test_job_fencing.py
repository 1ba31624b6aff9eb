"""Concurrency without surprises: a worker whose job was reaped writes nothing more; a cancel
that comes after the job's work is done does not undo it; two sessions starting the map at once
get one job; a train job's labels and pixels are of one moment.

Deterministic: jobs run in this process (worker.run_job) with a stand-in estimator whose fit
calls the reaper with a `now` far in the future (what the UI does when it thinks the worker is
dead), threads start together at a barrier, and an import is injected between two reads."""
import hashlib
import os
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from ssl_core.data.collection import ImageCollection
from ssl_core.features.choice import META_KEY, PIXELS
from ssl_core.jobs import records as jobs
from ssl_core.jobs import train_job, worker
from ssl_core.jobs.records import ClaimLost, JobStatus
from ssl_core.jobs.retrain import record_snapshot, request_retrain
from ssl_core.labeling.classes import add_class
from ssl_core.labeling.label_log import labels_version, set_labels
from ssl_core.results.predictions import load_predictions, predictions_path, save_predictions
from ssl_core.results.runs import list_runs, log_metrics, run_metrics

TRAIN = {"method": "default", "budget_s": 5, "compare_baseline": False, "warm_start": False}


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class StandIn:
    """An estimator that fits instantly; `during` maps a stage ('fit', 'predict', 'save') to
    what happens there (e.g. the job is reaped)."""
    warm_startable = False
    validation_ = None

    def __init__(self, during=None):
        self.during = during or {}
        self.seen = None

    def _at(self, stage):
        if stage in self.during:
            self.during[stage]()

    def fit(self, X, y, callbacks=(), time_budget_s=0, features=None, **_):
        self.seen = (len(X), len(y))
        self.classes_ = np.unique(y[y >= 0])
        self._at("fit")
        step = SimpleNamespace(stage="fit", metrics={"val_accuracy": 0.5}, losses={"loss": 1.0})
        for callback in callbacks:
            callback(step)                    # logs metrics and progress: fenced writes
        return self

    def preview(self, *_, **__):
        return None

    def predict_proba(self, X, features=None):
        self._at("predict")
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_), np.float32)

    def save(self, folder):
        self._at("save")
        (folder / "config.json").write_text("{}")


def labeled(project) -> list[int]:
    """Two classes, 5 labeled training images each; the representation is pixels."""
    project.store.set_meta(META_KEY, PIXELS)
    gt = ImageCollection(project).ground_truth()
    ids = []
    for d in (0, 1):
        cls = add_class(project.store, str(d))
        pick = np.flatnonzero((gt.labels == d) & ~gt.is_test)[:5]
        set_labels(project.store, pick.tolist(), cls.id, user="t")
        ids.append(cls.id)
    return ids


def reap_now(project):
    assert jobs.reap_stale(project.store, now=time.time() + 3600)   # the UI thinks it is dead


# ---- (1) a reaped worker writes nothing more ---------------------------------------------------

@pytest.mark.parametrize("stage", ["fit", "predict", "save"])
def test_a_reaped_train_worker_writes_nothing_more(digits_project, monkeypatch, stage):
    project = digits_project
    labeled(project)
    n = ImageCollection(project).n_images
    save_predictions(project, np.full((n, 2), 0.5, np.float32), np.array([1, 2]), None, "before")
    before = sha(predictions_path(project))
    model = StandIn({stage: lambda: reap_now(project)})
    monkeypatch.setattr(train_job, "make_estimator", lambda *a, **k: model)
    job_id = jobs.create_job(project.store, "train", TRAIN)

    assert worker.run_job(project, job_id) == 0                      # stopped quietly
    job = jobs.get_job(project.store, job_id)
    assert job.status is JobStatus.FAILED and "stopped responding" in job.error   # the reaper's
    assert sha(predictions_path(project)) == before                  # predictions untouched
    run = list_runs(project.store)[0]
    assert run.job_id == job_id and run.summary is None              # no summary
    if stage == "fit":
        assert run_metrics(project.store, run.id) == {}              # no metrics after the reap
    assert not (project.models_dir / f"run-{run.id}").exists()       # no model published
    leftovers = [p for p in project.root.rglob(".*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_every_write_of_a_lost_claim_is_refused(project):
    job_id = jobs.create_job(project.store, "x", {})
    claim = jobs.claim(project.store, job_id, os.getpid())
    assert not jobs.heartbeat(project.store, job_id, claim)          # owned: beats, no cancel
    from ssl_core.results.runs import create_run
    run_id = create_run(project.store, "m", {}, 0, job_id, fence=claim.fence)
    reap_now(project)
    for write in (lambda: jobs.heartbeat(project.store, job_id, claim),
                  lambda: jobs.set_progress(project.store, job_id, 0.5, "late", claim=claim),
                  lambda: log_metrics(project.store, run_id, 1, {"loss": 1.0}, fence=claim.fence),
                  lambda: save_predictions(project, np.ones((3, 2), np.float32), np.array([1, 2]),
                                           run_id, "m", check=claim.check)):
        with pytest.raises(ClaimLost):
            write()
    assert not jobs.succeed(project.store, job_id, {"late": True}, claim=claim)
    job = jobs.get_job(project.store, job_id)
    assert job.status is JobStatus.FAILED and job.progress == 0 and job.result is None
    assert run_metrics(project.store, run_id) == {} and not predictions_path(project).exists()


def test_a_live_worker_queued_behind_the_write_lock_is_not_reaped(project):
    """Liveness goes through the alive file, which needs no database lock: a worker whose
    database writes wait (heartbeat_at old) is alive while it keeps touching it."""
    job_id = jobs.create_job(project.store, "x", {})
    claim = jobs.claim(project.store, job_id, os.getpid())
    jobs.heartbeat(project.store, job_id, claim)                     # touches the file now
    with project.store.write() as conn:                              # row's heartbeat long ago
        conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (time.time() - 60, job_id))
    assert jobs.reap_stale(project.store) == []
    assert jobs.get_job(project.store, job_id).status is JobStatus.RUNNING


# ---- (2) a late cancel --------------------------------------------------------------------------

def test_a_cancel_that_arrives_after_the_work_is_done_is_ignored(project, monkeypatch):
    monkeypatch.setattr(jobs, "HEARTBEAT_INTERVAL_S", 0.02)

    def finishes_then_sees_a_cancel(ctx, params):
        jobs.request_cancel(ctx.project.store, ctx.job_id)           # the user clicks Cancel ...
        deadline = time.monotonic() + 10
        while not ctx.cancelled:                                     # ... the worker sees it ...
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return {"written": True}                                     # ... after the outputs

    monkeypatch.setitem(worker._REGISTERED, "test.late_cancel", finishes_then_sees_a_cancel)
    job_id = jobs.create_job(project.store, "test.late_cancel", {})
    assert worker.run_job(project, job_id) == 0
    job = jobs.get_job(project.store, job_id)
    assert job.status is JobStatus.SUCCEEDED and job.result == {"written": True}


def test_a_cancel_after_finish_leaves_the_job_succeeded(project):
    job_id = jobs.create_job(project.store, "x", {})
    claim = jobs.claim(project.store, job_id, os.getpid())
    assert jobs.succeed(project.store, job_id, {"ok": True}, claim=claim)
    jobs.request_cancel(project.store, job_id)
    job = jobs.get_job(project.store, job_id)
    assert job.status is JobStatus.SUCCEEDED and not job.cancel_requested


# ---- (3) idempotent launches --------------------------------------------------------------------

def at_once(n_threads: int, call):
    barrier, out, errors = threading.Barrier(n_threads), [], []

    def run():
        barrier.wait()
        try:
            out.append(call())
        except Exception as err:           # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return out


def kind_rows(project, kind):
    with project.store.read() as conn:
        return conn.execute("SELECT id, status FROM jobs WHERE kind = ? ORDER BY id",
                            (kind,)).fetchall()


def test_two_sessions_starting_the_map_at_once_get_one_job(project):
    started = []
    start = lambda p, job_id: started.append(job_id)                  # noqa: E731
    out = at_once(2, lambda: worker.launch_once(project, "map", {"n_images": 10},
                                                unless_same="n_images", start=start))
    rows = kind_rows(project, "map")
    assert len(rows) == 1 and started == [rows[0]["id"]]
    assert sorted(created for _, created in out) == [False, True]
    assert {job_id for job_id, _ in out} == {rows[0]["id"]}
    # tried for this size already (it failed): not again; a new size starts a new one
    jobs.fail(project.store, rows[0]["id"], "boom")
    assert worker.launch_once(project, "map", {"n_images": 10}, unless_same="n_images",
                              start=start) == (rows[0]["id"], False)
    job_id, created = worker.launch_once(project, "map", {"n_images": 12}, unless_same="n_images",
                                         start=start)
    assert created and len(kind_rows(project, "map")) == 2


def test_two_sessions_asking_for_the_same_import_get_one_job(project):
    """The same import asked from two tabs at once is one job; a different one is a second job
    (it waits for the import lock: tests/test_import_races.py)."""
    started = []
    start = lambda p, job_id: started.append(job_id)                  # noqa: E731
    same = {"source": {"kind": "digits"}, "config": {}}
    out = at_once(2, lambda: worker.launch_once(project, "import", same, same_params_only=True,
                                                start=start))
    rows = kind_rows(project, "import")
    assert len(rows) == 1 and started == [rows[0]["id"]]
    assert sorted(created for _, created in out) == [False, True]
    other = {"source": {"kind": "folder", "path": "/photos"}, "config": {}}
    job_id, created = worker.launch_once(project, "import", other, same_params_only=True,
                                         start=start)
    assert created and len(kind_rows(project, "import")) == 2


def test_concurrent_retrain_requests_never_start_two_fits(digits_project):
    project = digits_project
    """Four sessions pressing Retrain at once with the same settings get one job: it has not
    read its labels yet, so it trains on everything they see. A label committed after the job
    read its labels makes the next request a follow-up queued behind it; the same request again
    (no newer label) is that follow-up."""
    started = []
    start = lambda p, job_id: started.append(job_id)                  # noqa: E731
    out = at_once(4, lambda: request_retrain(project, dict(TRAIN), start=start))
    rows = kind_rows(project, "train")
    assert len(rows) == 1 and started == [rows[0]["id"]]
    assert sum(not r.coalesced for r in out) == 1 and {r.job_id for r in out} == {rows[0]["id"]}
    first = rows[0]["id"]
    with project.store.write() as conn:                               # the job reads its labels
        record_snapshot(conn, first, labels_version(conn))
    assert request_retrain(project, dict(TRAIN), start=start).job_id == first   # nothing new
    cls = add_class(project.store, "late")
    set_labels(project.store, [0], cls.id, user="t")                  # a label after the read
    again = request_retrain(project, dict(TRAIN), start=start)
    assert not again.coalesced and again.behind == first
    assert request_retrain(project, dict(TRAIN), start=start).job_id == again.job_id
    assert len(kind_rows(project, "train")) == 2


# ---- (4) one snapshot ---------------------------------------------------------------------------

def import_more(project, k: int, class_id: int) -> None:
    """What an import committed meanwhile looks like: k more pixels rows and image rows, and a
    label on one of the new images."""
    pixels = np.load(project.images_path, allow_pickle=False)
    n = ImageCollection(project).n_images
    tmp = project.images_path.with_name("more.npy")
    np.save(tmp, np.concatenate([pixels[:n], pixels[:k]]))
    os.replace(tmp, project.images_path)
    with project.store.write() as conn:
        conn.executemany("INSERT INTO images (id, name, source, gt, split) "
                         "VALUES (?, ?, 'test', NULL, 'train')",
                         [(n + i, f"new-{i}") for i in range(k)])
    set_labels(project.store, [n], class_id, user="t")


def test_the_train_job_fits_one_snapshot_of_labels_and_pixels(digits_project, monkeypatch):
    project = digits_project
    classes = labeled(project)
    n = ImageCollection(project).n_images
    model = StandIn()
    monkeypatch.setattr(train_job, "make_estimator", lambda *a, **k: model)
    real = train_job.training_labels

    def import_between_reads(labels, *masks):          # runs after the labels were read
        import_more(project, 7, classes[0])
        return real(labels, *masks)

    monkeypatch.setattr(train_job, "training_labels", import_between_reads)
    job_id = jobs.create_job(project.store, "train", TRAIN)
    assert worker.run_job(project, job_id) == 0
    job = jobs.get_job(project.store, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert ImageCollection(project).n_images == n + 7
    assert model.seen == (n, n)                                       # X and y of one moment
    assert job.result["n_labels"] == 10                               # the new label is not in it
    assert load_predictions(project, n).proba.shape[0] == n
