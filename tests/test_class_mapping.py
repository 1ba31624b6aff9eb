"""Class-name mapping: suggested one-to-one, confirmed with checks, and a run re-scored with it
(test accuracy "n/a" becomes the right number) — in the library and on the Train page."""
import numpy as np
import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from ssl_core.data.collection import GroundTruth, ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.labeling.class_mapping import load_mapping, save_mapping, suggest_mapping
from ssl_core.labeling.classes import add_class
from ssl_core.labeling.label_log import set_labels
from ssl_core.project.folder import Project, projects_dir
from ssl_core.results import report
from ssl_core.results.predictions import save_predictions
from ssl_core.results.rescore import confirm_mapping, rescore_latest, suggestion, unmapped
from ssl_core.results.runs import create_run, finish_run, list_runs
from ssl_core.training.validation import accuracy, holdout_protocol

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_suggest_mapping_is_one_to_one_by_total_overlap():
    # cat: 50 kitty + 40 puppy; dog: 45 kitty + 5 puppy; bird: 30 tweety. Each row's majority
    # would give kitty twice; the largest one-to-one total is cat->puppy, dog->kitty (85 > 55).
    gt_rows = [0] * 90 + [1] * 50 + [2] * 30 + [-1] * 10
    assigned = [10] * 50 + [11] * 40 + [10] * 45 + [11] * 5 + [12] * 30 + [10] * 10
    gt = GroundTruth(np.array(gt_rows), np.zeros(len(gt_rows), bool), ["cat", "dog", "bird"])
    names = {10: "kitty", 11: "puppy", 12: "tweety", 13: "unused"}
    assert suggest_mapping(gt, np.array(assigned), names) == {
        "cat": "puppy", "dog": "kitty", "bird": "tweety"}
    unassigned = np.full(len(gt_rows), -1)
    assert suggest_mapping(gt, unassigned, names) == {}          # no overlap: nothing suggested


def test_save_mapping_refuses_two_ground_truth_classes_for_one_project_class(project):
    with pytest.raises(ValueError, match="one ground-truth class only"):
        save_mapping(project.store, {"cat": "kitty", "dog": "kitty"})
    assert load_mapping(project.store) == {}
    save_mapping(project.store, {"cat": "kitty", "dog": ""})
    assert load_mapping(project.store) == {"cat": "kitty"}


def make_worded(project: Project) -> tuple[Project, float]:
    """Digits with classes named in words, 5 labels of each (not on sealed images), saved
    predictions of a finished run (right except every 5th sealed image), test "n/a"; and the
    test accuracy they get once mapped."""
    import_source(project, SourceSpec("digits"))
    store = project.store
    gt = ImageCollection(project).ground_truth()
    ids = [add_class(store, w).id for w in WORDS]
    for d, cid in enumerate(ids):
        set_labels(store, np.flatnonzero((gt.labels == d) & ~gt.is_test)[:5].tolist(), cid)
    pred = gt.labels.copy()
    wrong = gt.sealed & (np.arange(len(pred)) % 5 == 0)
    pred[wrong] = (pred[wrong] + 1) % 10
    run_id = create_run(store, "graph", {"budget_s": 1}, n_labels=50)
    save_predictions(project, np.eye(10, dtype=np.float32)[pred], np.array(ids), run_id, "graph")
    names = np.array(WORDS, dtype=object)[pred]
    assert report.test_report(names, gt, WORDS, load_mapping(store)) is None          # names differ
    val = accuracy(np.ones(10), np.ones(10)).with_protocol(holdout_protocol(0.2, 0)).to_dict()
    finish_run(store, run_id, {"n_labels": 50, "validation": val, "validation_of": "10 labels",
                               "test": None, "test_report": None,
                               "baseline": {"validation": {**val, "value": 0.8}, "test": None},
                               "gain": {"validation": 20.0}})
    return project, 1.0 - wrong.sum() / gt.sealed.sum()


@pytest.fixture
def worded(project):
    return make_worded(project)


def test_rescoring_with_a_mapping_turns_na_into_the_right_accuracy(worded):
    worded, expected = worded
    store = worded.store
    gt_names = ImageCollection(worded).ground_truth_classes()
    assert unmapped(gt_names, WORDS, {}) == gt_names
    suggested = suggestion(worded)
    assert suggested == dict(zip(map(str, range(10)), WORDS))
    with pytest.raises(ValueError, match="would stand for 2"):
        confirm_mapping(worded, {**suggested, "1": "zero"})
    with pytest.raises(ValueError, match="no project class"):
        confirm_mapping(worded, {"1": "uno"})
    confirm_mapping(worded, suggested)
    assert unmapped(gt_names, WORDS, load_mapping(store)) == []
    run_id, summary = rescore_latest(worded)
    assert run_id == list_runs(store)[0].id
    stored = list_runs(store)[0].summary
    assert stored["test"] == summary["test"]
    assert stored["test"]["value"] == pytest.approx(expected)
    assert stored["test"]["n"] == int(ImageCollection(worded).ground_truth().sealed.sum())
    assert stored["test_report"]["mapping"] == suggested
    assert stored["gain"] == {"validation": pytest.approx(20.0)}      # baseline not re-scored
    assert stored["validation_of"] == "10 labels"                     # the rest is kept


def test_rescore_without_predictions_says_so(digits_project):
    with pytest.raises(ValueError, match="retrain first"):
        rescore_latest(digits_project)


def test_train_page_asks_for_the_mapping_stores_it_and_rescores():
    project, expected = make_worded(Project.create(projects_dir() / "digits"))  # app's default
    at = _train_page()
    assert {m.label: m.value for m in at.metric}["Test accuracy (ground truth)"] == "n/a"
    assert any("no class of yours by the same name" in w.value for w in at.warning)
    shown = [at.selectbox(key=f"class_map_{i}") for i in range(10)]
    assert [s.label for s in shown] == [str(d) for d in range(10)]
    assert [s.value for s in shown] == WORDS                 # pre-filled from the labels
    at.selectbox(key="class_map_1").set_value("zero").run()
    at.button(key="class_map_save").click().run()            # two for "zero": refused cleanly
    assert not at.exception, at.exception
    assert any("would stand for 2" in e.value for e in at.error)
    assert load_mapping(project.store) == {}
    at.selectbox(key="class_map_1").set_value("one").run()
    at.button(key="class_map_save").click().run()
    assert not at.exception, at.exception
    assert load_mapping(project.store) == dict(zip(map(str, range(10)), WORDS))
    assert any("Mapping saved" in s.value for s in at.success)
    at.button(key="class_map_rescore").click().run()
    assert not at.exception, at.exception
    value = {m.label: m.value for m in at.metric}["Test accuracy (ground truth)"]
    assert value == f"{100 * expected:.1f}%"
    assert not any(b.key == "class_map_rescore" for b in at.button)   # scored as mapped now


@pytest.mark.parametrize("classes", [range(10), range(3)])
def test_no_mapping_section_when_names_match(classes):
    """Every class named like the ground truth: nothing to map, also while some ground-truth
    classes (here 3..9) have no class of yours yet."""
    project = Project.create(projects_dir() / "digits")
    import_source(project, SourceSpec("digits"))
    for d in classes:
        add_class(project.store, str(d))
    at = _train_page()
    assert not any(s.key and s.key.startswith("class_map_") for s in at.selectbox)


def _train_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at
