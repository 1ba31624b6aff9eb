"""Map page: every image as a dot on the 2-D map of the VAE latent space; select by lasso, box
or click, look at the selection, and label it. Widgets in, ssl_core calls out."""
import uuid

import numpy as np
import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.data.thumbnails import contact_sheet
from ssl_core.jobs import records as jobs
from ssl_core.jobs import worker
from ssl_core.labeling.classes import LabelError, add_class, list_classes
from ssl_core.labeling.evaluation_split import sealed_mask
from ssl_core.labeling.label_log import current_labels, set_labels, undo_last
from ssl_core.labeling.selection import describe_selection, majority_class, selected_ids
from ssl_core.latentmap.map_files import load_map
from ssl_core.neighbours import nearest_neighbours
from ssl_core.project.store import StoreError
from ssl_core.results.predictions import Predictions, load_predictions
from ui import session
from ui.jobs_view import follow_job
from ui.map_colours import MODES, colouring, quality_flags
from ui.map_figure import cached_map_figure, draw_order
from ui.text import escape_markdown

PAGE = 40
project = session.current_project()
images = ImageCollection(project)
n = images.n_images
st.title(f"Map · {project.name}")

map_data = load_map(project, allow_stale=True)
running = [j for j in jobs.active_jobs(project.store) if j.kind == "map"]
stale = map_data is None or len(map_data.layout) < n
tried = jobs.list_jobs(project.store, limit=1, kind="map")
if stale and not running and n > 0 and (not tried or tried[0].params.get("n_images") != n):
    # first visit after an import: build (or extend) the map in the background, once per size;
    # checked again and recorded in one transaction, so two sessions here at once start one job
    worker.launch_once(project, "map", {"n_images": n}, unless_same="n_images")
    running = [j for j in jobs.active_jobs(project.store) if j.kind == "map"]
if running:
    follow_job(project, running[0].id, "map-job", watch=project.map_meta_path)
if map_data is None:
    if not running:
        if tried and tried[0].status is jobs.JobStatus.FAILED:
            st.error(f"Building the map failed: {escape_markdown(tried[0].error or '')}")
        if st.button("Build the map", type="primary", disabled=n == 0):
            worker.launch_once(project, "map", {"n_images": n})    # one job, even if two click
            st.rerun()
    st.info("The map trains a VAE on all images (no labels needed), encodes every image and lays "
            "the latent space out in 2-D with UMAP. Meanwhile you can browse the Images page.")
    st.stop()

xy, latents = map_data.layout, map_data.latents
ids = np.arange(len(xy))
labels = current_labels(project.store, n)[:len(xy)]
classes = list_classes(project.store)
predictions = load_predictions(project, len(xy))
if predictions is not None and len(predictions.proba) > len(xy):       # map older than the import
    predictions = Predictions(predictions.proba[:len(xy)], predictions.class_ids, predictions.run_id,
                              predictions.method)
if len(xy) < n:
    st.warning(f"The map shows the first {len(xy):,} of {n:,} images: rebuild it to add the rest.")
if map_data.meta.get("provisional"):
    st.info("A first map, from the images' shrunk pixels (PCA), to look and label at once. The "
            "VAE's map replaces it here when it is ready" + (" (the job is running)." if running
                                                            else ": rebuild the map."))

top = st.columns([4, 2, 1])
mode = top[0].segmented_control("Colour by", MODES, default="label", key="map_colour")
top[1].caption(f"{len(xy):,} images · {int((labels >= 0).sum()):,} labeled · map from "
               f"{map_data.meta.get('created', 'an earlier run')}")
if top[2].button("Rebuild map", help="Retrain the VAE and recompute the layout, starting from "
                 "this one so clusters stay where they are.", disabled=bool(running)):
    worker.launch_once(project, "map", {})        # another session's rebuild already counts
    st.rerun()
truth = images.ground_truth()
sealed = sealed_mask(truth, n)                          # (N,) bool: evaluation images
col, note = colouring(mode or "label", labels, classes, predictions, truth,
                      st.session_state.get("suggested"),
                      quality_flags(project, labels) if mode == "quality flag" else None)
if note:
    st.caption(note)
map_col, panel = st.columns([3, 2])
with map_col:
    order = draw_order(col)                   # unlabeled first: the labeled ones on top
    xy_drawn, ids_drawn = xy[order], ids[order]                                # (N, 2), (N,)
    event = st.plotly_chart(cached_map_figure(xy_drawn, ids_drawn, col.take(order)),
                            key="latent_map", on_select="rerun",
                            selection_mode=("points", "box", "lasso"), width="stretch",
                            config={"displaylogo": False, "scrollZoom": True,
                                    "displayModeBar": True, "plotGlPixelRatio": 1})
chosen = selected_ids(event.selection if event else None, xy_drawn, ids_drawn)  # (S,) ids


def undo_button(key: str, label: str = "Undo") -> None:
    if st.button(label, key=key, help="Undo your last label, clear, merge or delete"):
        try:
            result = undo_last(project.store, user=session.user())
        except StoreError as err:                  # read-only or full project folder
            st.error(str(err))
            return
        confirm("Undone." if result else "Nothing to undo.")


