"""`python -m ssl_core`: import prints the report, export-labels writes CSV, label/undo."""
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "ssl_core", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_import_digits_label_undo_and_export(tmp_path):
    proj = tmp_path / "p"
    out = cli("import", "--source", "digits", "--project", proj).stdout
    assert "Imported 1,797 images from digits as 8x8x1" in out
    assert "10 classes (kept for evaluation only)" in out
    assert "labeled 3 images as 'seven'" in cli("label", "--project", proj, "--ids", "0,1,2",
                                                 "--label", "seven").stdout
    cli("label", "--project", proj, "--ids", "2,3", "--label", "one")
    cli("undo", "--project", proj)
    cli("export-labels", "--project", proj, "--out", tmp_path / "labels.csv")
    frame = pd.read_csv(tmp_path / "labels.csv")
    assert list(frame.columns) == ["image_id", "name", "source", "label"]
    assert frame.sort_values("image_id")["label"].tolist() == ["seven"] * 3


def test_import_mnist_from_a_copy_of_the_shared_data(tmp_path, shared_data):
    root = tmp_path / "data"
    shutil.copytree(shared_data / "MNIST", root / "MNIST")
    out = cli("import", "--source", "mnist", "--data-root", root, "--project", tmp_path / "m",
              "--no-download").stdout
    assert "Imported 70,000 images from mnist as 28x28x1" in out


def test_import_of_nothing_says_so_and_exits_nonzero(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not really a png")
    (folder / "b.jpg").write_bytes(b"")
    proc = cli("import", "--source", "folder", "--path", folder, "--project", tmp_path / "p",
               check=False)
    assert proc.returncode == 1
    assert "No image could be imported" in proc.stdout
    assert "a.png" in proc.stdout and "b.jpg" in proc.stdout


def test_clear_errors_without_traceback(tmp_path):
    proc = cli("import", "--source", "mnist", "--data-root", tmp_path / "nothing",
               "--project", tmp_path / "p", "--no-download", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "mnist is not under" in proc.stderr
    proc = cli("import", "--source", "folder", "--path", tmp_path / "missing",
               "--project", tmp_path / "p", check=False)
    assert proc.returncode == 1 and "is not a folder" in proc.stderr
    proc = cli("export-labels", "--project", tmp_path / "nope", "--out", tmp_path / "x.csv",
               check=False)
    assert proc.returncode == 1 and "not a Latentlab project" in proc.stderr


def test_runs_table_and_json_and_class_mapping(tmp_path):
    import json

    from test_class_mapping import WORDS, make_worded

    from ssl_core.project.folder import Project

    proj = tmp_path / "worded"
    _, expected = make_worded(Project.create(proj))
    out = cli("runs", "--project", proj).stdout
    header, row = out.splitlines()[:2]
    for column in ("id", "method", "labels", "validation (95% CI, n, of)", "test (transductive)",
                   "gain (points)", "seconds", "started"):
        assert column in header
    assert row.split()[:3] == ["1", "graph", "50"]
    assert "100.0% (95% CI" in row and "measured on 10 labels" in row
    assert "n/a" in row and "+20.0 (validation)" in row
    assert "transductive" in out
    listed = json.loads(cli("runs", "--project", proj, "--json").stdout)
    assert [r["id"] for r in listed] == [1] and listed[0]["labels"] == 50
    assert listed[0]["validation"]["n"] == 10 and listed[0]["test"] is None
    assert listed[0]["gain"] == {"validation": 20.0}

    out = cli("class-mapping", "--project", proj, "--suggest").stdout
    assert "no mapping confirmed" in out and "'7' -> 'seven'" in out
    proc = cli("class-mapping", "--project", proj, "--set", "0=zero", "1=zero",
               check=False)
    assert proc.returncode == 1 and "would stand for 2" in proc.stderr
    assert "Traceback" not in proc.stderr
    pairs = [f"{d}={w}" for d, w in enumerate(WORDS)]
    out = cli("class-mapping", "--project", proj, "--set", *pairs, "--rescore").stdout
    assert "'9' -> 'nine'" in out and f"test accuracy {100 * expected:.1f}%" in out
    listed = json.loads(cli("runs", "--project", proj, "--json").stdout)
    assert listed[0]["test"]["value"] == pytest.approx(expected)
    assert listed[0]["test_transductive"] is True


def test_train_prints_the_honest_summary():
    from ssl_core.results.run_text import summary_lines

    val = {"value": 0.9, "low": 0.8, "high": 0.95, "n": 40}
    lines = summary_lines(3, "graph", {
        "n_labels": 200, "representation": "pixels", "validation": val,
        "validation_of": "40 held-out labels", "test": {**val, "n": 360},
        "n_labels_sealed": 7, "baseline": {"validation": val}, "gain": {"test": 4.25}})
    text = "\n".join(lines)
    assert lines[0] == "run 3: graph on 200 labels (pixels)"
    assert "validation (labels held out of training): 90.0% (95% CI 80.0-95.0%, n=40), " \
           "measured on 40 held-out labels" in text
    assert "test accuracy on the sealed evaluation images (transductive" in text
    assert "pool): 90.0% (95% CI 80.0-95.0%, n=360)" in text
    assert "7 of your labels are on evaluation images" in text
    assert "gain over the supervised baseline: test +4.2 points" in text
    assert "class-mapping" in "\n".join(summary_lines(1, "graph", {"n_labels": 2}))
