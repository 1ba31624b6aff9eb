"""Retrain requests: one training job per project at a time, later requests coalesced.

The user may press Retrain while a model is training (they keep labeling meanwhile). Starting
a second fit at once would halve both on two cores, and queueing every click would train on
labels that are already out of date. So:

- no train job active            -> a new job starts now;
- one active with the same settings, and no label changed since it read its labels (or it
  has not read them yet)          -> nothing new: that job already trains on exactly this
                                     (two sessions pressing Retrain at once get one job);
- one active (training)           -> a new job is queued behind it (its worker waits its turn);
- a queued one already waits      -> the request is folded into it (its method and budget are
                                     updated); it reads the labels only when it starts, so it
                                     trains on everything labeled up to then.

The check and the insert happen in one write transaction, so two browser sessions pressing
Retrain at the same moment cannot both queue a job. `wait_for_turn` is what a train job calls
first: it holds the job (heartbeat running, cancellable) until every older train job is done,
then returns the job's latest params.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from ssl_core.jobs import records as jobs
from ssl_core.labeling.label_log import labels_version
from ssl_core.project.folder import Project

KIND = "train"
WAIT_POLL_S = 0.5
SNAPSHOT_KEY = "labels_version"   # in a running job's params: the label-log version it read


@dataclass(frozen=True)
class RetrainRequest:
    job_id: int
    coalesced: bool        # folded into a job that was already queued
    behind: int | None     # the job it waits for, if any


def request_retrain(project: Project, params: dict[str, Any],
                    start: Callable[[Project, int], None] | None = None) -> RetrainRequest:
    """Ask for a retrain with `params` (method, budget_s, ...). Starts, queues or coalesces as
    described above; `start(project, job_id)` starts a worker (default: a worker process)."""
    if start is None:
        from ssl_core.jobs.worker import start_worker as start
    active_sql = "SELECT id, params FROM jobs WHERE kind = ? AND status IN (?, ?) ORDER BY id"
    with project.store.write() as conn:
        rows = conn.execute(active_sql, (KIND, *jobs.ACTIVE)).fetchall()
        active = [r["id"] for r in rows]
        if len(rows) == 1 and _same_fit(json.loads(rows[0]["params"]), params, conn):
            return RetrainRequest(active[0], True, None)
        if len(active) >= 2:                       # the newest one is waiting: fold into it
            conn.execute("UPDATE jobs SET params = ? WHERE id = ?", (json.dumps(params), active[-1]))
            return RetrainRequest(active[-1], True, active[-2])
        job_id = conn.execute("INSERT INTO jobs (kind, params, status, created_at) VALUES (?, ?, ?, ?)",
                              (KIND, json.dumps(params), jobs.JobStatus.QUEUED.value,
                               time.time())).lastrowid
    start(project, job_id)
    return RetrainRequest(job_id, False, active[-1] if active else None)


def _same_fit(active: dict[str, Any], asked: dict[str, Any], conn) -> bool:
    """Would the asked retrain repeat the active job? Same settings, and the labels it read
    (`SNAPSHOT_KEY`, recorded by the train job when it reads them) are still the current ones,
    or it has not read them yet."""
    seen = active.get(SNAPSHOT_KEY)
    settings = {k: v for k, v in active.items() if k != SNAPSHOT_KEY}
    return settings == asked and (seen is None or seen == labels_version(conn))


def record_snapshot(conn, job_id: int, version: int) -> None:
    """Note on the job which label-log version it trains on (inside the caller's fenced write)."""
    conn.execute("UPDATE jobs SET params = json_set(params, '$.' || ?, ?) WHERE id = ?",
                 (SNAPSHOT_KEY, version, job_id))


def older_active(project: Project, job_id: int) -> list[int]:
    """Train jobs started before `job_id` that have not finished (dead workers reaped first)."""
    jobs.reap_stale(project.store)
    with project.store.read() as conn:
        rows = conn.execute("SELECT id FROM jobs WHERE kind = ? AND status IN (?, ?) AND id < ? "
                            "ORDER BY id", (KIND, *jobs.ACTIVE, job_id)).fetchall()
    return [r["id"] for r in rows]


def wait_for_turn(ctx) -> dict[str, Any]:
    """Block (cancellably) until no older train job is active; return this job's params as they
    are now, i.e. with any coalesced request applied."""
    while True:
        ahead = older_active(ctx.project, ctx.job_id)
        if not ahead:
            break
        ctx.progress(0.0, f"queued: starts when job {ahead[-1]} finishes")
        time.sleep(WAIT_POLL_S)
    params = jobs.get_job(ctx.project.store, ctx.job_id).params
    params.pop(SNAPSHOT_KEY, None)
    return params
