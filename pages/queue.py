"""Label queue: the app suggests which images to label next; accept its guesses or fix them.

Two views of one queue (which image is next: ssl_core.labeling.queue):
- Grid: every suggestion with its guessed class pre-filled; fix single boxes, then save them
  all (Ctrl/Cmd+Enter). Tab moves between the boxes, typing filters one.
- One at a time: the current image large; keys 1-9, 0 give it class 1..10, A accepts the
  guess, S skips, Z undoes, and the next image comes up. (A, not Enter: Enter must still press
  the button that has the focus.) Each label is committed to the store before the next image
  shows. The buttons are keyed by the image they are for, so a key pressed while the page
  still shows an image that is already done does nothing.
N asks for new suggestions in both views. The strategy "review suspected errors" shows the
Quality page's review of labels the model contradicts instead (ui/quality_review.py)."""
import uuid

import numpy as np
import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.labeling import queue as labelqueue
from ssl_core.labeling.classes import LabelError, list_classes
from ssl_core.labeling.evaluation_split import sealed_mask
from ssl_core.labeling.label_log import current_labels, set_labels, undo_last
from ssl_core.labeling.suggest import STRATEGIES
from ssl_core.latentmap.map_files import load_map
from ssl_core.project.store import StoreError
from ssl_core.quality.marks import excluded_mask
from ssl_core.results.predictions import load_predictions
from ui import quality_review, session
from ui.image_view import show_image
from ui.text import escape_markdown

SKIP = -2
REVIEW = "review suspected errors"
VIEWS = ("Grid", "One at a time")
KEYS_GRID = ("Keys: **Ctrl/⌘+Enter** saves the page · **N** new suggestions · **Tab** moves "
             "between the boxes, typing filters one.")
KEYS_ONE = ("Keys: **1–9, 0** give the class · **A** accepts the guess · **S** skips · "
            "**Z** undoes · **N** new suggestions (not while a text box has the focus).")
project = session.current_project()
images = ImageCollection(project)
n = images.n_images
st.title(f"Label queue · {project.name}")
classes = list_classes(project.store)
names = {c.id: c.name for c in classes}
if len(classes) == 0:
    st.info("Create classes first (Classes page), or label a lasso selection on the Map.")
    st.stop()
predictions = load_predictions(project, n)
labels = current_labels(project.store, n)

c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
strategy = c1.segmented_control("Strategy", (*STRATEGIES, REVIEW), default="diversity",
                                key="queue_strategy",
                                help="diversity: cover the latent space (no model needed); "
                                     "uncertainty: where the current model is least sure; random; "
                                     "review suspected errors: labels the model contradicts "
                                     "(after a quality check).")
if strategy == REVIEW:
    quality_review.review(project, key="queue-review")
    st.stop()
count = c2.selectbox("How many", (12, 24, 48), index=1, key="queue_n")
if c3.button("Suggest", type="primary", shortcut="N", help="New suggestions (key N)"):
    map_data = load_map(project)                  # only here: not on every labeling keypress
    if strategy in ("diversity", "uncertainty") and map_data is None:
        st.warning("Diversity and uncertainty use the latent map: build it on the Map page first.")
    elif strategy == "uncertainty" and predictions is None:
        st.warning("Uncertainty needs a trained model: train one first, or use diversity.")
    else:
        latents = map_data.latents if map_data is not None else np.zeros((n, 1), np.float32)
        picks = labelqueue.suggestions(
            strategy or "diversity", count, latents[:n], labels, sealed_mask(images, n),
            proba=None if predictions is None else predictions.proba,
            excluded=excluded_mask(project.store, n),
            seed=int(np.random.default_rng().integers(1 << 30)))
        st.session_state["suggested"] = [int(i) for i in picks]
        st.session_state["queue_action"] = uuid.uuid4().hex
        st.session_state.pop("queue_last", None)

v1, v2 = st.columns([1, 3], vertical_alignment="center")
view = v1.segmented_control("View", VIEWS, default=VIEWS[0], required=True, key="queue_view",
                            label_visibility="collapsed", persist_state="session")
v2.caption(KEYS_ONE if view == VIEWS[1] else KEYS_GRID)

order = [int(i) for i in st.session_state.get("suggested", [])]
rest = labelqueue.pending(order, labels)       # labeled meanwhile (anywhere): gone; undone: back


def guesses(ids: list[int]) -> tuple[list[int], list[float]]:
    """The model's class (SKIP when none, or when its class is gone) and confidence per image."""
    if predictions is None:
        return [SKIP] * len(ids), [0.0] * len(ids)
    proba = predictions.proba[ids]                                   # (m, K)
    cls = predictions.class_ids[proba.argmax(1)]
    return [int(c) if int(c) in names else SKIP for c in cls], [float(p) for p in proba.max(1)]


