"""The 'train' job end to end in a real worker: labels in, model + predictions + run summary out."""
import os
import signal

import numpy as np
from PIL import Image
from test_jobs import wait_for

from ssl_core.data.collection import ImageCollection
from ssl_core.jobs import records as jobs
from ssl_core.jobs import worker
from ssl_core.jobs.retrain import request_retrain
from ssl_core.jobs.train_progress import preview_path
from ssl_core.labeling.classes import add_class, list_classes
from ssl_core.labeling.label_log import set_labels
from ssl_core.models.registry import load_model
from ssl_core.results.predictions import load_predictions, save_predictions
from ssl_core.results.runs import list_runs, metric_series


def label_five_per_class(project):
    """Label 5 training-split images of each digit with classes named like the ground truth."""
    gt = ImageCollection(project).ground_truth()
    ids = {}
    for d in range(10):
        cls = add_class(project.store, str(d))
        pick = np.flatnonzero((gt.labels == d) & ~gt.is_test)[:5]
        set_labels(project.store, pick.tolist(), cls.id, user="t")
        ids[d] = (cls.id, pick)
    return ids


def test_train_job_saves_model_predictions_and_honest_summary(digits_project):
    project = digits_project
    label_five_per_class(project)
    job_id = worker.launch(project, "train", {"method": "default", "budget_s": 30})
    job = wait_for(project, job_id, lambda j: j.status.finished, timeout=120)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.error
    run = list_runs(project.store)[0]
    assert run.n_labels == 50 and run.summary["validation"]["n"] == 50
    test = run.summary["test"]
    assert test["n"] == int(ImageCollection(project).ground_truth().is_test.sum())  # none of them labeled
    assert test["value"] > 0.9                                    # chance is 0.1
    pred = load_predictions(project, ImageCollection(project).n_images)
    assert pred.run_id == run.id and pred.proba.shape == (1797, 10)
    model = load_model(run.summary["model"])
    X = ImageCollection(project).images()[:20]
    assert np.allclose(model.predict_proba(X), pred.proba[:20], atol=1e-5)
    assert metric_series(project.store, run.id, "val_accuracy")


def test_train_job_with_one_class_fails_with_a_clear_message(digits_project):
    cls = add_class(digits_project.store, "only")
    set_labels(digits_project.store, [0, 1, 2], cls.id, user="t")
    job = wait_for(digits_project, worker.launch(digits_project, "train", {}), lambda j: j.status.finished)
    assert job.status is jobs.JobStatus.FAILED and "at least 2 classes" in job.error


def test_predictions_are_replaced_atomically_and_stale_ones_ignored(project):
    save_predictions(project, np.full((5, 2), 0.5, np.float32), np.array([3, 7]), 1, "graph")
    save_predictions(project, np.array([[0.9, 0.1]] * 5, np.float32), np.array([3, 7]), 2, "graph")
    pred = load_predictions(project, 5)
    assert pred.run_id == 2 and pred.labels.tolist() == [3] * 5
    assert np.allclose(pred.confidence, 0.9)
    assert load_predictions(project, 6) is None                   # images added since: stale
    assert not list(project.root.glob("*.tmp*"))


