"""ssl_core: Latentlab's library. It never imports Streamlit; a notebook, the CLI
(`python -m ssl_core`), background workers and the app all use it the same way.

Packages, lowest layer first. A module may import its own package and the layers below it,
never one above (tests/test_architecture.py checks this):

    progress.py, threads.py      shared mechanisms: the progress callback type; CPU threads
    project/                     the project folder, its SQLite store, atomic file writes
    neighbours.py                k nearest neighbours (one function, one convention)
    training/                    the training loop, learning-rate schedules, validation, threads
    data/                        sources, public datasets, decoding, zip guards, the importer,
                                 read access to a project's images, thumbnails
    labeling/                    the label event log (undo), classes, map selections,
                                 suggestions, the label queue
    models/                      the estimators (scikit-learn style, -1 = unlabeled), their
                                 networks, label propagation, preprocessing, the registry
    latentmap/                   the 2-D map: UMAP layout and the map files
    results/                     runs, reports, history tables, predictions, sample grids
    export/                      CSV tables, the model zip, the ImageFolder zip
    jobs/                        job records, the worker, retrain requests, live training
                                 progress, one module per job kind (import, map, train)
    cli.py                       the command line

`from ssl_core import make_estimator, load_model` is the public entry to the engine; it is
imported lazily so that `import ssl_core.project` does not pay for torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["make_estimator", "load_model"]

if TYPE_CHECKING:
    from ssl_core.models.registry import load_model, make_estimator


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ssl_core.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'ssl_core' has no attribute {name!r}")
