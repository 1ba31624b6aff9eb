"""Classes: add, rename, recolour, merge and delete. Merges and deletes are label actions, so
Undo (Map page) brings them back."""
import pandas as pd
import streamlit as st

from ssl_core.labeling.classes import (
    LabelError,
    add_class,
    list_classes,
    rename_class,
    set_class_color,
)
from ssl_core.labeling.label_log import current_labels, delete_class, merge_classes
from ssl_core.project.store import StoreError
from ui import session
from ui.text import escape_markdown

project = session.current_project()
st.title(f"Classes · {project.name}")
classes = list_classes(project.store)
labels = current_labels(project.store)
counts = {c.id: int((labels == c.id).sum()) for c in classes}
user = session.user()


def guarded(action, message: str) -> None:
    try:
        action()
        st.toast(message)
        st.rerun()
    except (LabelError, StoreError) as err:   # StoreError: read-only or full project folder
        st.error(escape_markdown(str(err)))


with st.form("add_class", clear_on_submit=True, border=False):
    c1, c2 = st.columns([4, 1])
    name = c1.text_input("New class", placeholder="e.g. cat", label_visibility="collapsed")
    if c2.form_submit_button("Add class", type="primary"):
        guarded(lambda: add_class(project.store, name), f"Added {escape_markdown(repr(name))}.")

if not classes:
    st.caption("No classes yet.")
    st.stop()
st.dataframe(pd.DataFrame({"class": [c.name for c in classes], "labeled images": [counts[c.id] for c in classes],
                           "colour": [c.color for c in classes]}), hide_index=True, width="stretch")
by_id = {c.id: c for c in classes}
pick = st.selectbox("Edit class", list(by_id), format_func=lambda c: by_id[c].name, key="edit_class")
cls = by_id[pick]
c1, c2, c3 = st.columns(3)
with c1:
    new = st.text_input("Name", value=cls.name, key=f"rename-{cls.id}")
    if st.button("Rename", disabled=new == cls.name):
        guarded(lambda: rename_class(project.store, cls.id, new), "Renamed.")
with c2:
    color = st.color_picker("Colour", value=cls.color, key=f"color-{cls.id}")
    if st.button("Set colour", disabled=color == cls.color):
        guarded(lambda: set_class_color(project.store, cls.id, color), "Colour set.")
with c3:
    others = [c for c in by_id if c != cls.id]
    into = st.selectbox("Merge into", others, format_func=lambda c: by_id[c].name, key="merge_into") if others else None
    if st.button("Merge", disabled=into is None):
        guarded(lambda: merge_classes(project.store, [cls.id], into, user=user),
                f"Merged {escape_markdown(repr(cls.name))} into "
                f"{escape_markdown(repr(by_id[into].name))}.")
if st.button(f"Delete {escape_markdown(repr(cls.name))} ({counts[cls.id]} labels cleared)",
             type="secondary"):
    guarded(lambda: delete_class(project.store, cls.id, user=user),
            f"Deleted {escape_markdown(repr(cls.name))} (undo brings it back).")
