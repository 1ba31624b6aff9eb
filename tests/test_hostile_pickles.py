"""A model file carrying a malicious pickle is refused wherever Latentlab loads one, and its
payload never runs.

The payload is live (unpickled plainly, it creates a marker file) and is saved the way a real
attack would ship it: with torch.save, inside an ordinary-looking weights.pt. Already covered
elsewhere with a raw pickle: load_model for the graph and default methods (test_engine.py)
and SupervisedBaseline.load (test_baseline.py). Here: every method through load_model, the
map's VAE (Samples page and the map job's warm start), the GAN of the Samples page, the
train job's warm start, the trainer's resumable checkpoint, and the load_model.py that ships
in an exported model zip, run as a user would run it.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import REPO
from hostile_files import TRIED, print_tried
from PIL import Image
from streamlit.testing.v1 import AppTest

from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.export.model_zip import export_model
from ssl_core.jobs.map_job import _previous_vae
from ssl_core.jobs.train_job import _warm_start
from ssl_core.models.base import ModelFileError
from ssl_core.models.registry import METHODS, load_model, make_estimator
from ssl_core.models.vae import VAE, VAEConfig
from ssl_core.project.folder import Project, projects_dir
from ssl_core.results import samples
from ssl_core.results.runs import create_run, finish_run


@pytest.fixture(scope="module", autouse=True)
def print_tally():
    yield
    print_tried()


class Payload:
    """Unpickling this calls Path.touch(marker): code execution, made visible."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "PWNED"
    pickle.loads(pickle.dumps(Payload(path)))        # the payload is live...
    assert path.exists()
    path.unlink()                                    # ...and every test checks it never ran again
    yield path
    assert not path.exists(), "the malicious pickle ran"


def plant(folder: Path, method: str, marker: Path) -> Path:
    """A model folder whose config.json is plausible and whose weights.pt is the payload."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({
        "method": method, "config": {}, "random_state": 0, "classes": [0, 1],
        "input_shape": [8, 8, 1]}))
    torch.save({"net": Payload(marker)}, folder / "weights.pt")
    return folder


@pytest.mark.parametrize("method", [*METHODS, VAE.method])
def test_load_model_refuses_every_method(tmp_path, marker, method):
    folder = plant(tmp_path / method, method, marker)
    loader = VAE.load if method == VAE.method else load_model
    with pytest.raises(ModelFileError, match="refused to load .*weights.pt: not a plain weights file"):
        loader(folder)
    TRIED[("malicious weights.pt", "refused")] += 1


def test_samples_page_and_its_loaders_refuse_the_models(latentlab_home, marker):
    project = Project.create(projects_dir() / "pickled")
    plant(project.models_dir / "vae", VAE.method, marker)
    run = create_run(project.store, "gan", {}, 2)
    finish_run(project.store, run, {"model": str(plant(project.models_dir / f"run-{run}", "gan",
                                                       marker))})
    with pytest.raises(samples.NoVAEYet, match="VAE cannot be read .*refused to load"):
        samples.load_project_vae(project)
    with pytest.raises(samples.NoGANYet, match=f"model of run {run} cannot be read .*refused"):
        samples.load_gan(project)
    import_source(project, SourceSpec("digits"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/samples.py").run()
    assert not at.exception, at.exception
    infos = " ".join(i.value for i in at.info)
    assert "cannot be read" in infos and "Rebuild the map" in infos and "Train the gan" in infos
    TRIED[("malicious weights.pt", "refused")] += 2


def test_warm_starts_skip_a_malicious_model(project, marker):
    plant(project.models_dir / "vae", VAE.method, marker)
    assert _previous_vae(project, (8, 8, 1), VAEConfig()) is None   # the map trains a new VAE
    run = create_run(project.store, "default", {}, 2)
    finish_run(project.store, run, {"validation": None})
    plant(project.models_dir / f"run-{run}", "default", marker)
    assert _warm_start(project, "default", make_estimator("default"), "pixels") == (None, None)
    TRIED[("malicious weights.pt", "refused")] += 2


def test_exported_model_zip_refuses_a_malicious_model(project, tmp_path, marker):
    run = create_run(project.store, "graph", {}, 2)
    finish_run(project.store, run, {"validation": None})
    plant(project.models_dir / f"run-{run}", "graph", marker)
    export_model(project, tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as zf:
        zf.extractall(tmp_path / "unzipped")
    image = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(image)
    out = subprocess.run([sys.executable, "load_model.py", str(image)], cwd=tmp_path / "unzipped",
                         env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode != 0 and "refused to load" in out.stderr, out.stderr[-2000:]
    TRIED[("malicious exported model", "refused")] += 1
