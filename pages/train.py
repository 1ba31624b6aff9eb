"""Train page: retrain a method on the current labels in the background; see its runs.
(The live view with curves and samples is still to come: see the open issue.)"""
import streamlit as st

from ssl_core import jobs, worker
from ssl_core.imagestore import ImageStore
from ssl_core.labels import current_labels
from ssl_core.models.registry import DESCRIPTIONS, METHODS
from ssl_core.runs import list_runs
from ssl_core.trainjob import default_budget
from ssl_core.validation import Accuracy
from ui import session
from ui.jobs_view import follow_job

project = session.current_project()
n = ImageStore(project).n_images
st.title(f"Train · {project.name}")
labels = current_labels(project.store, n)
n_labeled, n_classes = int((labels >= 0).sum()), len(set(labels[labels >= 0].tolist()))
method = st.selectbox("Method", list(METHODS), format_func=lambda m: f"{m} — {DESCRIPTIONS[m]}",
                      key="train_method")
budget = st.slider("Time budget (seconds)", 10, 900, int(default_budget(n)), step=10, key="train_budget")
running = [j for j in jobs.active_jobs(project.store) if j.kind == "train"]
if st.button(f"Train on {n_labeled:,} labels", type="primary",
             disabled=bool(running) or n_classes < 2,
             help="Needs labels of at least 2 classes" if n_classes < 2 else None):
    worker.launch(project, "train", {"method": method, "budget_s": budget})
    st.rerun()
running = [j for j in jobs.active_jobs(project.store) if j.kind == "train"]
if running:
    follow_job(project, running[0].id, "train-job")

st.subheader("Runs")
runs = list_runs(project.store, limit=20)
if not runs:
    st.caption("No runs yet. Label images of at least 2 classes (Map or Label queue), then train.")
for run in runs:
    summary = run.summary or {}
    val = summary.get("validation")
    test = summary.get("test")
    line = f"**Run {run.id}** · {run.method} · {run.n_labels} labels · "
    line += f"validation {Accuracy(**val)}" if val else "no validation (too few labels)"
    if test:
        line += f" · test on ground truth you did not label: {Accuracy(**test)}"
    st.markdown(line if run.summary else f"**Run {run.id}** · {run.method} · running or failed")
