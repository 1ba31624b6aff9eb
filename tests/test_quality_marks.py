"""Data-quality decisions (issue 16): excluded duplicate copies never train and are never
suggested, kept labels stop being suspects for that class only, balance warnings, per-image
flags, and an older project database gains the marks table when opened."""
import sqlite3

import numpy as np
import pytest

from ssl_core.data.collection import ImageCollection
from ssl_core.labeling import queue as labelqueue
from ssl_core.labeling.classes import LabelError, add_class
from ssl_core.labeling.evaluation_split import sealed_mask, training_labels
from ssl_core.labeling.label_log import current_labels, set_labels
from ssl_core.project.folder import Project
from ssl_core.project.schema import SCHEMA_VERSION
from ssl_core.quality.balance import label_balance
from ssl_core.quality.marks import (
    excluded_mask,
    keep_label,
    kept_labels,
    marks_version,
    set_excluded,
    withdraw_kept,
)
from ssl_core.quality.report import FLAGS, QualityReport, flagged_label_errors, image_flags
from tests.test_evaluation_split import _label, _spy_on_fits, _train_here


def test_an_excluded_copys_label_never_reaches_fit_and_restoring_brings_it_back(
        digits_project, monkeypatch):
    project = digits_project
    _label(project, 3)
    n = ImageCollection(project).n_images
    labeled = np.flatnonzero(current_labels(project.store, n) >= 0)
    dropped = labeled[:4].tolist()
    set_excluded(project.store, dropped)
    assert excluded_mask(project.store, n)[dropped].all()
    seen = _spy_on_fits(monkeypatch)
    summary = _train_here(project, {"method": "graph", "budget_s": 20, "warm_start": False,
                                    "compare_baseline": False})
    assert (seen[0][dropped] == -1).all() and (seen[0] >= 0).sum() == 26
    assert summary["n_labels"] == 26 and summary["n_labels_excluded"] == 4
    assert (current_labels(project.store, n)[dropped] >= 0).all()     # the labels are kept
    set_excluded(project.store, dropped[:2], excluded=False)          # restore two
    assert excluded_mask(project.store, n).sum() == 2


def test_training_labels_count_sealed_and_excluded_separately():
    labels = np.array([0, 1, -1, 2, 0, 1])
    sealed = np.array([True, False, False, False, False, False])
    excluded = np.array([True, True, True, False, False, False])     # 0 is sealed first, 2 unlabeled
    held = training_labels(labels, sealed, excluded)
    assert held.labels.tolist() == [-1, -1, -1, 2, 0, 1]
    assert (held.n_sealed, held.n_excluded) == (1, 1)


def test_the_queue_never_offers_an_excluded_copy():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(200, 4)).astype(np.float32)
    labels = np.full(200, -1)
    excluded = np.zeros(200, bool)
    excluded[::2] = True
    for strategy in ("diversity", "random"):
        picks = labelqueue.suggestions(strategy, 50, latents, labels, np.zeros(200, bool),
                                       excluded=excluded)
        assert len(picks) == 50 and not excluded[picks].any()


def test_kept_marks_name_their_class_and_undo_withdraws_them(digits_project):
    store = digits_project.store
    a, b = add_class(store, "a").id, add_class(store, "b").id
    set_labels(store, [1, 2, 3], a)
    v0 = marks_version(store)
    keep_label(store, 1, a)
    keep_label(store, 2, a)
    assert kept_labels(store) == {1: a, 2: a} and marks_version(store) > v0
    withdraw_kept(store, 2)
    assert kept_labels(store) == {1: a}
    labels = current_labels(store, 10)
    issues = {"issues": [{"image_id": i, "given": a, "suggested": b, "quality": 0.1,
                          "flagged": True} for i in (1, 2, 3)]}
    assert [e["image_id"] for e in flagged_label_errors(issues, labels, kept_labels(store))] == [2, 3]
    set_labels(store, [3], b)             # fixed meanwhile: no longer a suspect
    labels = current_labels(store, 10)
    assert [e["image_id"] for e in flagged_label_errors(issues, labels, kept_labels(store))] == [2]
    set_labels(store, [1], b)             # relabeled: its 'kept as a' no longer applies to b
    issues["issues"].append({"image_id": 1, "given": b, "suggested": a, "quality": 0.2,
                             "flagged": True})
    labels = current_labels(store, 10)
    assert 1 in [e["image_id"] for e in flagged_label_errors(issues, labels, kept_labels(store))]


