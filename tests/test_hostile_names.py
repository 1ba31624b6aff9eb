"""User text that looks like markup is shown as text, never rendered.

Class names (typed by users, or taken from folder names as ground truth) and file names go
into Streamlit markdown (titles, captions, alerts, toasts, button and widget labels, image
captions) and into Plotly figures, whose text is a subset of HTML. Every page that shows them
is rendered with AppTest on a project whose classes are named like markup, and every string
the app emits there is checked: the raw names never appear, the escaped ones do (markdown:
ui.text.escape_markdown; Plotly: html.escape). A short Chromium check then confirms that
the browser shows the literal text and that no element or script from a name exists.
"""
from __future__ import annotations

import html
import json
import time

import numpy as np
import pytest
from browser import chromium_page, running_app, screenshot, wait_until_idle
from conftest import REPO
from hostile_files import TRIED
from PIL import Image
from streamlit.testing.v1 import AppTest

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.jobs import records as jobs
from ssl_core.jobs import worker
from ssl_core.labeling.classes import add_class, list_classes
from ssl_core.labeling.label_log import current_labels, set_labels
from ssl_core.project.folder import Project, projects_dir
from ssl_core.results.predictions import save_predictions
from ssl_core.results.report import test_report as make_test_report
from ssl_core.results.runs import create_run, finish_run
from ssl_core.training.validation import accuracy
from ui.text import escape_markdown

SCRIPT = "<script>alert(1)</script>"
EVIL = [SCRIPT, "<img src=x onerror=alert(1)>", "**bold**", "[link](javascript:alert(1))",
        ":red[alarm] $x^2$"]
TYPED = "<iframe src=javascript:alert(5)></iframe> __under__"   # typed into the Add form
FOLDER_EVIL = [n for n in EVIL if "/" not in n]   # names a folder can have: ground-truth classes
IMPORT_DIR = "[src](javascript:alert(2))"          # the import's source label is user text too
MARKDOWN = {"markdown", "caption", "title", "header", "subheader", "error", "warning", "info",
            "success", "toast", "exception"}
PAGES = ["pages/data.py", "pages/map.py", "pages/queue.py", "pages/classes.py", "pages/train.py",
         "pages/samples.py"]


# ---------------------------------------------------------------------------------- project
@pytest.fixture
def hostile_project(latentlab_home, tmp_path) -> Project:
    """The only project in LATENTLAB_HOME: ground-truth classes and user classes named like
    markup, labels, a map, predictions, a finished run with a test report, a tiny VAE and a
    failed import job whose error lists hostile file names."""
    src = tmp_path / IMPORT_DIR
    for k, name in enumerate(FOLDER_EVIL):
        (src / name).mkdir(parents=True)
        for i in range(8):
            Image.new("L", (8, 8), 30 * k + 3 * i).save(src / name / f"{i}.png")
    (src / "<img src=y onerror=alert(3)>.png").write_bytes(b"not an image")
    project = Project.create(projects_dir() / "hostile")
    report = import_source(project, SourceSpec("folder", path=str(src)))
    assert report.imported == 8 * len(FOLDER_EVIL) and len(report.skipped) == 1
    ids = [add_class(project.store, name).id for name in EVIL]
    by_name = dict(zip(EVIL, ids))
    gt = ImageCollection(project).ground_truth()
    for k, name in enumerate(gt.class_names):                  # 2 train images of each class
        train = np.flatnonzero((gt.labels == k) & ~gt.is_test)[:2]
        set_labels(project.store, train.tolist(), by_name[name])
    n = ImageCollection(project).n_images
    rng = np.random.default_rng(0)
    np.save(project.layout_path, rng.normal(size=(n, 2)).astype(np.float32))
    np.save(project.latents_path, rng.normal(size=(n, 16)).astype(np.float32))
    truth = np.array([gt.class_names[g] for g in gt.labels], dtype=object)
    proba = np.stack([(truth == name).astype(float) * 0.9 + 0.02 for name in EVIL], 1)
    save_predictions(project, proba, np.array(ids), None, "graph")
    labels = current_labels(project.store, n)
    report = make_test_report(truth, gt, EVIL)
    assert report is not None and set(report.classes) == set(FOLDER_EVIL)
    run = create_run(project.store, "graph", {}, int((labels >= 0).sum()))
    finish_run(project.store, run, {"validation": accuracy(truth[:4], truth[:4]).to_dict(),
                                    "test": report.accuracy.to_dict(),
                                    "test_report": report.to_dict()})
    _tiny_vae(project)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "**x** <img src=z onerror=alert(4)>.png").write_bytes(b"")
    job = jobs.create_job(project.store, "import", {"source": {"kind": "folder", "path": str(bad)}})
    worker.run_job(project, job)
    assert jobs.get_job(project.store, job).status is jobs.JobStatus.FAILED
    return project