def test_retrain_reuses_the_graph_compares_with_the_baseline_and_writes_a_preview(digits_project):
    project = digits_project
    label_five_per_class(project)
    first = wait_for(project, worker.launch(project, "train", {"budget_s": 30, "compare_baseline": False}),
                     lambda j: j.status.finished, timeout=120)
    assert first.status is jobs.JobStatus.SUCCEEDED, first.error
    assert first.result["warm_start_run"] is None and not first.result["graph_reused"]
    assert preview_path(project, first.result["run_id"]).is_file()    # the live grid was written
    with Image.open(preview_path(project, first.result["run_id"])) as img:
        assert img.height > img.width / 10                           # a row per class, not a strip
    # label 3 more images per class, retrain: the last run's graph is reused, labels are new
    gt = ImageCollection(project).ground_truth()
    names = {c.name: c.id for c in list_classes(project.store)}
    for d in range(10):
        more = np.flatnonzero((gt.labels == d) & ~gt.is_test)[5:8]
        set_labels(project.store, more.tolist(), names[str(d)], user="t")
    second = wait_for(project, worker.launch(project, "train", {"budget_s": 30}),
                      lambda j: j.status.finished, timeout=180)
    assert second.status is jobs.JobStatus.SUCCEEDED, second.error
    res = second.result
    assert res["warm_start_run"] == first.result["run_id"] and res["graph_reused"]
    assert res["n_labels"] == 80 and res["validation"]["n"] == 80
    base = res["baseline"]
    assert base["test"]["n"] == res["test"]["n"]                       # same unlabeled test images
    assert abs(res["gain"]["test"] - 100 * (res["test"]["value"] - base["test"]["value"])) < 1e-9
    report = res["test_report"]
    matrix = np.array(report["confusion"])
    assert matrix.sum() == res["test"]["n"]                            # every test image counted once
    assert np.trace(matrix) == round(res["test"]["value"] * res["test"]["n"])
    assert set(report["per_class"]) == {str(d) for d in range(10)}


def test_retrains_are_coalesced_and_run_one_at_a_time(digits_project):
    project = digits_project
    label_five_per_class(project)
    params = {"budget_s": 30, "compare_baseline": False, "warm_start": False}
    a = request_retrain(project, params)
    b = request_retrain(project, params)              # same settings, no new label: it is a
    c = request_retrain(project, {**params, "seed": 2})              # other settings: queued
    d = request_retrain(project, {**params, "seed": 3})              # folded into c
    assert not a.coalesced and b.coalesced and b.job_id == a.job_id
    assert not c.coalesced and c.behind == a.job_id
    assert d.coalesced and d.job_id == c.job_id
    ja = wait_for(project, a.job_id, lambda j: j.status.finished, timeout=120)
    jc = wait_for(project, c.job_id, lambda j: j.status.finished, timeout=120)
    assert ja.status is jobs.JobStatus.SUCCEEDED and jc.status is jobs.JobStatus.SUCCEEDED, jc.error
    runs = {r.job_id: r for r in list_runs(project.store)}
    assert set(runs) == {a.job_id, c.job_id}                           # two fits for four clicks
    assert runs[c.job_id].created_at >= ja.finished_at                 # c waited for a
    assert runs[c.job_id].config["seed"] == 3                          # with the latest request


def test_killed_training_fails_and_keeps_the_last_good_model(digits_project):
    project = digits_project
    label_five_per_class(project)
    good = wait_for(project, worker.launch(project, "train", {"budget_s": 30, "compare_baseline": False}),
                    lambda j: j.status.finished, timeout=120)
    assert good.status is jobs.JobStatus.SUCCEEDED, good.error
    before = load_predictions(project).proba.copy()
    slow = worker.launch(project, "train", {"method": "baseline", "budget_s": 120})
    running = wait_for(project, slow, lambda j: j.status is jobs.JobStatus.RUNNING and j.progress > 0,
                       timeout=60)
    with project.store.read() as conn:
        pid = conn.execute("SELECT pid FROM jobs WHERE id = ?", (running.id,)).fetchone()["pid"]
    os.kill(pid, signal.SIGKILL)
    dead = wait_for(project, slow, lambda j: j.status.finished, timeout=30)
    assert dead.status is jobs.JobStatus.FAILED and "stopped responding" in dead.error
    assert np.array_equal(load_predictions(project).proba, before)     # still the good model's
    assert load_model(good.result["model"]).predict(ImageCollection(project).images()[:5]).shape == (5,)
    again = wait_for(project, worker.launch(project, "train", {"budget_s": 30, "compare_baseline": False}),
                     lambda j: j.status.finished, timeout=120)
    assert again.status is jobs.JobStatus.SUCCEEDED, again.error
