"""Export a trained model as one zip that loads anywhere Latentlab's code is importable.

    config.json     method, config, class ids of the output columns, input shape (as saved)
    weights.pt      state_dicts and tensors only: load with torch.load(weights_only=True)
    classes.json    output column -> project class id and class name
    load_model.py   the snippet below: load the model, predict image files
    README.md       what these files are and how to use them

Entries are flat (no folders) and fixed in name, so extracting the zip cannot write anywhere
but where the user extracts it. Only finished runs with a complete model folder are offered.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import BinaryIO

from ssl_core.export.tables import class_names
from ssl_core.project.errors import ProjectError
from ssl_core.project.files import atomic_path
from ssl_core.project.folder import Project
from ssl_core.results.retention import mark_exported
from ssl_core.results.runs import Run, list_runs

MODEL_FILES = ("config.json", "weights.pt")

LOAD_SNIPPET = '''\
"""Predict image files with a model exported from Latentlab.

    python load_model.py image1.png image2.jpg ...

Needs Latentlab's code: run it with Latentlab's Python and PYTHONPATH set to its folder,
e.g. PYTHONPATH=~/latentlab ~/latentlab/.venv/bin/python load_model.py *.png
"""
import json
import sys
from pathlib import Path

import numpy as np

from ssl_core.data.decode import decode_image
from ssl_core.models.registry import load_model

here = Path(__file__).resolve().parent
model = load_model(here)              # config.json + weights.pt (weights only)
classes = json.loads((here / "classes.json").read_text())["classes"]
names = [c["name"] for c in classes]  # names[k]: the class of output column k
height, width, channels = model.input_shape_

paths = sys.argv[1:]
if not paths:
    sys.exit(__doc__)
# Decoded as the importer stores images: centre-cropped, resized, uint8.
X = np.stack([decode_image(Path(p).read_bytes(), (height, width), channels)
              for p in paths])                # (N, H, W, C)
proba = model.predict_proba(X)                # (N, K) class probabilities
for path, row in zip(paths, proba):
    print(f"{path}\\t{names[int(row.argmax())]}\\t{row.max():.4f}")
'''

_README = """\
# Latentlab model: project {project}, run {run_id} ({method})

Trained on {n_labels} labels. Validation accuracy: {validation}.

| file | what |
| --- | --- |
| config.json | method, its config, the project class id of each output column, input shape |
| weights.pt | the model's state_dicts (tensors only): `torch.load(path, weights_only=True)` |
| classes.json | output column -> class id and class name |
| load_model.py | load the model and predict image files (below) |

Input: images as `(N, H, W, C)` uint8 arrays with `(H, W, C)` = {shape}; `predict_proba`
returns `(N, K)` probabilities whose column k is entry k of classes.json.

```bash
PYTHONPATH=/path/to/latentlab python load_model.py image1.png image2.png
```

```python
{snippet}```
"""


def model_folder(project: Project, run: Run) -> Path | None:
    """Where the run's model lies, or None when it is missing or incomplete. The train job
    saves it under models/run-<id>; the path in the summary is a fallback (older projects)."""
    if not run.summary:
        return None
    candidates = [project.models_dir / f"run-{run.id}"]
    if run.summary.get("model"):
        candidates.append(Path(run.summary["model"]))
    for folder in candidates:
        if all((folder / name).is_file() for name in MODEL_FILES):
            return folder
    return None


def exportable_runs(project: Project) -> list[Run]:
    """Finished runs whose model can be exported, newest first."""
    return [run for run in list_runs(project.store) if model_folder(project, run) is not None]


def _find_run(project: Project, run_id: int | None) -> tuple[Run, Path]:
    runs = exportable_runs(project)
    if not runs:
        raise ValueError("no trained model yet: train one first (the Train page, or a 'train' job)")
    if run_id is None:
        run = runs[0]
    else:
        run = next((r for r in runs if r.id == run_id), None)
        if run is None:
            raise ValueError(f"run {run_id} has no saved model; runs with one: "
                             f"{', '.join(str(r.id) for r in runs)}")
    return run, model_folder(project, run)


def classes_table(project: Project, config: dict) -> dict:
    """classes.json: the output columns in order, each with its class id and current name."""
    names = class_names(project)
    return {"classes": [{"column": k, "class_id": int(c), "name": names.get(int(c), f"class {c}")}
                        for k, c in enumerate(config["classes"])]}


def write_model_zip(project: Project, fileobj: BinaryIO, run_id: int | None = None) -> Run:
    """Write the zip of run `run_id` (default: the newest with a model) to `fileobj`."""
    run, folder = _find_run(project, run_id)
    config = json.loads((folder / "config.json").read_text())
    validation = (run.summary or {}).get("validation")
    readme = _README.format(project=project.name, run_id=run.id, method=run.method,
                            n_labels=run.n_labels, shape="×".join(map(str, config["input_shape"])),
                            validation=f"{validation['value']:.1%} on {validation['n']} labels"
                            if validation else "not measured (too few labels)",
                            snippet=LOAD_SNIPPET)
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in MODEL_FILES:
            zf.write(folder / name, name)
        for name, text in (("classes.json", json.dumps(classes_table(project, config), indent=2)),
                           ("load_model.py", LOAD_SNIPPET), ("README.md", readme)):
            info = zipfile.ZipInfo(name, stamp)
            info.external_attr = 0o644 << 16
            zf.writestr(info, text.encode("utf-8"), zipfile.ZIP_DEFLATED)
    try:
        mark_exported(project.store, run.id)     # its folder is never pruned (retention.py)
    except ProjectError:                         # read-only or full project: the zip still works
        pass
    return run


def model_zip(project: Project, run_id: int | None = None) -> bytes:
    """The model zip as bytes (for a download button)."""
    buffer = io.BytesIO()
    write_model_zip(project, buffer, run_id)
    return buffer.getvalue()


def export_model(project: Project, out: str | Path, run_id: int | None = None) -> Run:
    """Write the model zip to `out` atomically; returns the run it holds."""
    with atomic_path(out, "the model zip") as tmp, open(tmp, "wb") as fh:
        run = write_model_zip(project, fh, run_id)
    return run