def _tiny_vae(project: Project) -> None:
    """The map job's VAE, trained for a moment (the Samples page draws from it)."""
    from ssl_core.models.vae import VAE, VAEConfig

    images = np.asarray(ImageCollection(project).images())
    VAE.from_config(VAEConfig(hidden=(32, 16), latent_dim=4, epochs=2, batch_size=16, min_steps=0), random_state=0) \
        .fit(images).save(project.models_dir / "vae")


# ---------------------------------------------------------------------------------- AppTest
def emitted(at: AppTest) -> tuple[list[str], list[str], list[str]]:
    """(markdown strings, plain-text strings, Plotly strings) of everything on the page."""
    markdown, plain, plotly = [], [], []

    def walk(node) -> None:
        kind = getattr(node, "type", "")
        if kind in MARKDOWN:
            markdown.append(str(node.value))
        elif kind == "plotly_chart":
            plotly.extend(_strings(json.loads(node.proto.spec)))
        elif kind == "image":
            markdown.extend(node.captions)
        elif kind in ("dataframe", "arrow_data_frame"):
            plain.append(node.value.to_csv())
        elif kind in ("expandable", "tab"):
            markdown.append(node.label)
        for attr in ("label", "help"):                       # widgets and metrics
            text = getattr(getattr(node, "proto", None), attr, "")
            if isinstance(text, str) and text:
                markdown.append(text)
        if kind in ("selectbox", "multiselect") and hasattr(node, "options"):
            plain.extend(str(o) for o in node.options)       # option text is shown as is
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return markdown, plain, plotly


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def assert_escaped(at: AppTest, page: str, must_show: list[str]) -> None:
    """No raw hostile name in any markdown or Plotly string, each of `must_show` escaped in
    one of them (so the check cannot pass on a page that shows no names at all)."""
    assert not at.exception, (page, at.exception)
    markdown, plain, plotly = emitted(at)
    for text in markdown:
        for name in EVIL + [IMPORT_DIR, TYPED]:
            assert name not in text, f"{page}: raw {name!r} in markdown {text!r}"
    for text in plotly:
        for name in EVIL + [TYPED]:
            assert html.escape(name) == name or name not in text, f"{page}: raw {name!r} in {text!r}"
    every = markdown + plain + plotly
    for name in must_show:
        shown = [t for t in every if escape_markdown(name) in t or html.escape(name) in t
                 or (name in t and t in plain)]
        assert shown, f"{page} does not show {name!r} at all"


def test_every_page_shows_hostile_names_as_text(hostile_project):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    at.run()
    assert_escaped(at, "pages/data.py", [IMPORT_DIR])
    assert any(escape_markdown(IMPORT_DIR) in e.label for e in at.expander)

    at.switch_page("pages/classes.py").run()
    assert_escaped(at, "pages/classes.py", EVIL)
    at.text_input(key=f"rename-{list_classes(hostile_project.store)[0].id}").input(EVIL[2]).run()
    next(b for b in at.button if b.label == "Rename").click().run()   # the name is taken
    assert_escaped(at, "pages/classes.py (rename error)", [EVIL[2]])
    assert any("already exists" in e.value for e in at.error)
    next(t for t in at.text_input if t.label == "New class").input(TYPED)
    next(b for b in at.button if b.label == "Add class").click().run()
    assert_escaped(at, "pages/classes.py (added)", [TYPED])
    assert [t.value for t in at.toast] == [f"Added {escape_markdown(repr(TYPED))}."]

    at.switch_page("pages/map.py").run()
    assert_escaped(at, "pages/map.py", FOLDER_EVIL)             # the legend: labeled classes
    at.button_group(key="map_colour").set_value("prediction").run()
    assert_escaped(at, "pages/map.py (prediction)", FOLDER_EVIL)
    at.button_group(key="map_colour").set_value("ground truth").run()
    assert_escaped(at, "pages/map.py (ground truth)", FOLDER_EVIL)

    at.session_state["suggested"] = list(range(ImageCollection(hostile_project).n_images))
    at.switch_page("pages/queue.py").run()
    assert_escaped(at, "pages/queue.py (grid)", EVIL)
    at.button_group(key="queue_view").set_value("One at a time").run()
    assert_escaped(at, "pages/queue.py (one at a time)", EVIL)
    next(b for b in at.button if b.label == escape_markdown(SCRIPT)).click().run()
    assert_escaped(at, "pages/queue.py (after labeling)", [SCRIPT])
    assert any(f"as **{escape_markdown(SCRIPT)}**" in c.value for c in at.caption)

    at.switch_page("pages/train.py").run()
    assert_escaped(at, "pages/train.py", FOLDER_EVIL)

    at.switch_page("pages/samples.py").run()
    assert_escaped(at, "pages/samples.py", EVIL)
    TRIED[("markup class names x 6 pages", "escaped")] += len(EVIL) + len(FOLDER_EVIL)


