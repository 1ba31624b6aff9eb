"""Quality page: label balance, duplicates, outliers and likely label errors, found by a
background job (ssl_core.quality) and fixed where they are found."""
import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.jobs import records as jobs
from ssl_core.jobs import worker
from ssl_core.quality.compute import project_balance, quality_keys
from ssl_core.quality.report import load_report, outlier_cut
from ui import quality_review, quality_view, session
from ui.jobs_view import follow_job

project = session.current_project()
n = ImageCollection(project).n_images
st.title(f"Quality · {project.name}")
if n == 0:
    st.info("Import images first (Images page).")
    st.stop()

report = load_report(project)
stale = report.stale_parts(quality_keys(project))
active = [j for j in jobs.active_jobs(project.store) if j.kind == "quality"]
left, right = st.columns([3, 1], vertical_alignment="center")
if active:
    with left:
        follow_job(project, active[-1].id, key="quality")
elif stale:
    left.info(("Not checked yet" if not report.parts else
               f"Out of date ({', '.join(p.replace('_', ' ') for p in stale)}): the images, "
               "labels or model changed since the last check") + ".")
else:
    left.caption("Up to date with the images, labels and latest model.")
if right.button("Check now" if stale else "Check again", type="primary" if stale else "secondary",
                key="quality_check", disabled=bool(active),
                help="Runs in the background (tens of seconds at 70,000 images); only the parts "
                     "that are out of date are recomputed unless nothing is"):
    worker.launch_once(project, "quality", {"force": not stale})
    st.rerun()

errors, dups, outs, balance = st.tabs(["Likely label errors", "Duplicates", "Outliers",
                                       "Label balance"])
with errors:
    st.caption("Labels that the model, predicting each labeled image *without its own label* "
               "(cross-validated label propagation over all images), contradicts; ranked by "
               "confident learning (cleanlab).")
    quality_review.review(project, key="quality-review")
with dups:
    quality_view.duplicates_section(project, report.result("duplicates"))
with outs:
    quality_view.outliers_section(project, report.result("outliers"), outlier_cut(n))
with balance:
    quality_view.balance_section(project_balance(project))
