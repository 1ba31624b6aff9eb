"""Job kind 'import': import a source into the project in a worker process (the Images page's
import form and the CLI's import both end up in data/importer.py's `import_source`).

An uploaded archive is removed once imported, with its private upload folder.

One import per project runs at a time (data/import_lock.py). A job started while another import
into its project is running (a second browser tab, the CLI) waits for it: its progress says
"another import into project ... is running", and it can be cancelled while it waits.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ssl_core.data.importer import ImportConfig, ImportFailed, import_source
from ssl_core.data.sources import SourceSpec


def run_import_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Job kind 'import' (see worker.py): params = {"source": SourceSpec fields, "config": ...,
    "delete_after": path of an uploaded archive to remove once imported}."""
    spec = SourceSpec(**params["source"])
    try:
        report = import_source(ctx.project, spec, ImportConfig.from_dict(params.get("config")),
                               progress=ctx.progress, wait=True)
    finally:
        if params.get("delete_after"):
            _remove_upload(Path(params["delete_after"]))
    if report.imported == 0:
        raise ImportFailed(report.summary())
    return asdict(report)


def _remove_upload(path: Path) -> None:
    """Delete an uploaded archive once imported, and its private upload folder if now empty."""
    if path.exists():
        path.unlink()
    try:
        path.parent.rmdir()                    # only succeeds when empty (the upload's own folder)
    except OSError:
        pass
