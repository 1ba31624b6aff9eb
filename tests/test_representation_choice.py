"""Pixels or pretrained features for small greyscale images, decided on the user's labels
(models/representation_choice.py): textures whose pixels say nothing choose features, digits
keep their pixels, the train job decides once after its results and never over the user."""
import numpy as np
from test_jobs import wait_for
from test_trainjob import label_five_per_class

from ssl_core.features.choice import AUTO_KEY, project_representation, set_project_representation
from ssl_core.jobs import records as jobs
from ssl_core.jobs import worker
from ssl_core.models.representation_choice import (
    RepresentationChoice,
    choose_by_labels,
    enough_labels,
)


def gratings(n_per_class=60, side=28, seed=0):
    """Greyscale gratings whose class is their spatial frequency (coarse, medium, fine), each at
    a random orientation and phase: no pixel is informative, the texture is."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    X, y = [], []
    for k, freq in enumerate((0.35, 0.9, 1.9)):
        for _ in range(n_per_class):
            angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
            t = np.cos(angle) * xx + np.sin(angle) * yy
            img = 127 + 90 * np.sin(freq * t + phase) + rng.normal(0, 25, (side, side))
            X.append(np.clip(img, 0, 255).astype(np.uint8)[..., None])
            y.append(k)
    return np.stack(X), np.array(y)


def first_labels(y, per_class):
    labels = np.full(len(y), -1)
    for k in np.unique(y):
        labels[np.flatnonzero(y == k)[:per_class]] = k
    return labels


def test_textures_choose_features_and_the_choice_round_trips():
    X, y = gratings()
    choice = choose_by_labels(X, first_labels(y, 4))
    assert choice.choice == "efficientnet-lite0" and choice.n_labels == 12
    assert choice.scores["efficientnet-lite0"] > choice.scores["pixels"]
    assert RepresentationChoice.from_json(choice.to_json()) == choice
    assert "efficientnet-lite0, chosen on your 12 labels" in choice.describe()


def test_enough_labels_means_every_class_has_three():
    assert not enough_labels(np.array([0, 0, 0, 1, 1, -1]))
    assert enough_labels(np.array([0, 0, 0, 1, 1, 1, -1]))
    assert not enough_labels(np.array([0, 0, 0, -1]))                 # one class


def test_the_train_job_decides_once_after_its_results_and_never_over_the_user(digits_project):
    project = digits_project
    assert project_representation(project.store, (8, 8, 1)) == "pixels"    # before any labels
    label_five_per_class(project)
    job = wait_for(project, worker.launch(project, "train", {"budget_s": 20,
                                                             "compare_baseline": False}),
                   lambda j: j.status.finished, timeout=240)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.error
    decided = RepresentationChoice.from_json(project.store.get_meta(AUTO_KEY))
    assert decided.choice == "pixels" and decided.n_labels == 50          # digits: pixels win
    assert decided.scores["pixels"] > decided.scores["efficientnet-lite0"]
    assert job.result["representation"] == "pixels"
    assert "chosen on your 50 labels" in job.result["representation_choice"]
    set_project_representation(project.store, "efficientnet-lite0")     # the user's choice wins
    assert project_representation(project.store, (8, 8, 1)) == "efficientnet-lite0"
