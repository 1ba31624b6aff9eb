"""Train page sections: the live view of the training job and the results of finished runs.

The live view is a fragment that reruns alone every second while a train job is active (the
rest of the page, and other pages, stay put); when the job finishes it reruns the page once so
results, the map colours and the queue see the new predictions."""
from __future__ import annotations

import streamlit as st

from ssl_core.jobs import records as jobs
from ssl_core.jobs.train_progress import generated_path, preview_path
from ssl_core.labeling.evaluation_split import held_out_note
from ssl_core.models.generated import GEN_METHODS, GenAugmentConfig
from ssl_core.project.folder import Project
from ssl_core.results.history import curves_frame, history_frame, learning_curve_frame
from ssl_core.results.run_text import gen_augment_text
from ssl_core.results.runs import Run, list_runs, run_for_job
from ssl_core.training.validation import Accuracy
from ui import class_mapping_view
from ui.jobs_view import show_job
from ui.train_charts import confusion_figure, curves_figure, learning_curve_figure

POLL_S = 1.0


def active_train_jobs(project: Project) -> list[jobs.Job]:
    return sorted((j for j in jobs.active_jobs(project.store) if j.kind == "train"), key=lambda j: j.id)


def live(project: Project) -> None:
    """Progress, ETA, curves and preview of the running train job (and what waits behind it)."""
    if active_train_jobs(project):
        _live_fragment(project)


@st.fragment(run_every=POLL_S)
def _live_fragment(project: Project) -> None:
    active = active_train_jobs(project)
    if not active:
        st.rerun()                                   # finished: refresh the whole page once
    job = show_job(project, active[0].id, "train-live")
    for waiting in active[1:]:
        st.caption(f"Job {waiting.id} is queued: it starts when job {job.id} finishes and "
                   "trains on the labels of that moment (further Retrain clicks join it).")
    run = run_for_job(project.store, job.id)
    if run is not None and run.summary and st.session_state.get("train_results_for") != run.id:
        st.session_state["train_results_for"] = run.id   # the model is done (the baseline may
        st.rerun()                                        # still run): show its numbers now
    if run is not None:
        run_curves(project, run, key=f"live-{run.id}")


def run_curves(project: Project, run: Run, key: str) -> None:
    """Loss and validation curves of one run beside its latest preview grid."""
    curves = curves_frame(project.store, run)
    left, right = st.columns([3, 2])
    with left:
        losses = sorted(n for n in curves["name"].unique() if n.startswith("loss"))
        if losses:
            st.plotly_chart(curves_figure(curves, losses, "Training loss", "loss"),
                            key=f"{key}-loss", config={"displayModeBar": False})
        if "val_accuracy" in set(curves["name"]):
            st.plotly_chart(curves_figure(curves, ["val_accuracy"], "Validation accuracy "
                                          "(held-out labels)", "accuracy"),
                            key=f"{key}-val", config={"displayModeBar": False})
        if curves.empty:
            st.caption("Curves appear after the first seconds of training.")
    with right:
        path = preview_path(project, run.id)
        if path.is_file():
            st.image(path.read_bytes(), caption=_preview_caption(run.method), width="stretch")


def _preview_caption(method: str) -> str:
    rows = "one row per labeled class, in the order the classes were created"   # classes_ order
    if method in ("gan", "vae"):
        return f"Generated samples, {rows} (refreshes while training)"
    return f"Random images of each class as the model labels them now, {rows}"


def gen_augment_options(container, method: str) -> dict:
    """The 'Add generated labelled images' checkbox and its settings (issue 17), as the train
    job's params ({} when off, or for a method that does not offer it)."""
    offered = method in GEN_METHODS
    on = container.checkbox(
        "Add generated labelled images", value=False, key="train_gen", disabled=not offered,
        help="The classifier also trains on images a generative model draws for each class, "
             "kept only where the current classifier agrees confidently"
             if offered else "Offered for " + ", ".join(GEN_METHODS))
    if not (on and offered):
        return {}
    defaults = GenAugmentConfig()
    with container.expander("Generated images: settings"):
        per_class = st.number_input("Drawn per class", 1, 5000, defaults.per_class, step=50,
                                    key="train_gen_per_class")
        weight = st.number_input("Weight of a generated image (a pseudo-label weighs 1)", 0.05,
                                 10.0, defaults.weight, step=0.05, key="train_gen_weight")
    return {"gen_augment": True, "gen_per_class": int(per_class), "gen_weight": float(weight)}


