"""Exports: the predictions CSV, the model zip (and its load snippet, executed), the ImageFolder
zip (hostile class names stay inside their folders), their CLI commands and the Export page."""
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO
from ssl_core import jobs, worker
from ssl_core.export import export_labels, export_predictions, predictions_frame
from ssl_core.export_imagefolder import (MAX_NAME_BYTES, class_folders, export_imagefolder,
                                         png_bytes, safe_component, select_images)
from ssl_core.export_model import LOAD_SNIPPET, exportable_runs, export_model, model_zip
from ssl_core.imagestore import ImageStore
from ssl_core.importer import import_source
from ssl_core.labels import add_class, current_labels, delete_class, set_labels
from ssl_core.models.registry import load_model
from ssl_core.predictions import load_predictions, save_predictions
from ssl_core.project import Project, projects_dir
from ssl_core.runs import list_runs
from ssl_core.sources import SourceSpec
from test_cli import cli

HOSTILE = ["../../etc", "a/b", "a_b", "<script>", "CON", "con.txt", "=SUM(A1)", "..",
           "x\x00\u202ey"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Project:
    """Digits, 5 labels of each of the digits 0-2, one real 'graph' train job in a worker.
    Read-only for the tests that use it."""
    project = Project.create(tmp_path_factory.mktemp("trained") / "digits")
    import_source(project, SourceSpec("digits"))
    gt = ImageStore(project).ground_truth()
    for d in range(3):
        cls = add_class(project.store, f"digit {d}")
        pick = np.flatnonzero((gt.labels == d) & ~gt.is_test)[:5]
        set_labels(project.store, pick.tolist(), cls.id)
    job_id = worker.launch(project, "train", {"method": "graph", "budget_s": 20,
                                              "compare_baseline": False})
    deadline = time.monotonic() + 240
    while not (job := jobs.get_job(project.store, job_id)).status.finished:
        assert time.monotonic() < deadline, "the train job did not finish in time"
        time.sleep(0.2)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.error
    return project


@pytest.fixture
def hostile(tmp_path) -> Project:
    """Eight images with formula-like file names, classes with hostile names; images 0-3
    labeled, predictions for all (images 4-6 confident, image 7 not)."""
    folder = tmp_path / "files"
    folder.mkdir()
    names = ["=1+1.png", "@cmd.png", "-2.png", "+x.png", "plain.png", "tab.png", "u.png", "v.png"]
    for i, name in enumerate(names):
        Image.new("RGB", (6, 4), (30 * i, 255 - 30 * i, 7 * i)).save(folder / name)
    project = Project.create(tmp_path / "hostile")
    import_source(project, SourceSpec("folder", path=str(folder)))
    ids = {name: add_class(project.store, name).id for name in HOSTILE}
    classes = ["../../etc", "a/b", "a_b", "=SUM(A1)", "CON", "<script>", "x\x00\u202ey", "con.txt"]
    for image, name in enumerate(classes[:4]):
        set_labels(project.store, [image], ids[name])
    columns = list(ids)                                             # class of each column
    proba = np.full((8, len(columns)), 0.01, np.float32)
    for image, name in enumerate(classes):
        proba[image, columns.index(name)] = 0.9 if image < 7 else 0.5
    save_predictions(project, proba, np.array([ids[c] for c in columns]), None, "test")
    return project


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
    X = ImageStore(trained).images()[[0, 1, 2, 500, 1000]]          # (5, 8, 8, 1)
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


# -- ImageFolder zip -----------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE + ["", ".", " . ", "COM1", "lpt9.tar.gz", "AUX ",
                                            "é" * 200, "a\\b", "a:b*c?", "\n\t", "ok name"])
def test_safe_component_is_one_harmless_path_component(name):
    safe = safe_component(name, fallback="fallback")
    assert safe and safe not in (".", "..") and not safe.startswith(".")
    assert not set(safe) & set('<>:"/\\|?*') and all(c.isprintable() for c in safe)
    assert safe.split(".")[0].strip().upper() not in ("CON", "PRN", "AUX", "NUL", "COM1", "LPT9")
    assert len(safe.encode()) <= MAX_NAME_BYTES and safe == safe.strip(" .")
    assert safe_component("ok name", "x") == "ok name"


def test_class_folders_keep_distinct_classes_distinct():
    folders = class_folders({1: "a/b", 2: "a_b", 3: "A_B", 4: "", 5: "index.csv", 6: "..", 7: "b"})
    assert folders == {1: "a_b", 2: "a_b-2", 3: "A_B-3", 4: "class-4", 5: "index.csv-2",
                       6: "class-6", 7: "b"}


