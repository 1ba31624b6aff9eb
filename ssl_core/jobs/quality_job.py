"""Job kind 'quality': the project's data-quality report (quality/compute.py) in the background.

Label balance is cheap and computed where it is shown; duplicates, outliers and likely label
errors need the features, a nearest-neighbour search and a cross-validated propagation, tens of
seconds at 70,000 images, so they run here with progress and are cached until the images, the
labels or the model change (each part under its own key: a relabel recomputes only the label
errors). The report is written only while this worker still owns the job.
"""
from __future__ import annotations

from typing import Any

from ssl_core.quality.compute import compute_quality


def run_quality_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """params: {"force": false, "seed": 0}. Returns the parts' sizes and seconds."""
    report = compute_quality(ctx.project, ctx.progress, getattr(ctx, "check_claim", None),
                             force=bool(params.get("force", False)),
                             seed=int(params.get("seed", 0)))
    out: dict[str, Any] = {}
    for part, got in report.parts.items():
        result = got["result"]
        size = len(result.get("groups", result.get("ids", result.get("issues", []))))
        out[part] = {"n": size, "seconds": result.get("seconds")}
    return out
