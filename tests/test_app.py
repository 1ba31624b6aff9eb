"""AppTest smoke tests: every page renders on the built-in dataset without an exception."""
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO
from ssl_core import jobs, labels
from ssl_core.project import Project, projects_dir

PAGES = ["pages/data.py", "pages/jobs.py", "pages/export.py"]


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
    labels.set_labels(store, [0, 10], labels.add_class(store, "zero").id)
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
    assert "Skipped 1 files." in app.text[0].value
    skipped = app.dataframe[0].value
    assert skipped["path"].tolist() == ["broken.png"] and "not an image" in skipped["reason"][0]