def test_marks_refuse_ids_outside_the_project(digits_project):
    with pytest.raises(LabelError):
        set_excluded(digits_project.store, [10 ** 6])
    with pytest.raises(LabelError):
        set_excluded(digits_project.store, [])


def test_balance_warns_on_too_few_labels_and_on_a_ten_to_one_imbalance():
    ids, names = [1, 2, 3], ["cat", "dog", "fox"]
    balanced = label_balance(np.array([1] * 5 + [2] * 5 + [3] * 4 + [-1] * 10), ids, names)
    assert balanced.warnings == [] and [c.n_labels for c in balanced.classes] == [5, 5, 4]
    few = label_balance(np.array([1] * 5 + [2] * 5 + [3]), ids, names)
    assert len(few.warnings) == 1 and "'fox' (1)" in few.warnings[0]
    skewed = label_balance(np.array([1] * 44 + [2] * 4 + [3] * 5), ids, names)
    assert len(skewed.warnings) == 1 and "11×" in skewed.warnings[0]
    at_ten = label_balance(np.array([1] * 40 + [2] * 4 + [3] * 5), ids, names)
    assert at_ten.warnings == []                          # 10x exactly is not "more than 10x"
    pred = label_balance(np.array([1, 2, 3] * 2), ids, names, predicted=np.array([1, 1, 2, 9]))
    assert [c.n_predicted for c in pred.classes] == [2, 1, 0]


def test_each_image_gets_its_most_important_flag():
    report = QualityReport({
        "label_errors": {"key": {}, "result": {"issues": [
            {"image_id": 0, "given": 5, "suggested": 6, "quality": 0.1, "flagged": True},
            {"image_id": 1, "given": 5, "suggested": 5, "quality": 0.4, "flagged": False},
            {"image_id": 5, "given": 5, "suggested": 7, "quality": 0.5, "flagged": False}]}},
        "duplicates": {"key": {}, "result": {"groups": [
            {"ids": [0, 2], "exact": True, "max_distance": 0.0},
            {"ids": [3, 4], "exact": False, "max_distance": 0.1}]}},
        "outliers": {"key": {}, "result": {"ids": list(range(20, 60)), "scores": []}}})
    labels = np.full(100, -1)
    labels[[0, 1, 5]] = 5
    excluded = np.zeros(100, bool)
    excluded[4] = True
    flags = image_flags(report, 100, labels, {}, excluded)
    named = {i: FLAGS[f] if f >= 0 else None for i, f in enumerate(flags)}
    assert named[0] == "suspected label error"            # before its duplicate flag
    assert named[1] is None                               # not flagged, predicted as its class
    assert named[5] == "suspected label error"            # not flagged, but predicted otherwise
    assert named[2] == "exact duplicate" and named[3] == "near duplicate"
    assert named[4] == "excluded copy"
    assert [i for i in range(20, 60) if named[i] == "outlier"] == list(range(20, 30))  # top 10
    assert image_flags(report, 100, labels, {0: 5}, excluded)[0] == FLAGS.index("exact duplicate")


def test_a_version_2_project_gains_the_marks_table_when_opened(digits_project):
    root = digits_project.root
    conn = sqlite3.connect(root / "project.db")
    conn.execute("DROP TABLE quality_marks")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    project = Project.open(root)                          # no initialise(): the first use upgrades
    set_excluded(project.store, [5])
    assert project.store.get_meta("schema_version") == str(SCHEMA_VERSION) == "3"
    assert np.flatnonzero(excluded_mask(project.store, 10)).tolist() == [5]
    assert sealed_mask(ImageCollection(project)).any()   # the rest of the project is intact
