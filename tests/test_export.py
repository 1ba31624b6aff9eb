"""Exports: the predictions CSV, the model zip (and its load snippet, executed), their CLI
commands (the ImageFolder one's too) and the Export page. The ImageFolder zip itself is in
test_export_imagefolder.py; the `trained` and `hostile` projects come from conftest.py."""
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO
from streamlit.testing.v1 import AppTest
from test_cli import cli

from ssl_core.data.collection import ImageCollection
from ssl_core.export.imagefolder import png_bytes, select_images
from ssl_core.export.model_zip import (
    LOAD_SNIPPET,
    export_model,
    exportable_runs,
    model_zip,
)
from ssl_core.export.tables import export_labels, export_predictions, predictions_frame
from ssl_core.labeling.label_log import current_labels, delete_class
from ssl_core.models.registry import load_model
from ssl_core.project.folder import projects_dir
from ssl_core.results.predictions import load_predictions, save_predictions
from ssl_core.results.runs import list_runs


# -- predictions CSV ----------------------------------------------------------------------
def test_predictions_frame_has_every_image_with_its_label_and_prediction(trained):
    frame = predictions_frame(trained)
    pred = load_predictions(trained)
    labels = current_labels(trained.store)
    assert list(frame.columns) == ["id", "name", "source", "label", "prediction", "confidence"]
    assert len(frame) == 1797 and frame["id"].tolist() == list(range(1797))
    assert frame["name"][3] == "digits/3" and set(frame["source"]) == {"digits"}
    labeled = labels >= 0
    assert (frame["label"][labeled] == [f"digit {labels[i] - labels[labeled].min()}"
                                        for i in np.flatnonzero(labeled)]).all()
    assert (frame["label"][~labeled] == "").all()
    assert set(frame["prediction"]) == {"digit 0", "digit 1", "digit 2"}
    assert np.allclose(frame["confidence"], pred.confidence, atol=1e-6)
    names = {1: "digit 0", 2: "digit 1", 3: "digit 2"}
    assert frame["prediction"].tolist() == [names[int(c)] for c in pred.labels]
    assert (frame["prediction"][labeled] == frame["label"][labeled]).all()   # labels are clamped


def test_no_predictions_means_none_and_a_clear_error(digits_project, tmp_path):
    assert predictions_frame(digits_project) is None
    with pytest.raises(ValueError, match="no predictions yet: train a model first"):
        export_predictions(digits_project, tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()
    # predictions older than images imported since cover too few images: none either
    save_predictions(digits_project, np.full((10, 2), 0.5, np.float32), np.array([1, 2]), 1, "x")
    assert predictions_frame(digits_project) is None


def test_csv_injection_guard_on_every_text_cell(hostile, tmp_path):
    assert export_predictions(hostile, tmp_path / "p.csv") == 8
    assert export_labels(hostile, tmp_path / "l.csv") == 4
    for csv in ("p.csv", "l.csv"):
        frame = pd.read_csv(tmp_path / csv, keep_default_na=False, dtype=str)
        for column in ("name", "source", "label") + (("prediction",) if csv == "p.csv" else ()):
            for cell in frame[column]:
                assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), (csv, column, cell)
    frame = predictions_frame(hostile)
    assert frame["name"].tolist()[:4] == ["'+x.png", "'-2.png", "'=1+1.png", "'@cmd.png"]
    assert "'=SUM(A1)" in frame["prediction"].tolist()
    assert frame["label"].tolist()[4:] == ["", "", "", ""]


def test_predictions_of_a_deleted_class_keep_its_name(hostile):
    first = load_predictions(hostile).class_ids[0]
    delete_class(hostile.store, int(first))
    frame = predictions_frame(hostile)
    assert frame["prediction"][0] == "../../etc" and frame["label"][0] == ""


# -- model zip -----------------------------------------------------------------------------
def test_model_zip_holds_weights_config_classes_and_snippet(trained):
    run = list_runs(trained.store)[0]
    assert [r.id for r in exportable_runs(trained)] == [run.id]
    with zipfile.ZipFile(io.BytesIO(model_zip(trained))) as zf:
        assert sorted(zf.namelist()) == ["README.md", "classes.json", "config.json",
                                         "load_model.py", "weights.pt"]
        config = json.loads(zf.read("config.json"))
        classes = json.loads(zf.read("classes.json"))["classes"]
        state = torch.load(io.BytesIO(zf.read("weights.pt")), map_location="cpu", weights_only=True)
        readme = zf.read("README.md").decode()
        snippet = zf.read("load_model.py").decode()
    assert config["method"] == "graph" and config["classes"] == [1, 2, 3]
    assert classes == [{"column": k, "class_id": k + 1, "name": f"digit {k}"} for k in range(3)]
    assert isinstance(state, dict) and state
    assert snippet == LOAD_SNIPPET and LOAD_SNIPPET in readme
    assert f"run {run.id} (graph)" in readme and "8×8×1" in readme