def test_imagefolder_zip_stays_inside_its_folders(hostile, tmp_path):
    result = export_imagefolder(hostile, tmp_path / "images.zip", include_labeled=True,
                                include_predicted=True, min_confidence=0.8)
    assert (result.n_images, result.n_labeled, result.n_predicted) == (7, 4, 3)  # image 7: 0.5
    with zipfile.ZipFile(tmp_path / "images.zip") as zf:
        entries = zf.namelist()
        index = pd.read_csv(io.BytesIO(zf.read("index.csv")), keep_default_na=False)
        pixels = {n: np.asarray(Image.open(io.BytesIO(zf.read(n))))
                  for n in entries if n != "index.csv"}
        zf.extractall(tmp_path / "out")
    folders = set()
    for entry in entries:
        parts = PurePosixPath(entry).parts
        assert "\\" not in entry and not entry.startswith("/") and ":" not in entry
        assert entry == "index.csv" or (len(parts) == 2 and parts[1].endswith(".png")), entry
        assert not {"", ".", ".."} & set(parts) and all(c.isprintable() for c in entry)
        if len(parts) == 2:
            folders.add(parts[0])
    assert len(folders) == 7 and len({f.casefold() for f in folders}) == 7
    assert folders == set(result.per_class)
    assert {"CON", "a/b", "../../etc", "<script>"}.isdisjoint(folders) and "_CON" in folders
    root = (tmp_path / "out").resolve()
    extracted = [p for p in root.rglob("*") if p.is_file()]
    assert len(extracted) == 8 and all(p.resolve().is_relative_to(root) for p in extracted)
    assert {p.parent.name for p in extracted if p.suffix == ".png"} == folders
    stored = ImageStore(hostile).images()
    assert index["id"].tolist() == list(range(7))
    assert index["origin"].tolist() == ["label"] * 4 + ["prediction"] * 3
    assert index["class"].tolist() == ["../../etc", "a/b", "a_b", "'=SUM(A1)", "CON", "<script>",
                                       "x\x00\u202ey"]
    assert index["confidence"].tolist()[4:] == pytest.approx([0.9] * 3)
    for path, image_id in zip(index["path"], index["id"]):
        assert np.array_equal(pixels[path], stored[image_id])       # lossless, RGB kept


def test_imagefolder_options_choose_the_images(trained, tmp_path):
    labels = current_labels(trained.store)
    pred = load_predictions(trained)
    confident = (labels < 0) & (pred.confidence >= 0.6)
    assert 0 < confident.sum() < (labels < 0).sum()
    sel = select_images(trained, include_labeled=False, include_predicted=True, min_confidence=0.6)
    assert np.array_equal(sel.ids, np.flatnonzero(confident)) and sel.n_labeled == 0
    assert np.array_equal(sel.classes, pred.labels[confident])
    sel = select_images(trained, True, True, 0.6)
    assert sel.n_labeled == 15 and sel.n_predicted == confident.sum()
    calls = []
    result = export_imagefolder(trained, tmp_path / "l.zip",
                                progress=lambda done, total: calls.append((done, total)))
    assert result.n_images == 15 and calls[-1] == (15, 15)
    assert result.per_class == {"digit 0": 5, "digit 1": 5, "digit 2": 5}
    with zipfile.ZipFile(tmp_path / "l.zip") as zf:
        first = sorted(n for n in zf.namelist() if n.startswith("digit 0/"))[0]
    image_id = np.flatnonzero(labels == 1)[0]                      # digits/<id>, 4-digit ids
    assert first == f"digit 0/{image_id:04d}_{image_id}.png"


def test_imagefolder_with_nothing_selected_writes_nothing(trained, digits_project, tmp_path):
    out = tmp_path / "keep.zip"
    out.write_bytes(b"previous")
    with pytest.raises(ValueError, match="include labeled and/or predicted"):
        export_imagefolder(trained, out, include_labeled=False, include_predicted=False)
    with pytest.raises(ValueError, match="no image is labeled"):
        export_imagefolder(digits_project, out)
    with pytest.raises(ValueError, match="min_confidence"):
        export_imagefolder(trained, out, min_confidence=1.5)
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == [
        "keep.zip", "project"]


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


def test_imagefolder_streams_to_disk_while_it_writes(trained, tmp_path):
    """The zip grows on disk during the export: PNGs are not collected in memory first."""
    sizes = []

    def progress(done, total):
        sizes.append((done, sum(p.stat().st_size for p in tmp_path.glob(".all.zip.*.tmp"))))

    result = export_imagefolder(trained, tmp_path / "all.zip", include_labeled=True,
                                include_predicted=True, min_confidence=0.0, progress=progress)
    assert result.n_images == 1797 and [d for d, _ in sizes] == [1000, 1797]
    assert sizes[0][1] > 1000 * 60 and sizes[1][1] > sizes[0][1]     # >= 1000 PNGs on disk
    assert not list(tmp_path.glob("*.tmp"))
