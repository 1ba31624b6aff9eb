"""What a training job shows while it runs: progress with ETA, logged curves, preview grids.

`LiveReporter` is the trainer callback of a train job. After every optimisation step it is a
cancel point; every ~2 s it writes the step's losses and validation metrics to the run's
metrics (the loss and accuracy curves) and the job's progress and ETA; every ~10 s, and at the
end of each stage, it asks the model for `preview()` (generated or per-class images) and writes
it as a PNG grid the Train page polls. Metrics are fenced by the worker's claim (worker.py), and
a preview is written only while the worker still owns the job. Nothing here imports streamlit.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ssl_core.data.thumbnails import contact_sheet, to_png
from ssl_core.project.files import write_bytes_atomic
from ssl_core.project.folder import Project
from ssl_core.results.runs import log_metrics

METRICS_EVERY_S = 2.0
PREVIEW_EVERY_S = 10.0
PREVIEW_PER_CLASS = 8


def run_folder(project: Project, run_id: int) -> Path:
    """Files a run writes beside the database (its live preview)."""
    return project.root / "runs" / str(run_id)


def preview_path(project: Project, run_id: int) -> Path:
    return run_folder(project, run_id) / "preview.png"


def generated_path(project: Project, run_id: int) -> Path:
    """The grid of generated images a run trained on (issue 17), a row per class."""
    return run_folder(project, run_id) / "generated.png"


def write_generated(project: Project, run_id: int, grid: np.ndarray) -> Path:
    """Write a run's generated-image grid (K, g, H, W, C) uint8 as a PNG, atomically."""
    path = generated_path(project, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(path, to_png(preview_sheet(grid)), "the generated images")


def preview_sheet(grid: np.ndarray) -> np.ndarray:
    """(K, n, H, W, C) uint8 -> one image, a row per class."""
    k, n = grid.shape[:2]
    return contact_sheet(grid.reshape(k * n, *grid.shape[2:]), cols=n)


def write_preview(project: Project, run_id: int, grid: np.ndarray) -> Path:
    """Write the preview PNG atomically (the page may read it at any moment)."""
    path = preview_path(project, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(path, to_png(preview_sheet(grid)), "the training preview")


def eta_text(elapsed_s: float, budget_s: float) -> str:
    left = max(0.0, budget_s - elapsed_s)
    return f"{elapsed_s:.0f} s elapsed · at most {left:.0f} s left"


class LiveReporter:
    """Trainer callback for a train job (see module docstring). `model` is the estimator being
    fitted; its `preview()` is called between steps, which is safe for every method."""

    def __init__(self, ctx, run_id: int, budget_s: float, model, label: str = "",
                 record: bool = True, span: tuple[float, float] = (0.0, 0.95)):
        """`record`: log curves and previews (False for the comparison baseline, which only
        reports progress); `span`: the part of the job's progress bar this fit fills."""
        self.ctx, self.run_id, self.budget_s, self.model = ctx, run_id, budget_s, model
        self.label, self.record, self.span = label, record, span
        self.t0 = time.perf_counter()
        self.last_log = self.last_preview = -1e9
        self.stage = ""
        self.last_metrics: dict = {}
        self.step = 0

    def __call__(self, progress) -> None:
        self.step += 1
        now = time.perf_counter()
        stage_changed = progress.stage != self.stage
        self.stage = progress.stage
        if self.record and (stage_changed or now - self.last_preview >= PREVIEW_EVERY_S):
            self._preview()
            self.last_preview = time.perf_counter()
        new_metrics = progress.metrics != self.last_metrics       # e.g. a stage's validation
        if stage_changed or new_metrics or now - self.last_log >= METRICS_EVERY_S:
            self.last_log, self.last_metrics = now, dict(progress.metrics)
            self._log(progress, now - self.t0)
        else:
            self.ctx.check_cancelled()

    def _log(self, progress, elapsed: float) -> None:
        values = {**progress.losses, **{k: v for k, v in progress.metrics.items()
                                        if isinstance(v, (int, float))}}
        if values and self.record:
            log_metrics(self.ctx.project.store, self.run_id, self.step,
                        {**values, "elapsed_s": elapsed}, fence=getattr(self.ctx, "fence", None))
        lo, hi = self.span
        fraction = lo + (hi - lo) * min(1.0, max(elapsed / self.budget_s, 0.0))
        self.ctx.progress(fraction, f"{self.label}{progress.stage or 'training'} · "
                                    f"{eta_text(elapsed, self.budget_s)}")

    def _preview(self) -> None:
        try:                       # a preview (or a full disk) must never break training
            grid = self.model.preview(PREVIEW_PER_CLASS, seed=0)
            if grid is not None:
                check = getattr(self.ctx, "check_claim", None)
                if check is not None:
                    check()
                write_preview(self.ctx.project, self.run_id, grid)
        except Exception as err:
            print(f"preview skipped: {type(err).__name__}: {err}", flush=True)
