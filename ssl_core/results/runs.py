"""Training runs and their metrics in the project store.

A run is one fit of one method on the labels of the moment: its config, how many labels it
saw, the metrics it logged while training (loss, validation accuracy, ... per step) and a final
summary (accuracies with intervals, where its model was saved). The UI reads these for curves,
history and the learning curve across runs.

A train job passes its worker's `fence` (jobs/worker.py: JobContext.fence): called inside each
write transaction before the write, it raises when the job is no longer that worker's, so a
reaped worker adds no run, metric or summary (the transaction is rolled back)."""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ssl_core.project.store import Store

Fence = Callable[[sqlite3.Connection], None]   # raises to refuse a write (a lost job claim)


@dataclass(frozen=True)
class Run:
    id: int
    job_id: int | None
    method: str
    config: dict[str, Any]
    n_labels: int
    created_at: float
    summary: dict[str, Any] | None


def create_run(store: Store, method: str, config: dict[str, Any], n_labels: int,
               job_id: int | None = None, fence: Fence | None = None) -> int:
    with store.write() as conn:
        if fence is not None:
            fence(conn)
        return conn.execute("INSERT INTO runs (job_id, method, config, n_labels, created_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (job_id, method, json.dumps(config), n_labels, time.time())).lastrowid


def log_metrics(store: Store, run_id: int, step: int, values: dict[str, float],
                fence: Fence | None = None) -> None:
    """Record several named values at one step, in one transaction."""
    now = time.time()
    with store.write() as conn:
        if fence is not None:
            fence(conn)
        conn.executemany("INSERT INTO metrics (run_id, step, name, value, ts) VALUES (?, ?, ?, ?, ?)",
                         [(run_id, step, name, float(v), now) for name, v in values.items()])


def metric_series(store: Store, run_id: int, name: str) -> list[tuple[int, float]]:
    with store.read() as conn:
        rows = conn.execute("SELECT step, value FROM metrics WHERE run_id = ? AND name = ? "
                            "ORDER BY step", (run_id, name)).fetchall()
    return [(r["step"], r["value"]) for r in rows]


def finish_run(store: Store, run_id: int, summary: dict[str, Any],
               fence: Fence | None = None) -> None:
    with store.write() as conn:
        if fence is not None:
            fence(conn)
        conn.execute("UPDATE runs SET summary = ? WHERE id = ?", (json.dumps(summary), run_id))


def list_runs(store: Store, limit: int = 100) -> list[Run]:
    """Newest first."""
    with store.read() as conn:
        rows = conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [_row_to_run(r) for r in rows]


def _row_to_run(r) -> Run:
    return Run(r["id"], r["job_id"], r["method"], json.loads(r["config"]), r["n_labels"],
               r["created_at"], json.loads(r["summary"]) if r["summary"] else None)


def run_for_job(store: Store, job_id: int) -> Run | None:
    """The run a train job created (None while it waits its turn or before it starts)."""
    with store.read() as conn:
        row = conn.execute("SELECT * FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT 1",
                           (job_id,)).fetchone()
    return None if row is None else _row_to_run(row)


def run_metrics(store: Store, run_id: int) -> dict[str, list[tuple[int, float]]]:
    """Every metric a run logged: name -> [(step, value)] in step order (one query)."""
    with store.read() as conn:
        rows = conn.execute("SELECT step, name, value FROM metrics WHERE run_id = ? ORDER BY step",
                            (run_id,)).fetchall()
    out: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        out.setdefault(r["name"], []).append((r["step"], r["value"]))
    return out
