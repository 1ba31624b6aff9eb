"""Train page: retrain the chosen method on the current labels in the background, watch it
live, and read honest results (validation, ground-truth test, gain over the baseline)."""
import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.features.choice import project_representation
from ssl_core.jobs.retrain import request_retrain
from ssl_core.jobs.train_job import baseline_budget, default_budget
from ssl_core.labeling.evaluation_split import held_out_note, sealed_mask, training_labels
from ssl_core.labeling.label_log import current_labels
from ssl_core.models.registry import DESCRIPTIONS, METHODS
from ssl_core.quality.marks import excluded_mask
from ui import quality_view, session, train_view

project = session.current_project()
collection = ImageCollection(project)
n, shape = collection.n_images, collection.shape
st.title(f"Train · {project.name}")
held = training_labels(current_labels(project.store, n), sealed_mask(collection, n),
                       excluded_mask(project.store, n))
labels = held.labels                       # what a retrain will train on: no evaluation image
n_labeled, n_classes = int((labels >= 0).sum()), len(set(labels[labels >= 0].tolist()))

quality_view.warnings_banner(project, "train")   # before Retrain: balance, label errors, copies
left, right = st.columns([2, 3])
method = left.selectbox("Method", list(METHODS), format_func=lambda m: f"{m} — {DESCRIPTIONS[m]}",
                        key="train_method")
budget = left.slider("Time budget (seconds)", 10, 900, int(default_budget(n)), step=10,
                     key="train_budget")
warm = right.checkbox("Warm-start from the last run of this method", value=True, key="train_warm",
                      help="Reuses the kNN graph and fine-tunes the last network: small label "
                           "changes give new predictions in a fraction of the time")
compare = right.checkbox("Also train the supervised baseline on the same labels", value=True,
                         key="train_compare", disabled=method == "baseline",
                         help=f"Adds up to {baseline_budget(budget):.0f} s; shows what the "
                              "unlabeled images buy")
gen_params = train_view.gen_augment_options(right, method)
if right.button(f"Retrain on {n_labeled:,} labels", type="primary", key="train_retrain",
                disabled=n_classes < 2, shortcut="Ctrl+Enter",
                help="Needs labels of at least 2 classes" if n_classes < 2 else
                     "Labeling goes on while it trains (Ctrl+Enter)"):
    req = request_retrain(project, {"method": method, "budget_s": budget, "warm_start": warm,
                                    "compare_baseline": compare and method != "baseline",
                                    **gen_params})
    if req.coalesced and req.behind is None:
        st.toast(f"Job {req.job_id} already trains with these settings on these labels: no "
                 "second fit started.")
    elif req.coalesced:
        st.toast(f"Job {req.job_id} is already queued: it will use these settings and your "
                 "latest labels.")
    elif req.behind:
        st.toast(f"Queued as job {req.job_id}: starts when job {req.behind} finishes.")
    else:
        st.toast(f"Training started (job {req.job_id}).")
if n_classes < 2:
    right.caption("Label images of at least 2 classes first (Map or Label queue).")
if note := held_out_note(held.n_sealed):
    right.caption(note)
if held.n_excluded:
    right.caption(f"{held.n_excluded:,} labels are on duplicate copies you excluded (Quality "
                  "page): they do not train.")
if shape:
    right.caption(f"Every method sees the images as **{project_representation(project.store, shape)}**"
                  " (chosen on the Images page).")

train_view.live(project)
st.divider()
train_view.results(project)
