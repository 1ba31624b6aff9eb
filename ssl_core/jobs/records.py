"""Background job records: what the UI and the worker processes tell each other.

The UI and workers talk only through the `jobs` table. A worker owns a job once it has claimed
it (QUEUED -> RUNNING) and proves it is alive every second. Liveness is judged from that
heartbeat, never from a PID: a worker killed with SIGKILL, or a machine that rebooted, leaves a
RUNNING row whose heartbeat goes stale, and `reap_stale` turns it into FAILED with a message
saying so. Cancelling is cooperative (the worker sees `cancel_requested` on its next heartbeat)
with a hard stop in the worker itself if it does not comply in time.

Fencing. The claim (`Claim`: the claiming pid and the claim's own time, stored on the row) is
the worker's right to write. Every write a worker makes -- status, progress, metrics, the run's
summary -- is conditional on it in the same transaction (`... WHERE id = ? AND status =
'running' AND pid = ? AND started_at = ?`, rowcount checked), and every file it produces
(predictions, model folder, map files) checks it just before the rename that publishes it. A
worker that lost its claim (reaped as dead, or finished by someone else) gets `ClaimLost` and
stops without writing anything more. A job is claimed once, so a lost claim never comes back.

The stale window and the lock wait are consistent by construction: the heartbeat that proves a
worker alive is written through a path that never waits for the database's write lock (a file
beside the logs, `touch`ed; the beat only *reads* the row, which WAL never blocks), so a writer
queued behind a slow commit for up to BUSY_TIMEOUT_MS cannot be mistaken for a dead one. The
row's heartbeat_at (written with progress) counts too, whichever is newer.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ssl_core.project.store import Store

HEARTBEAT_INTERVAL_S = 1.0  # how often a worker proves it is alive
STALE_AFTER_S = 6.0         # a RUNNING job silent for this long is dead (killed or crashed); its
                            # heartbeat never waits for the DB lock (see the module docstring)
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


class ClaimLost(Exception):
    """This worker no longer owns its job (it was reaped as dead, or finished by someone
    else): it must stop at once and write nothing more."""


@dataclass(frozen=True)
class Claim:
    """A worker's claim on a job: what every one of its writes is conditional on."""
    store: Store
    job_id: int
    pid: int
    since: float      # the claim's started_at, exactly as stored

    _SQL = "id = ? AND status = 'running' AND pid = ? AND started_at = ?"

    @property
    def args(self) -> tuple:
        return (self.job_id, self.pid, self.since)

    def holds(self, conn: sqlite3.Connection) -> bool:
        return conn.execute(f"SELECT 1 FROM jobs WHERE {self._SQL}", self.args).fetchone() is not None

    def fence(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction, before its writes: raise ClaimLost (the transaction is
        rolled back) unless this worker still owns the job. The write lock is held, so the
        reaper cannot take the job between this check and the commit."""
        if not self.holds(conn):
            raise ClaimLost(f"job {self.job_id} is no longer this worker's")

    def check(self) -> None:
        """Outside a transaction, just before publishing a file: raise ClaimLost if lost."""
        with self.store.read() as conn:
            owned = self.holds(conn)
        if not owned:
            raise ClaimLost(f"job {self.job_id} is no longer this worker's")


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


def alive_path(store: Store, job_id: int) -> Path:
    """The file a worker touches every second to prove it is alive (never waits for a lock)."""
    return store.db_path.parent / "logs" / f"job-{job_id}.alive"


def _alive_at(store: Store, job_id: int) -> float | None:
    try:
        return alive_path(store, job_id).stat().st_mtime
    except OSError:
        return None


def _last_sign_of_life(store: Store, row) -> float | None:
    beats = [t for t in (row["heartbeat_at"], _alive_at(store, row["id"])) if t is not None]
    return max(beats) if beats else None


def _row_to_job(row, store: Store | None = None) -> Job:
    heartbeat_at = row["heartbeat_at"]
    if store is not None and row["status"] == JobStatus.RUNNING.value:
        heartbeat_at = _last_sign_of_life(store, row)
    return Job(id=row["id"], kind=row["kind"], params=json.loads(row["params"]),
               status=JobStatus(row["status"]), progress=row["progress"], message=row["message"],
               error=row["error"], result=json.loads(row["result"]) if row["result"] else None,
               created_at=row["created_at"], started_at=row["started_at"],
               heartbeat_at=heartbeat_at, finished_at=row["finished_at"],
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
    return _row_to_job(row, store)


def list_jobs(store: Store, limit: int = 50, kind: str | None = None) -> list[Job]:
    """Newest first, with dead workers already reaped."""
    reap_stale(store)
    query, args = "SELECT * FROM jobs", []
    if kind:
        query, args = query + " WHERE kind = ?", [kind]
    with store.read() as conn:
        rows = conn.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    return [_row_to_job(r, store) for r in rows]


def active_jobs(store: Store) -> list[Job]:
    return [j for j in list_jobs(store, limit=200) if not j.status.finished]


def claim(store: Store, job_id: int, pid: int) -> Claim | None:
    """QUEUED -> RUNNING for exactly one worker: its Claim, or None if the job is not queued
    any more."""
    now = time.time()
    with store.write() as conn:
        cur = conn.execute("UPDATE jobs SET status = ?, pid = ?, started_at = ?, heartbeat_at = ? "
                           "WHERE id = ? AND status = ?",
                           (JobStatus.RUNNING.value, pid, now, now, job_id, JobStatus.QUEUED.value))
        if cur.rowcount != 1:
            return None
    return Claim(store, job_id, pid, now)


def heartbeat(store: Store, job_id: int, claim: Claim | None = None) -> bool:
    """Record that the worker is alive; returns whether a cancel was requested.

    With the worker's `claim`: touch the alive file (no database lock is waited for, so a
    worker queued behind a slow commit still counts as alive), then read the row: ClaimLost if
    the job is no longer this worker's. Without (old callers): write heartbeat_at."""
    if claim is None:
        with store.write() as conn:
            conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = ?",
                         (time.time(), job_id, JobStatus.RUNNING.value))
            row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row["cancel_requested"])
    _touch(alive_path(store, job_id))
    with store.read() as conn:
        if not claim.holds(conn):
            raise ClaimLost(f"job {job_id} is no longer this worker's")
        row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row["cancel_requested"])


