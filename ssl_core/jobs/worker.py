"""The background worker: `python -m ssl_core.jobs.worker --project DIR --job ID` runs one job.

Long work (imports, VAE pretraining, the map, training) must not run in Streamlit's script
thread, so the app calls `launch()`, which records the job and starts this module in its own
process (own session, so it outlives a browser tab and is not killed with the app's reruns).
The worker claims the job, beats its heartbeat from a side thread, runs the job function and
records the outcome. Job functions receive a `JobContext`; calling `ctx.progress()` is also a
cancellation point. Every write the job makes is fenced by the worker's claim (records.py):
`ctx.fence(conn)` inside a write transaction, `ctx.check_claim()` just before a file is renamed
into place. A worker whose job was reaped (it looked dead to the UI) gets `ClaimLost` at its
next write, progress or cancel check, and exits without writing anything more; a cancel that
arrives after the job function returned is ignored (its outputs are written: it succeeded).
`launch_once` starts a job of a kind unless one is already active, in one write transaction,
so two browser sessions asking at once get one job. This module imports no streamlit.

Job kinds are looked up by name: the built-in ones below (imported lazily, so an import job does
not pay for torch), plus any a program registers with `register_kind` before it calls `main`
(a worker module of its own, started with `start_worker(..., module=...)`).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssl_core.jobs import records as jobs
from ssl_core.jobs.records import ClaimLost
from ssl_core.project.folder import Project

# A job that ignores a cancel request this long is stopped hard (env: for tests and slow disks).
CANCEL_GRACE_S = float(os.environ.get("LATENTLAB_CANCEL_GRACE_S", "15"))

BUILTIN_KINDS: dict[str, str] = {
    "import": "ssl_core.jobs.import_job:run_import_job",
    "map": "ssl_core.jobs.map_job:run_map_job",
    "train": "ssl_core.jobs.train_job:run_train_job",
    "quality": "ssl_core.jobs.quality_job:run_quality_job",
}
WORKER_MODULE = "ssl_core.jobs.worker"
_REGISTERED: dict[str, Callable[["JobContext", dict], dict | None]] = {}
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]   # the folder holding ssl_core


class Cancelled(Exception):
    """Raised inside a job when the user asked it to stop."""


def register_kind(name: str, fn: Callable[["JobContext", dict], dict | None]) -> None:
    """Add a job kind to this process's registry (before `main` runs the job)."""
    _REGISTERED[name] = fn


def resolve_kind(name: str) -> Callable[["JobContext", dict], dict | None]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in BUILTIN_KINDS:
        module, func = BUILTIN_KINDS[name].split(":")
        return getattr(importlib.import_module(module), func)
    raise KeyError(f"unknown job kind {name!r}")


class JobContext:
    """What a running job may do: report progress (and be cancelled there), read its project,
    fence its writes with the worker's claim."""

    def __init__(self, project: Project, job_id: int, cancel_event: threading.Event,
                 claim: jobs.Claim | None = None, lost_event: threading.Event | None = None):
        self.project = project
        self.job_id = job_id
        self._cancel = cancel_event
        self._claim = claim
        self._lost = lost_event or threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """A cancel point: Cancelled if the user asked to stop, ClaimLost if the job is no
        longer this worker's (the heartbeat found out)."""
        if self._lost.is_set():
            raise ClaimLost(f"job {self.job_id} is no longer this worker's")
        if self._cancel.is_set():
            raise Cancelled()

    def fence(self, conn) -> None:
        """Call inside a write transaction before writing: ClaimLost (rolled back) if lost."""
        if self._claim is not None:
            self._claim.fence(conn)

    def check_claim(self) -> None:
        """Call just before renaming a finished file into place: ClaimLost if lost."""
        if self._lost.is_set():
            raise ClaimLost(f"job {self.job_id} is no longer this worker's")
        if self._claim is not None:
            self._claim.check()

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.check_cancelled()
        jobs.set_progress(self.project.store, self.job_id, fraction, message, claim=self._claim)


def launch(project: Project, kind: str, params: dict[str, Any] | None = None,
           env: dict[str, str] | None = None, module: str = WORKER_MODULE) -> int:
    """Record a job and start a worker process for it; returns the job id at once."""
    job_id = jobs.create_job(project.store, kind, params)
    start_worker(project, job_id, env, module)
    return job_id


def launch_once(project: Project, kind: str, params: dict[str, Any] | None = None, *,
                unless_same: str | None = None, same_params_only: bool = False,
                start: Callable[[Project, int], None] | None = None) -> tuple[int | None, bool]:
    """Start a job of `kind` unless one is already active: (job id, started now?). The check
    and the insert are one write transaction, so two sessions asking at once get one job.
    `same_params_only`: only an active job with these very params counts (imports: the same
    import asked twice is one job; a different one queues behind it).
    `unless_same`: a params key; when the newest job of this kind (finished or not) had the
    same value, nothing starts either ((its id, False): e.g. a map already tried for this many
    images is not retried on every page render). `start(project, job_id)` starts the worker
    (default: a worker process)."""
    params = dict(params or {})
    jobs.reap_stale(project.store)               # a dead worker's job must not block a new one
    with project.store.write() as conn:
        rows = conn.execute("SELECT id, status, params FROM jobs WHERE kind = ? "
                            "ORDER BY id DESC LIMIT 20", (kind,)).fetchall()
        active = [r for r in rows if r["status"] in jobs.ACTIVE
                  and (not same_params_only or json.loads(r["params"]) == params)]
        if active:
            return active[0]["id"], False
        if unless_same is not None and rows and \
                json.loads(rows[0]["params"]).get(unless_same) == params.get(unless_same):
            return rows[0]["id"], False
        job_id = conn.execute("INSERT INTO jobs (kind, params, status, created_at) "
                              "VALUES (?, ?, ?, ?)", (kind, json.dumps(params),
                                                      jobs.JobStatus.QUEUED.value,
                                                      time.time())).lastrowid
    (start or start_worker)(project, job_id)
    return job_id, True


