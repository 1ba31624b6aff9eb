"""Images page: what is in the project, import more (in the background), browse thumbnails."""
import uuid

import pandas as pd
import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.data.import_lock import running_import
from ssl_core.data.importer import ImportConfig, last_import_report
from ssl_core.data.thumbnails import contact_sheet
from ssl_core.data.zip_archive import ArchiveLimits
from ssl_core.features.choice import (
    AUTO_KEY,
    META_KEY,
    PIXELS,
    REPRESENTATIONS,
    RepresentationChoice,
    default_representation,
    project_representation,
    set_project_representation,
)
from ssl_core.features.store import features_key, load_features
from ssl_core.jobs import worker
from ssl_core.labeling.label_log import current_labels
from ssl_core.project.folder import Project, default_data_root, valid_project_name
from ui import quality_view, session
from ui.jobs_view import follow_job
from ui.text import escape_markdown

SOURCES = {"Built-in digits (scikit-learn)": "digits", "MNIST": "mnist",
           "Fashion-MNIST": "fashion-mnist", "KMNIST": "kmnist", "CIFAR-10": "cifar10",
           "Folder on this machine": "folder", "Upload a .zip": "zip"}
PER_PAGE = 120
LISTED_SKIPS = 20   # an import report lists this many skipped files as text, more in a table

project = session.current_project()
store = ImageCollection(project)
n_images, shape = store.n_images, store.shape
gt_classes = store.ground_truth_classes()
n_labeled = int((current_labels(project.store, n_images) >= 0).sum())

st.title(f"Images · {project.name}")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Images", f"{n_images:,}")
c2.metric("Stored as", f"{shape[0]}×{shape[1]}×{shape[2]}" if shape else "-")
c3.metric("Labeled by you", f"{n_labeled:,}")
c4.metric("Ground-truth classes", len(gt_classes) if gt_classes else "none",
          help="Ground truth that came with the data is used only to measure accuracy, "
               "never shown to training as labels.")


def _representation(shape: tuple[int, int, int]) -> None:
    """How the map and the methods see these images; changing it rebuilds the map."""
    chosen = project.store.get_meta(META_KEY, "auto")
    resolved = project_representation(project.store, shape)
    options = ["auto", *REPRESENTATIONS]
    left, right = st.columns([2, 3])
    picked = left.selectbox(
        "Representation", options, index=options.index(chosen) if chosen in options else 0,
        key="representation_pick",
        format_func=lambda o: f"auto ({resolved if chosen == 'auto' else default_representation(shape)}"
                              " for these images)" if o == "auto" else o,
        help="How the map and every method see the images: their own pixels (best for "
             "handwritten digits), or the features of an ImageNet-pretrained network (photos: "
             "tens of points more accurate; also clothing, textures). For small greyscale "
             "images 'auto' starts with pixels and, once every class has 3 labels, a retrain "
             "compares both on your labels and keeps the better one. Computed once per project "
             "and reused.")
    feats = load_features(project, features_key(resolved, shape)) if resolved != PIXELS else None
    done = 0 if feats is None else min(len(feats), n_images)
    decided = project.store.get_meta(AUTO_KEY) if chosen == "auto" else None
    if decided:
        right.caption(escape_markdown(RepresentationChoice.from_json(decided).describe()))
    right.caption(f"In use: **{resolved}**" + (
        "" if resolved == PIXELS else
        f" · features of {done:,} / {n_images:,} images computed"
        + ("" if done == n_images else " (the map job computes the rest)")))
    if picked != chosen:
        set_project_representation(project.store, picked)
        worker.launch(project, "map", {"n_images": n_images, "representation": picked})
        st.toast(f"Representation: {picked}. The map is being rebuilt; the next retrain uses it.")
        st.rerun()