def confirm(message: str) -> None:
    """The store has the change: say so now (the toast goes out before the map is redrawn, which
    takes ~0.8 s more at 70,000 points in a software-GL browser), then rerun the page so the map
    and legend show it. The panel repeats the message after the rerun."""
    st.toast(message)
    st.session_state["map_confirmed"] = message
    st.rerun(scope="app")


def default_class_index(selection: np.ndarray, options: list[int]) -> int | None:
    """Where the class box starts: "+ New class…" when there are no classes yet, else the class
    the current model predicts for most of the selection, else nothing (the user chooses)."""
    if options == [-1]:
        return 0
    best = majority_class(selection, predictions.labels if predictions is not None else None,
                          options[:-1])
    return None if best is None else options.index(best)


@st.fragment
def selection_panel(chosen: np.ndarray) -> None:
    """The selected images and what to do with them. A fragment: its clicks rerun only this
    panel, not the map, so a label is written and confirmed without redrawing 70,000 points
    first."""
    if message := st.session_state.pop("map_confirmed", None):
        st.success(message)
    dropped = set(st.session_state.get("dropped", []))
    if st.session_state.get("dropped_for") != hash(chosen.tobytes()):
        dropped = set()                              # a new selection starts with nothing dropped
    selection = np.array([i for i in chosen if i not in dropped], np.int64)
    if len(selection) == 0:
        st.caption("Drag around points on the map to select them with the lasso (box select "
                   "and zoom are in the toolbar above the map), or click one.")
        undo_button("undo_empty", "Undo my last action")
        return
    names = {c.id: c.name for c in classes}
    st.subheader(f"{len(selection):,} selected")
    if n_sealed := int(sealed[selection[selection < len(sealed)]].sum()):
        st.caption(f"{n_sealed:,} of them are evaluation images (the dataset's test split): a "
                   "label on them is kept but never used for training.")
    if predictions is not None:
        mix = describe_selection(selection, predictions.labels, names)
        st.caption("Predicted: " + ", ".join(f"{escape_markdown(name)} {count:,}"
                                             for name, count in mix[:8]))
    options = [c.id for c in classes] + [-1]
    # Keyed by the class list and the selection, so that the box starts afresh on its default in
    # the browser and here alike after a class changes or a new selection is made: with one fixed
    # key, the value kept from the last label could differ from the class the browser showed.
    # The default is never simply the first class: one click would label a cluster wrongly.
    version = hash(tuple((c.id, c.name) for c in classes))
    box_key = f"assign_class-{version}-{hash(selection.tobytes())}"
    target = st.selectbox("Class", options, key=box_key, placeholder="Choose a class…",
                          index=default_class_index(selection, options),
                          format_func=lambda c: "+ New class…" if c == -1 else names[c])
    new_name = (st.text_input("New class name", key=f"new_class_name-{version}")
                if target == -1 else None)
    action_key = f"act-{hash(selection.tobytes())}"
    st.session_state.setdefault(action_key, uuid.uuid4().hex)   # a retried click is one action
    b1, b2, b3 = st.columns(3)
    if b1.button(f"Label {len(selection):,}", type="primary", key="assign",
                 disabled=target is None, help="Choose a class first" if target is None else None):
        try:
            cid = add_class(project.store, new_name or "").id if target == -1 else target
            res = set_labels(project.store, selection.tolist(), cid, user=session.user(),
                             action_uuid=st.session_state[action_key])
        except (LabelError, StoreError) as err:   # StoreError: read-only or full project folder
            st.error(escape_markdown(str(err)))
        else:
            confirm(f"Labeled {res.n_images:,} images as "
                    f"{escape_markdown(names.get(cid, new_name))}.")
    if b2.button("Clear labels", key="clear"):
        try:
            res = set_labels(project.store, selection.tolist(), None, user=session.user(),
                             action_uuid=st.session_state[action_key] + "-clear")
        except StoreError as err:                  # read-only or full project folder
            st.error(str(err))
        else:
            confirm(f"Cleared {res.n_images:,} labels.")
    with b3:
        undo_button("undo")
    if len(selection) == 1:
        i = int(selection[0])
        nbr = nearest_neighbours(latents, i, 12)                              # (12,) ids
        st.image(contact_sheet(images.images()[[i]], cols=1, scale=max(1, 160 // images.shape[0])),
                 caption=f"image {i}")
        st.image(contact_sheet(images.images()[nbr], cols=6),
                 caption="its nearest neighbours in latent space")
        return
    pages = max(1, -(-len(selection) // PAGE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="sel_page") if pages > 1 else 1
    shown = selection[(page - 1) * PAGE: page * PAGE]
    st.image(contact_sheet(images.images()[shown], cols=8), width="stretch",
             caption=f"images {shown[0]}–{shown[-1]} of the selection, in id order")
    drop = st.multiselect("Drop images from the selection", [int(i) for i in shown], key="drop_pick",
                          format_func=lambda i: f"image {i}")
    if st.button("Drop", disabled=not drop):
        st.session_state["dropped"] = sorted(dropped | set(drop))
        st.session_state["dropped_for"] = hash(chosen.tobytes())
        st.rerun(scope="fragment")


with panel:
    selection_panel(chosen)
