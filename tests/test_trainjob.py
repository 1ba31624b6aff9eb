"""The 'train' job end to end in a real worker: labels in, model + predictions + run summary out."""
import numpy as np

from ssl_core import jobs, worker
from ssl_core.imagestore import ImageStore
from ssl_core.labels import add_class, set_labels
from ssl_core.models.registry import load_model
from ssl_core.predictions import load_predictions, save_predictions
from ssl_core.runs import list_runs, metric_series
from test_jobs import wait_for


def label_five_per_class(project):
    """Label 5 training-split images of each digit with classes named like the ground truth."""
    gt = ImageStore(project).ground_truth()
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
    assert test["n"] == int(ImageStore(project).ground_truth().is_test.sum())  # none of them labeled
    assert test["value"] > 0.9                                    # chance is 0.1
    pred = load_predictions(project, ImageStore(project).n_images)
    assert pred.run_id == run.id and pred.proba.shape == (1797, 10)
    model = load_model(run.summary["model"])
    X = ImageStore(project).images()[:20]
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