def test_model_snippet_runs_on_image_files_and_matches_the_model(trained, tmp_path):
    """Extract the zip, write a few stored images as PNG files, run load_model.py in a fresh
    interpreter outside the repository with only PYTHONPATH pointing at Latentlab."""
    run = export_model(trained, tmp_path / "model.zip")
    assert run.id == list_runs(trained.store)[0].id
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(tmp_path / "model.zip") as zf:
        zf.extractall(folder)
    X = ImageCollection(trained).images()[[0, 1, 2, 500, 1000]]          # (5, 8, 8, 1)
    files = []
    for i, pixels in enumerate(X):
        files.append(tmp_path / f"img{i}.png")
        files[-1].write_bytes(png_bytes(pixels))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(folder / "load_model.py"), *map(str, files)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    proba = load_model(folder).predict_proba(X)
    names = ["digit 0", "digit 1", "digit 2"]
    assert [r[0] for r in rows] == list(map(str, files))
    assert [r[1] for r in rows] == [names[k] for k in proba.argmax(1)]
    assert np.allclose([float(r[2]) for r in rows], proba.max(1), atol=1e-4)
    usage = subprocess.run([sys.executable, str(folder / "load_model.py")], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert usage.returncode == 1 and "python load_model.py image1.png" in usage.stderr


def test_model_export_without_a_run_is_a_clear_error(digits_project, tmp_path):
    assert exportable_runs(digits_project) == []
    with pytest.raises(ValueError, match="no trained model yet"):
        export_model(digits_project, tmp_path / "m.zip")
    assert list(tmp_path.iterdir()) == [tmp_path / "project"]      # nothing left behind


# -- command line ----------------------------------------------------------------------------
def test_cli_exports_predictions_model_and_imagefolder(trained, tmp_path):
    out = cli("export-predictions", "--project", trained.root, "--out", tmp_path / "p.csv").stdout
    assert "wrote predictions for 1,797 images" in out
    assert pd.read_csv(tmp_path / "p.csv").shape == (1797, 6)
    run = list_runs(trained.store)[0]
    out = cli("export-model", "--project", trained.root, "--out", tmp_path / "m.zip",
              "--run", run.id).stdout
    assert f"wrote the model of run {run.id} (graph, 15 labels)" in out
    assert "weights.pt" in zipfile.ZipFile(tmp_path / "m.zip").namelist()
    out = cli("export-imagefolder", "--project", trained.root, "--out", tmp_path / "f.zip",
              "--no-labeled", "--predicted", "--min-confidence", "0.6").stdout
    n = select_images(trained, False, True, 0.6).n_predicted
    assert f"wrote {n:,} images (0 labeled, {n:,} predicted) in 3 class folders" in out
    assert len(zipfile.ZipFile(tmp_path / "f.zip").namelist()) == n + 1


def test_cli_export_errors_are_messages(digits_project, tmp_path):
    root = digits_project.root
    for command, message in (("export-predictions", "no predictions yet"),
                             ("export-model", "no trained model yet"),
                             ("export-imagefolder", "no image is labeled")):
        proc = cli(command, "--project", root, "--out", tmp_path / "x", check=False)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("export-imagefolder", "--project", root, "--out", tmp_path / "x",
               "--min-confidence", "2", check=False)
    assert proc.returncode == 2 and "a confidence lies in 0..1" in proc.stderr
    assert not (tmp_path / "x").exists()


# -- the Export page -----------------------------------------------------------------------
def _export_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    return at


def _download_keys(at: AppTest) -> set[str]:
    return {b.key for b in at.get("download_button")}


def test_export_page_says_what_is_missing_before_training():
    at = _export_page()
    infos = " ".join(i.value for i in at.info)
    assert "No labels yet" in infos and "No predictions yet" in infos
    assert "No trained model yet" in infos and "Nothing to export yet" in infos
    assert _download_keys(at) == {"export_labels_csv"}


def test_export_page_offers_every_export_after_training(trained):
    shutil.copytree(trained.root, projects_dir() / "digits")       # the app opens 'digits'
    at = _export_page()
    assert not at.info
    assert {"export_labels_csv", "export_predictions_csv", "export_model_zip"} <= _download_keys(at)
    assert any("Predictions of run 1 (graph) for 1,797 images" in m.value for m in at.markdown)
    assert at.code[0].value == LOAD_SNIPPET.strip()
    at.checkbox(key="export_folder_predicted").check().run()
    assert any("images: 15 labeled" in m.value for m in at.markdown)
    at.button(key="export_folder_prepare").click().run()
    assert not at.exception, at.exception
    assert "export_folder_zip" in _download_keys(at)
    assert any("wrote" in s.value and "class folders" in s.value for s in at.success)
    zip_path = projects_dir() / "digits" / "exports" / "imagefolder.zip"
    assert len(zipfile.ZipFile(zip_path).namelist()) > 16


def test_downloads_in_a_real_browser(trained, tmp_path):
    """The predictions and model buttons build their files only when clicked (deferred), which
    AppTest cannot do: click them in Chromium and open what arrives."""
    from browser import chromium_page, running_app, screenshot, wait_until_idle

    home = tmp_path / "home"
    shutil.copytree(trained.root, home / "projects" / "digits")
    with running_app(home) as url, chromium_page() as page:
        page.goto(url + "/export")
        page.get_by_role("heading", name="Predictions").wait_for(timeout=60_000)
        wait_until_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        got = {}
        for label, name in (("Download predictions CSV", "predictions.csv"),
                            ("Download model zip", "model.zip")):
            with page.expect_download(timeout=60_000) as download:
                page.get_by_role("button", name=label).click()
            download.value.save_as(tmp_path / name)
            got[name] = tmp_path / name
        page.get_by_role("button", name="Prepare zip").click()
        page.get_by_role("button", name="Download ImageFolder zip").first.wait_for(timeout=60_000)
        wait_until_idle(page)
        screenshot(page, "export-page")
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="Download ImageFolder zip").first.click()
        download.value.save_as(tmp_path / "images.zip")
    assert pd.read_csv(got["predictions.csv"]).shape == (1797, 6)
    assert "weights.pt" in zipfile.ZipFile(got["model.zip"]).namelist()
    assert len(zipfile.ZipFile(tmp_path / "images.zip").namelist()) == 16   # 15 labeled + index
