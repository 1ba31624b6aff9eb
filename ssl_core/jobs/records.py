"""Background job records: what the UI and the worker processes tell each other.

The UI and workers talk only through the `jobs` table. A worker owns a job once it has claimed
it (QUEUED -> RUNNING) and proves it is alive by writing `heartbeat_at` every second. Liveness
is judged from that heartbeat, never from a PID: a worker killed with SIGKILL, or a machine that
rebooted, leaves a RUNNING row whose heartbeat goes stale, and `reap_stale` turns it into FAILED
with a message saying so. Cancelling is cooperative (the worker sees `cancel_requested` on its
next heartbeat) with a hard stop in the worker itself if it does not comply in time.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ssl_core.project.store import Store

HEARTBEAT_INTERVAL_S = 1.0  # how often a worker proves it is alive
STALE_AFTER_S = 6.0         # a RUNNING job silent for this long is dead (killed or crashed)
START_TIMEOUT_S = 90.0      # a QUEUED job no worker claimed within this time failed to start


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    params: dict[str, Any]
    status: JobStatus
    progress: float          # 0..1
    message: str
    error: str | None
    result: dict[str, Any] | None
    created_at: float
    started_at: float | None
    heartbeat_at: float | None
    finished_at: float | None
    cancel_requested: bool

    @property
    def elapsed_s(self) -> float:
        end = self.finished_at or time.time()
        return max(0.0, end - (self.started_at or self.created_at))


def _row_to_job(row) -> Job:
    return Job(id=row["id"], kind=row["kind"], params=json.loads(row["params"]),
               status=JobStatus(row["status"]), progress=row["progress"], message=row["message"],
               error=row["error"], result=json.loads(row["result"]) if row["result"] else None,
               created_at=row["created_at"], started_at=row["started_at"],
               heartbeat_at=row["heartbeat_at"], finished_at=row["finished_at"],
               cancel_requested=bool(row["cancel_requested"]))


def create_job(store: Store, kind: str, params: dict[str, Any] | None = None) -> int:
    with store.write() as conn:
        cur = conn.execute("INSERT INTO jobs (kind, params, status, created_at) VALUES (?, ?, ?, ?)",
                           (kind, json.dumps(params or {}), JobStatus.QUEUED.value, time.time()))
        return cur.lastrowid


def get_job(store: Store, job_id: int) -> Job:
    reap_stale(store)
    with store.read() as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise KeyError(f"no job {job_id}")
    return _row_to_job(row)


def list_jobs(store: Store, limit: int = 50, kind: str | None = None) -> list[Job]:
    """Newest first, with dead workers already reaped."""
    reap_stale(store)
    query, args = "SELECT * FROM jobs", []
    if kind:
        query, args = query + " WHERE kind = ?", [kind]
    with store.read() as conn:
        rows = conn.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    return [_row_to_job(r) for r in rows]


def active_jobs(store: Store) -> list[Job]:
    return [j for j in list_jobs(store, limit=200) if not j.status.finished]


def claim(store: Store, job_id: int, pid: int) -> bool:
    """QUEUED -> RUNNING for exactly one worker. False if the job is not queued any more."""
    now = time.time()
    with store.write() as conn:
        cur = conn.execute("UPDATE jobs SET status = ?, pid = ?, started_at = ?, heartbeat_at = ? "
                           "WHERE id = ? AND status = ?",
                           (JobStatus.RUNNING.value, pid, now, now, job_id, JobStatus.QUEUED.value))
        return cur.rowcount == 1


def heartbeat(store: Store, job_id: int) -> bool:
    """Record that the worker is alive; returns whether a cancel was requested."""
    with store.write() as conn:
        conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = ?",
                     (time.time(), job_id, JobStatus.RUNNING.value))
        row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row["cancel_requested"])


def set_progress(store: Store, job_id: int, fraction: float, message: str | None = None) -> None:
    fraction = min(1.0, max(0.0, float(fraction)))
    with store.write() as conn:
        if message is None:
            conn.execute("UPDATE jobs SET progress = ?, heartbeat_at = ? WHERE id = ?",
                         (fraction, time.time(), job_id))
        else:
            conn.execute("UPDATE jobs SET progress = ?, message = ?, heartbeat_at = ? WHERE id = ?",
                         (fraction, message, time.time(), job_id))


def _finish(store: Store, job_id: int, status: JobStatus, *, error: str | None = None,
            result: dict | None = None, message: str | None = None) -> bool:
    """Move a job to a final state once; a job already finished keeps its first outcome."""
    with store.write() as conn:
        cur = conn.execute(
            "UPDATE jobs SET status = ?, error = ?, result = ?, finished_at = ?, "
            "message = COALESCE(?, message), progress = CASE WHEN ? THEN 1.0 ELSE progress END "
            "WHERE id = ? AND status IN (?, ?)",
            (status.value, error, json.dumps(result) if result is not None else None, time.time(),
             message, status is JobStatus.SUCCEEDED, job_id, *ACTIVE))
        return cur.rowcount == 1


def succeed(store: Store, job_id: int, result: dict | None = None) -> bool:
    return _finish(store, job_id, JobStatus.SUCCEEDED, result=result, message="done")


def fail(store: Store, job_id: int, error: str) -> bool:
    return _finish(store, job_id, JobStatus.FAILED, error=error)


def mark_cancelled(store: Store, job_id: int) -> bool:
    return _finish(store, job_id, JobStatus.CANCELLED, message="cancelled")


def request_cancel(store: Store, job_id: int) -> None:
    """Ask a job to stop. A queued job is cancelled at once; a running one at its next check."""
    with store.write() as conn:
        conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        conn.execute("UPDATE jobs SET status = ?, finished_at = ?, message = 'cancelled' "
                     "WHERE id = ? AND status = ?",
                     (JobStatus.CANCELLED.value, time.time(), job_id, JobStatus.QUEUED.value))


def reap_stale(store: Store, now: float | None = None) -> list[int]:
    """Mark jobs whose worker is gone as FAILED; returns their ids.

    Read first and write only when something is stale, so frequent UI polling stays cheap."""
    now = time.time() if now is None else now
    with store.read() as conn:
        dead = conn.execute(
            "SELECT id, status FROM jobs WHERE (status = ? AND heartbeat_at < ?) "
            "OR (status = ? AND created_at < ?)",
            (JobStatus.RUNNING.value, now - STALE_AFTER_S,
             JobStatus.QUEUED.value, now - START_TIMEOUT_S)).fetchall()
    reaped = []
    for row in dead:
        running = row["status"] == JobStatus.RUNNING.value
        why = (f"the worker process stopped responding (killed or crashed): no heartbeat for "
               f"{STALE_AFTER_S:.0f} s" if running else
               f"no worker picked the job up within {START_TIMEOUT_S:.0f} s (it failed to start)")
        with store.write() as conn:
            # Re-check staleness inside the write lock: the worker may have just beaten again.
            cur = conn.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND "
                "((status = ? AND heartbeat_at < ?) OR (status = ? AND created_at < ?))",
                (JobStatus.FAILED.value, why, now, row["id"],
                 JobStatus.RUNNING.value, now - STALE_AFTER_S,
                 JobStatus.QUEUED.value, now - START_TIMEOUT_S))
        if cur.rowcount == 1:
            reaped.append(row["id"])
    return reaped
