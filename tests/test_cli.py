"""`python -m ssl_core`: import prints the report, export-labels writes CSV, label/undo."""
import shutil
import subprocess
import sys

import pandas as pd
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