def _touch(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
        os.utime(path)
    except OSError:
        pass        # the row's heartbeat_at (written with progress) still counts


def set_progress(store: Store, job_id: int, fraction: float, message: str | None = None,
                 claim: Claim | None = None) -> None:
    """Progress (and a heartbeat); with `claim`, only while the worker owns the job (else
    ClaimLost, nothing written)."""
    fraction = min(1.0, max(0.0, float(fraction)))
    with store.write() as conn:
        if claim is not None:
            claim.fence(conn)
        if message is None:
            conn.execute("UPDATE jobs SET progress = ?, heartbeat_at = ? WHERE id = ?",
                         (fraction, time.time(), job_id))
        else:
            conn.execute("UPDATE jobs SET progress = ?, message = ?, heartbeat_at = ? WHERE id = ?",
                         (fraction, message, time.time(), job_id))


def _finish(store: Store, job_id: int, status: JobStatus, *, error: str | None = None,
            result: dict | None = None, message: str | None = None,
            claim: Claim | None = None) -> bool:
    """Move a job to a final state once; a job already finished keeps its first outcome. With
    `claim`, only while the worker still owns the job (False otherwise, nothing written)."""
    fence, fence_args = ("", ()) if claim is None else (f" AND {Claim._SQL}", claim.args)
    with store.write() as conn:
        cur = conn.execute(
            "UPDATE jobs SET status = ?, error = ?, result = ?, finished_at = ?, "
            "message = COALESCE(?, message), progress = CASE WHEN ? THEN 1.0 ELSE progress END "
            "WHERE id = ? AND status IN (?, ?)" + fence,
            (status.value, error, json.dumps(result) if result is not None else None, time.time(),
             message, status is JobStatus.SUCCEEDED, job_id, *ACTIVE, *fence_args))
        done = cur.rowcount == 1
    if done:
        try:
            alive_path(store, job_id).unlink(missing_ok=True)
        except OSError:
            pass
    return done


def succeed(store: Store, job_id: int, result: dict | None = None,
            claim: Claim | None = None) -> bool:
    return _finish(store, job_id, JobStatus.SUCCEEDED, result=result, message="done", claim=claim)


def fail(store: Store, job_id: int, error: str, claim: Claim | None = None) -> bool:
    return _finish(store, job_id, JobStatus.FAILED, error=error, claim=claim)


def mark_cancelled(store: Store, job_id: int, claim: Claim | None = None) -> bool:
    return _finish(store, job_id, JobStatus.CANCELLED, message="cancelled", claim=claim)


def request_cancel(store: Store, job_id: int) -> None:
    """Ask a job to stop. A queued job is cancelled at once; a running one at its next check; a
    finished one is left as it is (a late cancel does not undo outputs already written)."""
    with store.write() as conn:
        conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status IN (?, ?)",
                     (job_id, *ACTIVE))
        conn.execute("UPDATE jobs SET status = ?, finished_at = ?, message = 'cancelled' "
                     "WHERE id = ? AND status = ?",
                     (JobStatus.CANCELLED.value, time.time(), job_id, JobStatus.QUEUED.value))


def reap_stale(store: Store, now: float | None = None) -> list[int]:
    """Mark jobs whose worker is gone as FAILED; returns their ids.

    Read first and write only when something is stale, so frequent UI polling stays cheap."""
    now = time.time() if now is None else now
    with store.read() as conn:
        dead = conn.execute(
            "SELECT id, status, heartbeat_at FROM jobs WHERE (status = ? AND heartbeat_at < ?) "
            "OR (status = ? AND created_at < ?)",
            (JobStatus.RUNNING.value, now - STALE_AFTER_S,
             JobStatus.QUEUED.value, now - START_TIMEOUT_S)).fetchall()
    reaped = []
    for row in dead:
        running = row["status"] == JobStatus.RUNNING.value
        if running and (_alive_at(store, row["id"]) or 0.0) >= now - STALE_AFTER_S:
            continue                       # alive: its beat went through the file
        why = (f"the worker process stopped responding (killed or crashed): no heartbeat for "
               f"{STALE_AFTER_S:.0f} s" if running else
               f"no worker picked the job up within {START_TIMEOUT_S:.0f} s (it failed to start)")
        with store.write() as conn:
            # Re-check staleness inside the write lock: the worker may have just beaten again.
            if running and (_alive_at(store, row["id"]) or 0.0) >= now - STALE_AFTER_S:
                continue
            cur = conn.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND "
                "((status = ? AND heartbeat_at < ?) OR (status = ? AND created_at < ?))",
                (JobStatus.FAILED.value, why, now, row["id"],
                 JobStatus.RUNNING.value, now - STALE_AFTER_S,
                 JobStatus.QUEUED.value, now - START_TIMEOUT_S))
        if cur.rowcount == 1:
            reaped.append(row["id"])
            alive_path(store, row["id"]).unlink(missing_ok=True)
    return reaped
