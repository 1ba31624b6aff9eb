"""AppTest smoke tests: every page renders on the built-in dataset without an exception."""
import time

import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from ssl_core.jobs import records as jobs
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project, projects_dir

PAGES = ["pages/data.py", "pages/map.py", "pages/queue.py", "pages/classes.py", "pages/train.py", "pages/samples.py",
         "pages/jobs.py", "pages/export.py", "pages/quality.py"]


@pytest.fixture
def app():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_first_start_imports_digits_and_shows_them(app):
    assert app.title[0].value == "Images · digits"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Images"] == "1,797" and metrics["Stored as"] == "8×8×1"
    assert metrics["Ground-truth classes"] == "10"
    assert app.sidebar.selectbox[0].value == "digits"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app, page):
    app.switch_page(page).run()
    assert not app.exception, app.exception
    assert app.title, f"{page} shows no title"


def test_export_page_offers_labels_after_labeling(app):
    store = Project.open(projects_dir() / "digits").store
    labels.set_labels(store, [0, 10], label_classes.add_class(store, "zero").id)
    app.switch_page("pages/export.py").run()
    assert not app.exception
    assert any("2 labeled images in 1 classes" in m.value for m in app.markdown)


def test_import_validation_errors_are_messages_not_tracebacks(app):
    app.selectbox(key="import_source").set_value("Folder on this machine").run()
    app.button(key="import_go").click().run()
    assert not app.exception
    assert "Enter the folder to import." in [e.value for e in app.error]
    app.radio(key="import_target").set_value("a new project").run()
    app.text_input(key="import_new_name").input("../evil").run()
    app.text_input(key="import_folder").input("/tmp").run()
    app.button(key="import_go").click().run()
    assert any("Project names use letters" in e.value for e in app.error)


def test_import_from_the_ui_runs_as_a_job(app, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    (folder / "red").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (10, 10), (255, 0, 0)).save(folder / "red" / f"{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    app.selectbox(key="import_source").set_value("Folder on this machine").run()
    app.radio(key="import_target").set_value("a new project").run()
    app.text_input(key="import_new_name").input("mine").run()
    app.text_input(key="import_folder").input(str(folder)).run()
    app.button(key="import_go").click().run()
    assert not app.exception
    assert app.session_state["project_name"] == "mine"
    project = Project.open(projects_dir() / "mine")
    job_id = app.session_state["import_job"][1]
    deadline = time.monotonic() + 60
    while not jobs.get_job(project.store, job_id).status.finished:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    app.run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Images"] == "3"
    report = app.text[0].value                 # a few skipped files are listed as text
    assert "Skipped 1 file:" in report and "broken.png: not an image" in report
    assert not app.dataframe


def test_map_page_builds_the_map_in_the_background_then_shows_it(app):
    app.switch_page("pages/map.py").run()
    assert not app.exception, app.exception
    project = Project.open(projects_dir() / "digits")
    job = jobs.list_jobs(project.store, kind="map")[0]          # launched by the first visit
    deadline = time.monotonic() + 240
    while not jobs.get_job(project.store, job.id).status.finished and time.monotonic() < deadline:
        time.sleep(0.5)
    assert jobs.get_job(project.store, job.id).status is jobs.JobStatus.SUCCEEDED
    app.run()
    assert not app.exception, app.exception
    assert len(jobs.list_jobs(project.store, kind="map")) == 1   # not launched again
    assert any("1,797 images" in c.value for c in app.caption)


def test_classes_page_adds_and_renames(app):
    app.switch_page("pages/classes.py").run()
    app.text_input[0].input("cat")
    app.button(key="FormSubmitter:add_class-Add class").click().run()
    assert not app.exception, app.exception
    store = Project.open(projects_dir() / "digits").store
    assert [c.name for c in label_classes.list_classes(store)] == ["cat"]
    app.text_input(key=f"rename-{label_classes.list_classes(store)[0].id}").input("kitten").run()
    next(b for b in app.button if b.label == "Rename").click().run()
    assert [c.name for c in label_classes.list_classes(store)] == ["kitten"]


def test_queue_suggests_and_saves_labels(app):
    store = Project.open(projects_dir() / "digits").store
    label_classes.add_class(store, "a")
    label_classes.add_class(store, "b")
    app.switch_page("pages/queue.py").run()
    app.segmented_control(key="queue_strategy").set_value("random")
    next(b for b in app.button if b.label == "Suggest").click().run()
    assert not app.exception, app.exception
    boxes = [s for s in app.selectbox if s.key and s.key.startswith("q-")]
    assert len(boxes) == 24
    a = label_classes.list_classes(store)[0].id
    boxes[0].set_value(a)
    boxes[1].set_value(a)
    app.button(key="FormSubmitter:queue_form-Save 24 (accept the guesses, with your fixes)").click().run()
    assert not app.exception, app.exception
    assert (labels.current_labels(store) == a).sum() == 2


def test_train_page_launches_a_training_job(app):
    store = Project.open(projects_dir() / "digits").store
    for c, ids in (("a", [0, 10]), ("b", [1, 11])):
        labels.set_labels(store, ids, label_classes.add_class(store, c).id)
    app.switch_page("pages/train.py").run()
    app.selectbox(key="train_method").set_value("graph").run()
    app.button(key="train_retrain").click().run()
    assert not app.exception, app.exception
    job = jobs.list_jobs(Project.open(projects_dir() / "digits").store, kind="train")[0]
    assert job.params["method"] == "graph"