def test_job_errors_with_hostile_file_names_are_escaped(hostile_project):
    job = jobs.list_jobs(hostile_project.store, kind="import")[0]
    assert "**x** <img src=z onerror=alert(4)>.png" in job.error and "Traceback" not in job.error
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    at.session_state["import_job"] = (hostile_project.name, job.id)
    at.run()
    assert not at.exception
    shown = [e.value for e in at.error if f"Job {job.id} failed" in e.value]
    assert shown and "<img src=z" not in shown[0]
    assert escape_markdown("**x** <img src=z onerror=alert(4)>.png") in shown[0]


# ---------------------------------------------------------------------------------- browser
DOM_CHECK = """() => ({
  scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert(')).length,
  onerror: document.querySelectorAll('[onerror]').length,
  imgX: document.querySelectorAll('img[src="x"]').length,
  iframes: document.querySelectorAll('iframe[src^="javascript"]').length,
  jsLinks: [...document.querySelectorAll('a')].filter(a => (a.getAttribute('href') || '').startsWith('javascript')).length,
  markup: [...document.querySelectorAll('strong, b, em, i')].filter(b => ['bold', 'under'].includes(b.textContent)).length,
  text: document.body.innerText.replaceAll('\\u200b', ''),   // escape_markdown's zero-width spaces
})"""


def test_classes_page_in_chromium_shows_the_literal_names(hostile_project, latentlab_home):
    dialogs = []
    with running_app(latentlab_home) as url, chromium_page() as page:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url + "/classes")
        page.get_by_text(f"Delete '{SCRIPT}'").wait_for(timeout=120_000)   # the page is drawn
        wait_until_idle(page)
        page.get_by_placeholder("e.g. cat").fill(TYPED)
        assert page.get_by_placeholder("e.g. cat").input_value() == TYPED
        page.get_by_role("button", name="Add class").click()
        deadline = time.monotonic() + 120
        while TYPED not in [c.name for c in list_classes(hostile_project.store)]:
            assert time.monotonic() < deadline, "the typed class was never added"
            time.sleep(0.2)
        wait_until_idle(page)
        after_add = page.evaluate(DOM_CHECK)   # the toast, when it is still up (it can be lost
                                               # to the rerun after it; AppTest checks its text)
        page.get_by_test_id("stSelectbox").filter(has_text="Edit class").click()
        page.get_by_role("option", name=TYPED).wait_for(timeout=30_000)   # every class listed
        listed = page.evaluate(DOM_CHECK)
        screenshot(page, "hostile-names-classes")
    assert [c.name for c in list_classes(hostile_project.store)] == EVIL + [TYPED]
    for name in EVIL + [TYPED]:
        assert name in listed["text"], name
    assert f"Delete '{SCRIPT}'" in listed["text"]
    assert "Added '" not in after_add["text"] or f"Added '{TYPED}'" in after_add["text"]
    for seen in (after_add, listed):
        assert {k: v for k, v in seen.items() if k != "text"} == \
            {"scripts": 0, "onerror": 0, "imgX": 0, "iframes": 0, "jsLinks": 0, "markup": 0}
    assert dialogs == []
    TRIED[("markup class name in Chromium", "literal")] += len(EVIL) + 1