def undo_button() -> None:
    if st.button("Undo", key="qk-undo", shortcut="Z", width="stretch",
                 help="Undo your last label action (on any page): the image comes back"):
        try:
            result = undo_last(project.store, user=session.user())
        except StoreError as err:                  # read-only or full project folder
            st.error(escape_markdown(str(err)))
            return
        st.session_state["queue_last"] = ("Undone: the image is back in the queue." if result
                                          else "Nothing to undo.")
        st.rerun()


def label_current(class_id: int) -> None:
    """Commit the label, then show the next image."""
    try:
        image, _, _ = labelqueue.label_current(project.store, order, labels, class_id,
                                               user=session.user(), action_uuid=uuid.uuid4().hex)
    except (LabelError, StoreError) as err:   # StoreError: read-only or full project folder
        st.error(str(err))
        return
    st.session_state["queue_last"] = (f"Labeled image {image} as **{escape_markdown(names[class_id])}**"
                                      " (Z undoes).")
    st.rerun()


def one_at_a_time() -> None:
    last = st.session_state.get("queue_last")
    if not rest:
        st.success(f"All {len(order)} suggested images are labeled: press Suggest (N) for more.")
        c, _ = st.columns([1, 4])
        with c:
            undo_button()
        if last:
            st.caption(last)
        return
    i = rest[0]
    (guess,), (confidence,) = guesses([i])
    left, right = st.columns([1, 2], gap="large")
    show_image(images, i, 256, where=left)
    with right:
        done = len(order) - len(rest)
        st.progress(done / len(order), text=f"{done} of {len(order)} labeled · {len(rest)} to go")
        if guess != SKIP:
            st.markdown(f"The model guesses **{escape_markdown(names[guess])}** "
                        f"({confidence:.0%} sure).")
        else:
            st.markdown("No guess yet (train a model for guesses): pick the class.")
        a, s, z = st.columns([2, 1, 1])
        if a.button(f"Accept: {escape_markdown(names[guess])}" if guess != SKIP else "Accept",
                    key=f"qk-{i}-accept", type="primary", shortcut="A", width="stretch",
                    disabled=guess == SKIP):
            label_current(guess)
        if s.button("Skip", key=f"qk-{i}-skip", shortcut="S", width="stretch",
                    help="Leave it unlabeled for now: it comes again after the others"):
            st.session_state["suggested"] = labelqueue.skip(order, i)
            st.session_state["queue_last"] = f"Skipped image {i}."
            st.rerun()
        with z:
            undo_button()
        keys = labelqueue.digit_keys(c.id for c in classes)
        keyed = classes[:len(keys)]
        for row in range(0, len(keyed), 5):                 # row by row: the tab order reads 1, 2, 3
            for col, c in zip(st.columns(5), keyed[row:row + 5]):
                if col.button(escape_markdown(c.name), key=f"qk-{i}-c{c.id}", shortcut=keys[c.id],
                              width="stretch"):
                    label_current(c.id)
        if len(classes) > len(keys):
            more = st.selectbox("More classes", [c.id for c in classes[len(keys):]], index=None,
                                key=f"qk-{i}-more", placeholder="Type a class name…",
                                format_func=lambda c: names[c])
            if more is not None:
                label_current(more)
        if last:
            st.caption(last)


def grid() -> None:
    picks = np.asarray(rest, np.int64)
    options = [SKIP] + [c.id for c in classes]
    guess, _ = guesses(rest)
    with st.form("queue_form", border=False):
        cols = st.columns(6)
        for k, i in enumerate(picks):
            with cols[k % 6]:
                show_image(images, i, 96)
                st.selectbox(f"class of {i}", options, index=options.index(guess[k]), key=f"q-{i}",
                             label_visibility="collapsed",
                             format_func=lambda c: "— skip —" if c == SKIP else names[c])
        saved = st.form_submit_button(f"Save {len(picks)} (accept the guesses, with your fixes)",
                                      type="primary", shortcut="Ctrl+Enter")
    if saved:
        chosen = {int(i): st.session_state[f"q-{i}"] for i in picks}
        total = 0
        action = st.session_state.get("queue_action") or uuid.uuid4().hex
        for cid in sorted({c for c in chosen.values() if c != SKIP}):
            ids = [i for i, c in chosen.items() if c == cid]
            total += set_labels(project.store, ids, cid, user=session.user(),
                                action_uuid=f"{action}-{cid}").n_images
        st.session_state["queue_action"] = uuid.uuid4().hex  # after an undo, saving again counts
        st.toast(f"Saved {total} labels.")
        st.rerun()


if not order:
    st.caption("Press Suggest (N) to get images to label.")
elif view == VIEWS[1]:
    one_at_a_time()
elif not rest:
    st.success(f"All {len(order)} suggested images are labeled: press Suggest (N) for more.")
else:
    grid()
