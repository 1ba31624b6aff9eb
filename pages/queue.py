"""Label queue: the app suggests which images to label next; accept its guesses or fix them.
Keyboard: Tab moves between the class boxes, typing filters a box, Enter on 'Save' submits."""
import uuid

import numpy as np
import streamlit as st

from ssl_core.imagestore import ImageStore
from ssl_core.labels import current_labels, list_classes, set_labels
from ssl_core.mapjob import load_map
from ssl_core.predictions import load_predictions
from ssl_core.suggest import STRATEGIES, suggest
from ssl_core.thumbnails import contact_sheet
from ui import session

SKIP = -2
project = session.current_project()
images = ImageStore(project)
n = images.n_images
st.title(f"Label queue · {project.name}")
classes = list_classes(project.store)
names = {c.id: c.name for c in classes}
if len(classes) == 0:
    st.info("Create classes first (Classes page), or label a lasso selection on the Map.")
    st.stop()
map_data = load_map(project)
predictions = load_predictions(project, n)
labels = current_labels(project.store, n)

c1, c2, c3 = st.columns([2, 1, 1])
strategy = c1.segmented_control("Strategy", STRATEGIES, default="diversity", key="queue_strategy",
                                help="diversity: cover the latent space (no model needed); "
                                     "uncertainty: where the current model is least sure; random.")
count = c2.selectbox("How many", (12, 24, 48), index=1, key="queue_n")
if c3.button("Suggest", type="primary"):
    if strategy in ("diversity", "uncertainty") and map_data is None:
        st.warning("Diversity and uncertainty use the latent map: build it on the Map page first.")
    elif strategy == "uncertainty" and predictions is None:
        st.warning("Uncertainty needs a trained model: train one first, or use diversity.")
    else:
        latents = map_data.latents if map_data is not None else np.zeros((n, 1), np.float32)
        picks = suggest(strategy or "diversity", count, latents[:n], labels[:len(latents)] >= 0,
                        proba=None if predictions is None else predictions.proba[:len(latents)],
                        seed=int(np.random.default_rng().integers(1 << 30)))
        st.session_state["suggested"] = picks
        st.session_state["queue_action"] = uuid.uuid4().hex

picks = np.asarray(st.session_state.get("suggested", []), np.int64)
picks = picks[labels[picks] < 0] if len(picks) else picks     # labeled meanwhile: gone
if len(picks) == 0:
    st.caption("Press Suggest to get images to label.")
    st.stop()

options = [SKIP] + [c.id for c in classes]
guess = predictions.labels[picks] if predictions is not None else np.full(len(picks), SKIP)
with st.form("queue_form", border=False):
    cols = st.columns(6)
    scale = max(1, 96 // images.shape[0])
    for k, i in enumerate(picks):
        with cols[k % 6]:
            st.image(contact_sheet(images.images()[[i]], cols=1, scale=scale, pad=0), caption=f"image {i}")
            pre = int(guess[k]) if int(guess[k]) in names else SKIP
            st.selectbox(f"class of {i}", options, index=options.index(pre), key=f"q-{i}",
                         label_visibility="collapsed",
                         format_func=lambda c: "— skip —" if c == SKIP else names[c])
    saved = st.form_submit_button(f"Save {len(picks)} (accept the guesses, with your fixes)",
                                  type="primary")
if saved:
    chosen = {int(i): st.session_state[f"q-{i}"] for i in picks}
    total = 0
    for cid in sorted({c for c in chosen.values() if c != SKIP}):
        ids = [i for i, c in chosen.items() if c == cid]
        total += set_labels(project.store, ids, cid, user=session.user(),
                            action_uuid=f"{st.session_state['queue_action']}-{cid}").n_images
    st.session_state["suggested"] = [i for i, c in chosen.items() if c == SKIP]
    st.toast(f"Saved {total} labels.")
    st.rerun()
