"""Export page: labels, predictions, a trained model and the images, out of Latentlab."""
import time

import streamlit as st

from ssl_core.export.imagefolder import export_imagefolder, select_images
from ssl_core.export.model_zip import LOAD_SNIPPET, exportable_runs, model_zip
from ssl_core.export.tables import labels_frame, predictions_frame
from ssl_core.results.predictions import load_predictions
from ui import session

project = session.current_project()
st.title("Export")


def cli(command: str, out: str) -> str:
    return f"Command line: `python -m ssl_core {command} --project {project.root} --out {out}`"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.1f} MB" if n_bytes >= 2**20 else f"{max(n_bytes >> 10, 1)} KB"


# Every download button is on_click="ignore": a click must not rerun the page. A rerun
# replaces the deferred buttons' file ids, and a second download clicked while it runs asks for
# an id that is gone and silently gets nothing (seen under load in the browser test).
st.subheader("Labels")
frame = labels_frame(project)
if frame.empty:
    st.info("No labels yet: once you label images they can be downloaded here as CSV.")
else:
    st.write(f"{len(frame):,} labeled images in {frame['label'].nunique()} classes.")
    st.dataframe(frame.head(200), hide_index=True, width="stretch")
st.download_button("Download labels CSV", frame.to_csv(index=False).encode("utf-8"),
                   file_name=f"{project.name}-labels.csv", mime="text/csv",
                   disabled=frame.empty, key="export_labels_csv", on_click="ignore")
st.caption(cli("export-labels", "labels.csv"))

st.subheader("Predictions")
predictions = predictions_frame(project)
if predictions is None:
    st.info("No predictions yet: train a model on the Train page; every finished run predicts "
            "all images, and they can be downloaded here as CSV.")
else:
    meta = load_predictions(project)
    st.write(f"Predictions of run {meta.run_id} ({meta.method}) for {len(predictions):,} images; "
             f"median confidence {predictions['confidence'].median():.1%}.")
    st.dataframe(predictions.head(200), hide_index=True, width="stretch")
    st.download_button("Download predictions CSV",
                       lambda: predictions.to_csv(index=False).encode("utf-8"),
                       file_name=f"{project.name}-predictions.csv", mime="text/csv",
                       key="export_predictions_csv", on_click="ignore")
    st.caption(cli("export-predictions", "predictions.csv"))

st.subheader("Model")
runs = {run.id: run for run in exportable_runs(project)}
if not runs:
    st.info("No trained model yet: train one on the Train page, then download it here.")
else:
    run_id = st.selectbox("Run", list(runs), key="export_model_run",
                          format_func=lambda r: f"Run {r} · {runs[r].method} · "
                                                f"{runs[r].n_labels:,} labels")
    st.download_button("Download model zip", lambda: model_zip(project, run_id),
                       file_name=f"{project.name}-run-{run_id}-model.zip",
                       mime="application/zip", key="export_model_zip", on_click="ignore")
    st.caption("The zip holds config.json, weights.pt (state_dict), classes.json (output column "
               "→ class name), README.md and load_model.py. Load it with Latentlab:")
    st.code(LOAD_SNIPPET, language="python")
    st.caption(cli(f"export-model --run {run_id}", "model.zip"))

st.subheader("Images as class folders (ImageFolder)")
left, right = st.columns(2)
include_labeled = left.checkbox("Labeled images", value=True, key="export_folder_labeled")
include_predicted = left.checkbox("Confidently predicted unlabeled images", value=False,
                                  key="export_folder_predicted",
                                  help="Unlabeled images whose predicted class has at least the "
                                       "threshold's probability, in that class's folder")
min_confidence = right.slider("Confidence threshold", 0.5, 1.0, 0.9, 0.01,
                              key="export_folder_confidence", disabled=not include_predicted)
selection = select_images(project, include_labeled, include_predicted, min_confidence)
if len(selection.ids) == 0:
    st.info("Nothing to export yet: label images, or include predicted images once a model "
            "has been trained.")
else:
    st.write(f"{len(selection.ids):,} images: {selection.n_labeled:,} labeled, "
             f"{selection.n_predicted:,} predicted.")
    zip_path = project.root / "exports" / "imagefolder.zip"
    if st.button("Prepare zip", key="export_folder_prepare"):
        zip_path.parent.mkdir(exist_ok=True)
        bar = st.progress(0.0, "Writing PNGs ...")
        result = export_imagefolder(project, zip_path, include_labeled, include_predicted,
                                    min_confidence, bar.progress)
        bar.empty()
        st.success(result.summary())
    if zip_path.is_file():
        stat = zip_path.stat()
        st.download_button(f"Download ImageFolder zip ({_size(stat.st_size)}, prepared "
                           f"{time.strftime('%H:%M', time.localtime(stat.st_mtime))})",
                           lambda: zip_path.read_bytes(), mime="application/zip",
                           file_name=f"{project.name}-imagefolder.zip", key="export_folder_zip",
                           on_click="ignore")
    flags = ("" if include_labeled else " --no-labeled") + (
        f" --predicted --min-confidence {min_confidence:g}" if include_predicted else "")
    st.caption(cli("export-imagefolder" + flags, "images.zip"))
