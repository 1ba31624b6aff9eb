"""The sealed evaluation split (issue 14): labels on evaluation images never train, the queue
never offers them, and every run of a project is scored on the same evaluation images."""
import numpy as np
import pytest

from ssl_core.data.collection import GroundTruth, ImageCollection
from ssl_core.jobs import records as jobs
from ssl_core.jobs import train_job, worker
from ssl_core.labeling import queue as labelqueue
from ssl_core.labeling.class_mapping import save_mapping
from ssl_core.labeling.classes import add_class
from ssl_core.labeling.evaluation_split import sealed_mask, training_labels
from ssl_core.labeling.label_log import current_labels, set_labels
from ssl_core.results.report import test_report as make_report
from ssl_core.results.runs import list_runs


def _label(project, per_class: int, *, sealed_too: int = 0, names=None) -> dict[int, int]:
    """Label `per_class` training images of each digit (and `sealed_too` evaluation images)."""
    gt = ImageCollection(project).ground_truth()
    classes = {}
    for d in range(10):
        classes[d] = add_class(project.store, (names or [str(i) for i in range(10)])[d]).id
        train = np.flatnonzero((gt.labels == d) & ~gt.is_test)[:per_class]
        test = np.flatnonzero((gt.labels == d) & gt.is_test)[:sealed_too]
        set_labels(project.store, [*train.tolist(), *test.tolist()], classes[d], user="t")
    return classes


def _spy_on_fits(monkeypatch) -> list[np.ndarray]:
    """Every y that reaches an estimator's fit inside the train job, in order."""
    seen, real = [], train_job.make_estimator

    def make(method, seed, **kw):
        model = real(method, seed, **kw)
        fit = model.fit

        def spying_fit(X, y, **kws):
            seen.append(np.array(y))
            return fit(X, y, **kws)
        model.fit = spying_fit
        return model
    monkeypatch.setattr(train_job, "make_estimator", make)
    return seen


def _train_here(project, params) -> dict:
    job_id = jobs.create_job(project.store, "train", params)
    assert worker.run_job(project, job_id) == 0
    job = jobs.get_job(project.store, job_id)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.error
    return list_runs(project.store)[0].summary


def test_a_label_on_an_evaluation_image_is_kept_but_never_reaches_fit(digits_project, monkeypatch):
    project = digits_project
    _label(project, 3, sealed_too=2)
    sealed = sealed_mask(ImageCollection(project))
    n = ImageCollection(project).n_images
    stored = current_labels(project.store, n)
    assert ((stored >= 0) & sealed).sum() == 20                       # kept in the label log
    seen = _spy_on_fits(monkeypatch)
    summary = _train_here(project, {"method": "graph", "budget_s": 20, "warm_start": False})
    assert len(seen) == 2                                             # the method and the baseline
    for y in seen:
        assert len(y) == n and not ((y >= 0) & sealed).any()          # nothing sealed is labeled
        assert (y >= 0).sum() == 30
    assert summary["n_labels"] == 30 and summary["n_labels_sealed"] == 20
    # the labeled evaluation images are still scored: every sealed image counts
    assert summary["test"]["n"] == int(sealed.sum())


def test_two_runs_with_different_labels_are_scored_on_the_same_images(digits_project):
    project = digits_project
    _label(project, 2)
    first = _train_here(project, {"method": "graph", "budget_s": 20, "compare_baseline": False})
    gt = ImageCollection(project).ground_truth()
    more = np.flatnonzero(gt.is_test)[:40]                            # labels on evaluation images
    extra = np.flatnonzero(~gt.is_test)[100:140]
    for ids in (more, extra):
        for i in ids:
            set_labels(project.store, [int(i)], _class_id(project, str(gt.labels[i])), user="t")
    second = _train_here(project, {"method": "graph", "budget_s": 20, "compare_baseline": False})
    a, b = first["test_report"], second["test_report"]
    assert a["ids_digest"] == b["ids_digest"] and first["test"]["n"] == second["test"]["n"]
    assert second["n_labels"] == first["n_labels"] + 40 and second["n_labels_sealed"] == 40


def _class_id(project, name: str) -> int:
    from ssl_core.labeling.classes import list_classes
    return next(c.id for c in list_classes(project.store) if c.name == name)


@pytest.mark.parametrize("strategy", ["diversity", "uncertainty", "random"])
def test_the_queue_never_offers_an_evaluation_image(strategy):
    rng = np.random.default_rng(0)
    n = 600
    sealed = np.zeros(n, bool)
    sealed[rng.choice(n, 200, replace=False)] = True
    latents = rng.normal(size=(n, 4)).astype(np.float32)
    proba = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    labels = np.full(n, -1, np.int64)
    labels[:30] = 0
    picks = labelqueue.suggestions(strategy, 100, latents, labels, sealed, proba=proba, seed=1)
    assert len(picks) == 100 and not sealed[picks].any() and (labels[picks] < 0).all()
    everything = labelqueue.suggestions(strategy, n, latents, labels, sealed, proba=proba)
    assert set(everything.tolist()) == set(np.flatnonzero(~sealed & (labels < 0)).tolist())


def test_training_labels_drop_only_sealed_labels():
    labels = np.array([0, 1, -1, 2, 1])
    sealed = np.array([False, True, True, False, True])
    held = training_labels(labels, sealed)
    assert held.labels.tolist() == [0, -1, -1, 2, -1] and held.n_sealed == 2
    assert labels.tolist() == [0, 1, -1, 2, 1]                        # the caller's copy untouched


def test_report_scores_every_sealed_image_under_a_confirmed_mapping(project):
    gt = GroundTruth(np.array([0, 1, 0, 1, -1, 0]), np.array([1, 1, 1, 0, 1, 0], bool),
                     ["cat", "dog"])
    pred = np.array(["kitty", "puppy", "puppy", "puppy", "kitty", "kitty"], dtype=object)
    assert make_report(pred, gt, ["kitty", "puppy"]) is None          # names differ: no score
    save_mapping(project.store, {"cat": "kitty", "dog": "puppy"})
    from ssl_core.labeling.class_mapping import load_mapping
    report = make_report(pred, gt, ["kitty", "puppy"], load_mapping(project.store))
    assert report.accuracy.n == 3 and report.accuracy.value == pytest.approx(2 / 3)
    assert report.confusion == [[1, 1, 0], [0, 1, 0]] and report.mapping == {"cat": "kitty",
                                                                               "dog": "puppy"}


def test_the_map_marks_ground_truth_colouring_as_evaluation_only():
    from ui.map_colours import colouring

    gt = GroundTruth(np.array([0, 1, 1, 0]), np.array([True, False, True, False]), ["a", "b"])
    col, note = colouring("ground truth", np.full(4, -1), [], None, gt, None)
    assert col.codes.tolist() == [0, 1, 1, 0]
    assert "for evaluation only" in note and "2 evaluation images" in note