def start_worker(project: Project, job_id: int, env: dict[str, str] | None = None,
                 module: str = WORKER_MODULE) -> None:
    """Start the worker process for an already recorded job (a failure to start fails it).
    `module` is what runs as `python -m module --project ... --job ...`: this module, or one
    that registers more job kinds first and then calls this module's `main`."""
    project.logs_dir.mkdir(parents=True, exist_ok=True)
    log = open(project.logs_dir / f"job-{job_id}.log", "ab")
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(_PACKAGE_PARENT), child_env.get("PYTHONPATH", "")]))
    try:
        subprocess.Popen([sys.executable, "-m", module, "--project", str(project.root),
                          "--job", str(job_id)], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=child_env, cwd=str(_PACKAGE_PARENT),
                         start_new_session=True)
    except OSError as err:
        jobs.fail(project.store, job_id, f"could not start the worker process: {err}")
    finally:
        log.close()


def _heartbeat_loop(project: Project, claim: jobs.Claim, cancel: threading.Event,
                    done: threading.Event, lost: threading.Event) -> None:
    """Beat every second; on a cancel request, tell the job, and stop the process if the job
    ignores it for CANCEL_GRACE_S (e.g. stuck inside one long library call). When the claim is
    lost, tell the job (its next cancel point raises ClaimLost) and stop the process if it does
    not stop within CANCEL_GRACE_S -- without writing anything."""
    cancel_seen_at = lost_at = None
    while not done.wait(jobs.HEARTBEAT_INTERVAL_S):
        if lost_at is None:
            try:
                wants_cancel = jobs.heartbeat(project.store, claim.job_id, claim)
            except ClaimLost:
                lost.set()
                lost_at = time.monotonic()
                print(f"job {claim.job_id} was taken from this worker (reaped as dead?): stopping "
                      "without writing anything more", file=sys.stderr, flush=True)
                continue
            except Exception as err:  # a transient DB error must not kill the heartbeat
                print(f"heartbeat failed: {err}", file=sys.stderr, flush=True)
                continue
            if wants_cancel and not cancel.is_set():
                cancel.set()
                cancel_seen_at = time.monotonic()
        if lost_at is not None and time.monotonic() - lost_at > CANCEL_GRACE_S:
            print("job went on after losing its claim; stopping the worker", file=sys.stderr,
                  flush=True)
            os._exit(4)
        if lost_at is None and cancel_seen_at is not None and \
                time.monotonic() - cancel_seen_at > CANCEL_GRACE_S:
            jobs.mark_cancelled(project.store, claim.job_id, claim=claim)
            print("job ignored the cancel request; stopping the worker", file=sys.stderr, flush=True)
            os._exit(3)


def run_job(project: Project, job_id: int) -> int:
    """Claim and run one job; returns the process exit code."""
    store = project.store
    claim = jobs.claim(store, job_id, os.getpid())
    if claim is None:
        print(f"job {job_id} is not queued (already taken or cancelled)", file=sys.stderr)
        return 0
    job = jobs.get_job(store, job_id)
    cancel, done, lost = threading.Event(), threading.Event(), threading.Event()
    beat = threading.Thread(target=_heartbeat_loop, args=(project, claim, cancel, done, lost),
                            daemon=True, name="heartbeat")
    beat.start()
    ctx = JobContext(project, job_id, cancel, claim, lost)
    try:
        result = resolve_kind(job.kind)(ctx, job.params)
    except ClaimLost:
        print(f"job {job_id} is no longer this worker's: stopped, nothing more written",
              file=sys.stderr, flush=True)
        return 0
    except Cancelled:
        jobs.mark_cancelled(store, job_id, claim=claim)
        return 0
    except BaseException as err:  # record every failure, including KeyboardInterrupt/SystemExit
        traceback.print_exc()
        jobs.fail(store, job_id, f"{type(err).__name__}: {err}", claim=claim)   # not if lost
        return 1
    finally:
        done.set()
        beat.join(timeout=5)
    # The job function returned: its outputs are written. A cancel that arrived meanwhile came
    # too late to stop anything, so the job succeeded (and a lost claim writes nothing).
    jobs.succeed(store, job_id, result, claim=claim)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssl_core.jobs.worker", description=__doc__)
    parser.add_argument("--project", required=True, help="project folder")
    parser.add_argument("--job", required=True, type=int, help="job id to run")
    args = parser.parse_args(argv)
    _yield_to_the_ui()
    return run_job(Project.open(args.project), args.job)


def _yield_to_the_ui() -> None:
    """Workers run a few nice levels below the app: on two cores a training job would otherwise
    take the CPU from the page the user is labeling on (labeling goes on while it trains). The
    job loses only what the UI actually uses. $LATENTLAB_WORKER_NICE sets it (0 = off)."""
    try:
        os.nice(int(os.environ.get("LATENTLAB_WORKER_NICE", "5")))
    except (OSError, ValueError, AttributeError):   # not permitted, bad value, no os.nice
        pass


if __name__ == "__main__":
    # Run through the imported module, not this __main__ copy, so that there is one registry.
    from ssl_core.jobs import worker as _worker

    sys.exit(_worker.main())
