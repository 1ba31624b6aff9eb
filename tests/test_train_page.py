"""The Train page with real runs: live view while a job runs, honest results after it."""
import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest
from test_jobs import wait_for

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.jobs import records as jobs
from ssl_core.jobs import worker
from ssl_core.labeling.classes import add_class
from ssl_core.labeling.label_log import set_labels
from ssl_core.project.folder import Project, projects_dir
from ssl_core.results.history import curves_frame, history_frame, learning_curve_frame
from ssl_core.results.runs import list_runs
from ui.train_charts import confusion_figure, learning_curve_figure


@pytest.fixture
def trained(monkeypatch, tmp_path):
    """A digits project (in LATENTLAB_HOME) with 5 labels per class and two finished runs:
    graph with a baseline beside it, then graph again, warm-started from the first."""
    monkeypatch.setenv("LATENTLAB_HOME", str(tmp_path / "home"))
    project = Project.create(projects_dir() / "digits")
    import_source(project, SourceSpec("digits"))
    gt = ImageCollection(project).ground_truth()
    for d in range(10):
        cls = add_class(project.store, str(d))
        set_labels(project.store, np.flatnonzero((gt.labels == d) & ~gt.is_test)[:5].tolist(), cls.id)
    for params in ({"method": "graph", "budget_s": 20}, {"method": "graph", "budget_s": 20,
                                                         "compare_baseline": False}):
        job = wait_for(project, worker.launch(project, "train", params), lambda j: j.status.finished,
                       timeout=180)
        assert job.status is jobs.JobStatus.SUCCEEDED, job.error
    return project


def test_history_learning_curve_and_charts_from_real_runs(trained):
    store = trained.store
    history = history_frame(store)
    assert list(history["method"]) == ["graph", "graph"] and set(history["labels"]) == {50}
    assert history.iloc[0]["warm start from"] == history.iloc[1]["run"]
    graph_row = history.iloc[1]
    assert graph_row["gain (points)"] == pytest.approx(graph_row["test % (ground truth)"]
                                                       - graph_row["baseline test %"])
    curve = learning_curve_frame(store)
    assert set(curve["method"]) == {"graph", "baseline (same labels)"}
    assert set(curve["measure"]) == {"validation", "test (ground truth)"}
    assert len(learning_curve_figure(curve).data) == 4
    report = list_runs(store)[0].summary["test_report"]
    fig = confusion_figure(report)
    assert np.array(fig.data[0].z).sum() == list_runs(store)[0].summary["test"]["n"]
    assert not curves_frame(store, list_runs(store)[0]).empty


def test_learning_curve_axes_show_whole_label_counts():
    one = pd.DataFrame({"method": ["default", "default"], "measure": ["validation", "test (ground truth)"],
                        "labels": [100, 100], "accuracy %": [100.0, 99.0]})
    fig = learning_curve_figure(one)
    assert list(fig.layout.xaxis.tickvals) == [100] and list(fig.layout.xaxis.range) == [0, 200]
    assert fig.layout.yaxis.range[1] == 100.5 and fig.layout.yaxis.range[0] <= 98
    many = pd.DataFrame({"method": "graph", "measure": "validation", "labels": range(10, 130, 10),
                         "accuracy %": np.linspace(40, 90, 12)})
    fig = learning_curve_figure(many)
    assert fig.layout.xaxis.tickvals is None and fig.layout.xaxis.tickformat == ",d"
    assert fig.layout.xaxis.range is None and list(fig.layout.yaxis.range) == [39.0, 91.0]


def test_train_page_shows_results_and_queues_a_retrain(trained):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Test accuracy (ground truth)"].endswith("%")
    assert shown["Validation accuracy"].endswith("%")
    assert any("Warm-started from run" in c.value for c in at.caption)
    at.button(key="train_retrain").click().run()
    at.button(key="train_retrain").click().run()          # same settings, same labels: that job
    assert any("no second fit" in t.value for t in at.toast)
    at.slider(key="train_budget").set_value(40).run()
    at.button(key="train_retrain").click().run()                      # other settings: queued
    at.button(key="train_retrain").click().run()                      # again: folded into it
    assert not at.exception, at.exception
    active = [j for j in jobs.active_jobs(trained.store) if j.kind == "train"]
    assert len(active) == 2
    for job in active:
        jobs.request_cancel(trained.store, job.id)