def generated_images(project: Project, run: Run) -> None:
    """For a run that trained on generated images: what it kept, and a grid of them per class."""
    gen = (run.summary or {}).get("gen_augment")
    if not gen:
        return
    st.caption(gen_augment_text(gen))
    path = generated_path(project, run.id)
    if path.is_file():
        st.image(path.read_bytes(), width="stretch", caption="Generated images it trained on, "
                 "one row per labeled class in the order the classes were created (blank: "
                 "fewer kept)")


def results(project: Project) -> None:
    """Latest run's honest numbers, confusion matrix, learning curve and the runs history."""
    finished = [r for r in list_runs(project.store, 100) if r.summary]
    if not finished:
        st.caption("No runs yet. Label images of at least 2 classes (Map or Label queue), "
                   "then press Retrain.")
        class_mapping_view.show(project, None)
        return
    latest = finished[0]
    st.subheader(f"Latest run: {latest.id} · {latest.method} · {latest.n_labels} labels")
    _numbers(latest)
    generated_images(project, latest)
    class_mapping_view.show(project, latest)
    report = latest.summary.get("test_report")
    tabs = st.tabs(["Learning curve", "Confusion matrix", "Curves of this run", "All runs"])
    with tabs[0]:
        curve = learning_curve_frame(project.store)
        st.plotly_chart(learning_curve_figure(curve), key="learning-curve",
                        config={"displayModeBar": False})
        st.caption("Solid: validation on held-out labels. Dashed: test on the sealed evaluation "
                   "images, transductive (shown only, never used to choose).")
    with tabs[1]:
        if report:
            st.plotly_chart(confusion_figure(report), key="confusion",
                            config={"displayModeBar": False})
            per_class = {name: f"{Accuracy(**acc)}" for name, acc in report["per_class"].items()}
            st.dataframe({"class": list(per_class), "accuracy on ground truth": list(per_class.values())},
                         hide_index=True)
        else:
            st.info("A confusion matrix needs ground truth whose classes correspond to yours: "
                    "same names, or a mapping confirmed above. Until then validation accuracy is "
                    "the honest measure.")
    with tabs[2]:
        run_curves(project, latest, key=f"done-{latest.id}")
    with tabs[3]:
        st.dataframe(history_frame(project.store), hide_index=True, width="stretch")


def _numbers(run: Run) -> None:
    s = run.summary
    val, test, base, gain = s.get("validation"), s.get("test"), s.get("baseline"), s.get("gain")
    cols = st.columns(3)
    cols[0].metric("Validation accuracy", f"{100 * val['value']:.1f}%" if val else "n/a",
                   help="Measured on labels held out from training (cross-validated when few)")
    cols[0].caption((f"{Accuracy(**val)}" + (f" · {val['protocol']}" if val.get("protocol") else "")
                     + (f" · measured on {s['validation_of']}" if s.get("validation_of") else ""))
                    if val else "Too few labels to hold any out.")
    cols[1].metric("Test accuracy (ground truth)", f"{100 * test['value']:.1f}%" if test else "n/a",
                   help="On the dataset's sealed evaluation images — the same ones for every run; "
                        "their labels never train. Transductive: their pixels are among the "
                        "unlabeled images every method learns from, as everything you import is.")
    cols[1].caption(f"{Accuracy(**test)} · transductive (test images in the unlabeled pool)"
                    if test else
                    "No ground truth to compare with (the dataset has none, or none of its "
                    "classes corresponds to yours: map them below).")
    if base:
        key = "test" if gain and "test" in gain else "validation"
        delta = gain.get(key) if gain else None
        cols[2].metric("Gain over supervised baseline", f"{delta:+.1f} points" if delta is not None else "n/a",
                       help="This run minus the same-family classifier trained on the labels only")
        cols[2].caption(f"baseline {key}: {Accuracy(**base[key])}" if delta is not None and base.get(key)
                        else "No like-for-like comparison: validation scores are compared only "
                             "when both were measured on the same held-out labels, and test "
                             "scores only on the same evaluation images.")
    if note := held_out_note(s.get("n_labels_sealed", 0)):
        st.caption(note)
    if s.get("warm_start_run"):
        st.caption(f"Warm-started from run {s['warm_start_run']}"
                   + (" (kNN graph reused)" if s.get("graph_reused") else ""))
