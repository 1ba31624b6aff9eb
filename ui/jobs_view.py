"""Job progress widgets (the polling fragment reruns alone every second while a job is active,
so the rest of the page, and the big map, is not redrawn), and the project's disk use with
the runs whose models it keeps."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ssl_core.jobs import records as jobs
from ssl_core.project.disk_use import disk_use, human_bytes
from ssl_core.project.folder import Project
from ssl_core.results import retention
from ssl_core.results.runs import list_runs
from ui.text import escape_markdown


def _describe(job: jobs.Job) -> str:
    age = time.time() - (job.heartbeat_at or job.created_at)
    base = f"Job {job.id} ({job.kind}) · {job.status.value} · {job.elapsed_s:.0f} s"
    return base + (f" · last heartbeat {age:.0f} s ago" if job.status is jobs.JobStatus.RUNNING else "")


def show_job(project: Project, job_id: int, key: str) -> jobs.Job:
    """Progress, message, error and a cancel button for one job; returns its current state."""
    job = jobs.get_job(project.store, job_id)
    st.caption(_describe(job))
    if not job.status.finished:
        st.progress(job.progress, text=job.message or "starting...")
        if st.button("Cancel", key=f"{key}-cancel-{job.id}", disabled=job.cancel_requested):
            jobs.request_cancel(project.store, job.id)
            st.rerun(scope="fragment")
    elif job.status is jobs.JobStatus.FAILED:
        st.error(f"Job {job.id} failed: {escape_markdown(job.error or '')}")  # names files
    elif job.status is jobs.JobStatus.CANCELLED:
        st.warning(f"Job {job.id} was cancelled.")
    return job


def follow_job(project: Project, job_id: int, key: str, watch: Path | None = None) -> None:
    """Show a job; while it is active, poll it in a fragment that reruns alone every second.
    `watch`: a file the job writes along the way (e.g. the map's map.json, first for the
    provisional map): when it changes, the whole page reruns to show it."""
    if jobs.get_job(project.store, job_id).status.finished:
        show_job(project, job_id, key)
    else:
        _poll(project, job_id, key, watch, _mtime(watch))


@st.fragment(run_every=1.0)
def _poll(project: Project, job_id: int, key: str, watch: Path | None, seen: float) -> None:
    """When the job finishes (or the watched file changes), rerun the whole page once so
    everything shows the new state."""
    if show_job(project, job_id, key).status.finished or _mtime(watch) != seen:
        st.rerun()


def _mtime(path: Path | None) -> float:
    try:
        return path.stat().st_mtime_ns if path is not None else 0.0
    except OSError:
        return 0.0


# --- disk use and run retention --------------------------------------------------------------

_PART_NAMES = {"images": "Images", "features": "Features", "runs": "Models (runs)", "map": "Map",
               "database": "Database", "other": "Other (logs, exports)"}


def disk_panel(project: Project) -> None:
    """The project's disk use by part, the runs that hold a model folder (pinning any of them),
    and a button that deletes the models of old unpinned runs (results.retention)."""
    use = disk_use(project)
    st.subheader(f"Disk use: {human_bytes(use.total)}")
    st.caption(" · ".join(f"{_PART_NAMES[part]} {human_bytes(n)}"
                          for part, n in use.bytes_by_part.items() if n))
    if not use.bytes_by_run:
        return
    plan = retention.plan_prune(project)
    pinned = retention.pinned_runs(project.store)
    protected = retention.protected_runs(project)
    runs = {r.id: r for r in list_runs(project.store, limit=1000)}
    rows = pd.DataFrame([{
        "run": run_id, "method": runs[run_id].method if run_id in runs else "?",
        "labels": runs[run_id].n_labels if run_id in runs else None,
        "size": human_bytes(size),
        "kept because": _why_kept(run_id, pinned, protected, plan),
    } for run_id, size in sorted(use.bytes_by_run.items(), reverse=True)])
    with st.expander(f"Models of {len(rows)} runs: {human_bytes(use.bytes_by_part['runs'])}",
                     expanded=bool(plan.deleted)):
        st.dataframe(rows, hide_index=True, width="stretch")
        st.session_state["runs_pinned"] = sorted(pinned & set(use.bytes_by_run))  # the store's
        st.multiselect("Pinned runs (their models are never deleted)",
                       sorted(use.bytes_by_run, reverse=True), key="runs_pinned",
                       format_func=lambda r: f"run {r} ({runs[r].method})" if r in runs else f"run {r}",
                       on_change=_save_pins, args=(project, set(pinned)))
        st.caption(f"After each training run, only the newest {retention.DEFAULT_KEEP} models "
                   "per method are kept, plus pinned, exported and current ones; run history "
                   "and accuracies stay.")
        if plan.deleted and st.button(f"Delete {len(plan.deleted)} old models now "
                                      f"({human_bytes(plan.freed_bytes)})", key="prune_runs"):
            done = retention.prune_runs(project)
            st.toast(f"Deleted {len(done.deleted)} models, freed {human_bytes(done.freed_bytes)}.")
            st.rerun()


def _save_pins(project: Project, before: set[int]) -> None:
    now = set(st.session_state.get("runs_pinned") or [])
    for run_id in now ^ before:
        retention.set_pinned(project.store, run_id, run_id in now)


def _why_kept(run_id: int, pinned: set[int], protected: set[int],
              plan: retention.PruneReport) -> str:
    if run_id in plan.deleted:
        return "old: deleted at the next cleanup"
    if run_id in pinned:
        return "pinned"
    if run_id in protected:
        return "exported, current or in progress"
    return f"among the newest {retention.DEFAULT_KEEP} of its method"