def _import_form() -> None:
    choice = st.selectbox("Source", list(SOURCES), key="import_source")
    kind = SOURCES[choice]
    params: dict = {"kind": kind}
    if kind in ("mnist", "fashion-mnist", "kmnist", "cifar10"):
        params["data_root"] = st.text_input(
            "Data root", value=str(default_data_root()), key="import_data_root",
            help="Folder laid out as torchvision does (e.g. <root>/MNIST/raw/*.gz). Missing files "
                 "are downloaded there when you are online.")
        params["download"] = st.checkbox("Download missing files", value=True, key="import_dl")
    elif kind == "folder":
        params["path"] = st.text_input("Folder path", key="import_folder",
                                       help="Class subfolders become ground truth; files at the "
                                            "top level are imported unlabeled.")
    upload = None
    if kind == "zip":
        upload = st.file_uploader("Zip of images", type=["zip"], key="import_zip")
    target = st.radio("Import into", ["this project", "a new project"], horizontal=True,
                      key="import_target")
    new_name = st.text_input("New project name", key="import_new_name") \
        if target == "a new project" else None
    size_text, channels = "", None
    if target == "a new project" or shape is None:
        size_text = st.text_input("Size HxW (empty: the most common size, longer side at most "
                                  "128)", key="import_size")
        channels = {"most common": None, "grayscale (1)": 1, "colour (3)": 3}[
            st.selectbox("Channels", ["most common", "grayscale (1)", "colour (3)"],
                         key="import_channels")]
    else:
        st.caption(f"Images are stored as {shape[0]}×{shape[1]}×{shape[2]}, like the rest "
                   "of this project.")
    if st.button("Import", type="primary", key="import_go"):
        _start_import(params, upload, new_name, size_text, channels)


def _start_import(params, upload, new_name, size_text, channels) -> None:
    size = None
    if size_text.strip():
        try:
            size = tuple(int(v) for v in size_text.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2 or not all(1 <= v <= 1024 for v in size):   # no assert: python -O
            st.error("Size must look like 28x28 (each side 1..1024).")
            return
    if new_name is not None and not valid_project_name(new_name):
        st.error("Project names use letters, digits, '_', '-' or '.' (at most 64 characters).")
        return
    if params["kind"] == "folder" and not (params.get("path") or "").strip():
        st.error("Enter the folder to import.")
        return
    if params["kind"] == "zip":
        limit = ArchiveLimits().max_archive_bytes
        if upload is None:
            st.error("Choose a .zip file first.")
            return
        if upload.size > limit:
            st.error(f"{escape_markdown(upload.name)} is {upload.size / 2**20:.0f} MB; the "
                     f"limit is {limit / 2**20:.0f} MB.")
            return
    dest = Project.named(new_name) if new_name else project
    job_params = {"source": params, "config": ImportConfig(size=size, channels=channels).to_dict()}
    if upload is not None:
        folder = dest.uploads_dir / uuid.uuid4().hex  # the file keeps its own name: it is the
        folder.mkdir(parents=True)                     # source shown in reports and exports
        path = folder / (upload.name.replace("/", "_").replace("\\", "_")[-80:].lstrip(".")
                         or "upload.zip")
        path.write_bytes(upload.getvalue())
        job_params["source"]["path"] = str(path)
        job_params["delete_after"] = str(path)
    busy = running_import(dest)          # one import per project: this one waits its turn
    job_id, started = worker.launch_once(dest, "import", job_params, same_params_only=True)
    st.session_state["import_job"] = (dest.name, job_id)
    if not started:                      # the same import asked twice (another tab): one job
        st.toast(f"This import is already running (job {job_id}).")
    elif busy is not None:
        st.toast("Another import into this project is running"
                 + (f" ({escape_markdown(busy)})" if busy else "")
                 + ": this one starts when it has finished.")
    st.session_state["project_name"] = dest.name
    st.rerun()  # show the job's progress (and the new project, if one was created)


if shape:
    _representation(shape)

with st.expander("Import images", expanded=n_images == 0):
    _import_form()

if st.session_state.get("import_job"):
    job_project, job_id = st.session_state["import_job"]
    if job_project == project.name:
        follow_job(project, job_id, key="import")

report = last_import_report(project)
if report is not None:
    with st.expander(f"Last import: {report.imported:,} images from "
                     f"{escape_markdown(report.source)}"
                     + (f", {len(report.skipped):,} files skipped" if report.skipped else ""),
                     expanded=bool(report.skipped)):
        few = len(report.skipped) <= LISTED_SKIPS     # a few read best as text, many as a table
        st.text(report.summary(max_listed=LISTED_SKIPS if few else 0))
        if not few:
            st.dataframe(pd.DataFrame(report.skipped), hide_index=True, width="stretch")
    quality_view.after_import(project, n_images)   # checks the new images, then warns here

if n_images:
    pages = max(1, -(-n_images // PER_PAGE))
    page = st.number_input(f"Page (of {pages:,})", 1, pages, 1, key="browse_page") \
        if pages > 1 else 1
    start = (page - 1) * PER_PAGE
    stop = min(n_images, start + PER_PAGE)
    st.image(contact_sheet(store.images()[start:stop], cols=20),
             caption=f"Images {start:,}–{stop - 1:,}")
else:
    st.info("This project has no images yet: import some above.")
