"""Jobs page: every background job of this project, live while any is running."""
import datetime as dt

import pandas as pd
import streamlit as st

from ssl_core.jobs import records as jobs
from ui import session
from ui.jobs_view import disk_panel, show_job

project = session.current_project()
st.title("Background jobs")
st.caption("Imports, pretraining and training run in worker processes; this page polls them. "
           "A worker that dies shows as failed within seconds.")


def _table(all_jobs: list[jobs.Job]) -> pd.DataFrame:
    return pd.DataFrame([{
        "id": j.id, "kind": j.kind, "status": j.status.value,
        "progress": round(100 * j.progress), "message": j.message,
        "started": dt.datetime.fromtimestamp(j.started_at or j.created_at).strftime("%H:%M:%S"),
        "seconds": round(j.elapsed_s, 1), "error": j.error or "",
    } for j in all_jobs])


@st.fragment(run_every=2.0)
def _live() -> None:
    all_jobs = jobs.list_jobs(project.store, limit=100)
    if not all_jobs:
        st.info("No jobs yet. Imports and training runs will appear here.")
        return
    for job in [j for j in all_jobs if not j.status.finished]:
        show_job(project, job.id, key="jobs-page")
    st.dataframe(_table(all_jobs), hide_index=True, width="stretch",
                 column_config={"progress": st.column_config.ProgressColumn(
                     "progress", min_value=0, max_value=100, format="%d%%")})


_live()
disk_panel(project)
