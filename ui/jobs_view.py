"""Job progress widgets. The polling fragment reruns alone every second while a job is active,
so the rest of the page (and, later, the big map) is not redrawn."""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from ssl_core.jobs import records as jobs
from ssl_core.project.folder import Project
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
