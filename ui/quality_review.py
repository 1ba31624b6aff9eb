"""Review suspected label errors one at a time: the image, the label it has, the label the
model suggests (out of sample: the image's own label was hidden when it was predicted), and its
nearest labeled neighbours (label_errors.py). Relabel, keep or clear in place; Z undoes the last
decision. Used by the Quality page and by the Label queue's "review suspected errors".

Relabel and clear are label-log actions (label_log.set_labels), so the app's undo undoes them
like any label; keep is a quality mark (quality/marks.py), undone by withdrawing it. An image
leaves the list as soon as its label changes or is kept, whoever did it."""
from __future__ import annotations

import uuid

import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.labeling.classes import LabelError, list_classes
from ssl_core.labeling.label_log import current_labels, set_labels, undo_last
from ssl_core.project.folder import Project
from ssl_core.project.store import StoreError
from ssl_core.quality.marks import keep_label, kept_labels, withdraw_kept
from ssl_core.quality.report import flagged_label_errors, load_report
from ui import session
from ui.image_view import show_image
from ui.text import escape_markdown

UNDO_KEY = "quality_review_undo"     # session stack of ("label", image) | ("kept", image)
NEIGHBOURS = 6


def suspects(project: Project, n: int) -> list[dict]:
    """The suspected label errors still open, worst first."""
    report = load_report(project)
    return flagged_label_errors(report.result("label_errors"), current_labels(project.store, n),
                                kept_labels(project.store))


def _decide(project: Project, kind: str, image: int, class_id: int | None, message: str) -> None:
    """Commit one decision, remember it for undo, rerun to show the next suspect."""
    try:
        if kind == "kept":
            keep_label(project.store, image, class_id, user=session.user())
        else:
            set_labels(project.store, [image], class_id, user=session.user(),
                       action_uuid=uuid.uuid4().hex)
    except (LabelError, StoreError) as err:
        st.error(escape_markdown(str(err)))
        return
    st.session_state.setdefault(UNDO_KEY, []).append((kind, image))
    st.session_state["quality_review_last"] = message + " (Z undoes)."
    st.rerun()


def _undo(project: Project) -> None:
    stack = st.session_state.get(UNDO_KEY, [])
    if not stack:
        st.session_state["quality_review_last"] = "Nothing to undo here."
        st.rerun()
    kind, image = stack.pop()
    try:
        if kind == "kept":
            withdraw_kept(project.store, image, user=session.user())
        else:
            undo_last(project.store, user=session.user())
    except StoreError as err:
        st.error(escape_markdown(str(err)))
        return
    st.session_state["quality_review_last"] = f"Undone: image {image} is back for review."
    st.rerun()


def review(project: Project, key: str = "qr") -> None:
    """The one-at-a-time review of the open suspects (nothing to do: says so)."""
    images = ImageCollection(project)
    n = images.n_images
    names = {c.id: c.name for c in list_classes(project.store)}
    labels = current_labels(project.store, n)
    open_ = suspects(project, n)
    last = st.session_state.get("quality_review_last")
    if not open_:
        st.success("No suspected label errors left to review." if load_report(project).result(
            "label_errors") is not None else
            "No label check yet: run the quality check (Quality page) after labeling.")
        if st.session_state.get(UNDO_KEY) and st.button("Undo the last decision", key=f"{key}-undo0",
                                                        shortcut="Z"):
            _undo(project)
        if last:
            st.caption(last)
        return
    issue = open_[0]
    image, given, suggested = int(issue["image_id"]), int(issue["given"]), int(issue["suggested"])
    left, right = st.columns([1, 2], gap="large")
    show_image(images, image, 256, where=left)
    with right:
        st.markdown(f"**{len(open_)}** suspected label errors to review. Image {image} is labeled "
                    f"**{escape_markdown(names.get(given, '?'))}**; predicted without its own "
                    f"label, it looks like **{escape_markdown(names.get(suggested, '?'))}** "
                    f"(label quality {float(issue['quality']):.2f}: lower is more suspect).")
        near = [int(j) for j in issue.get("neighbours", ()) if labels[int(j)] >= 0][:NEIGHBOURS]
        if near:
            st.caption("Its nearest labeled neighbours (in the space the method labels in):")
            for col, j in zip(st.columns(len(near)), near):
                show_image(images, j, 64, escape_markdown(names.get(int(labels[j]), "?")), col)
        a, b, c, z = st.columns(4)
        if suggested in names and a.button(
                f"Relabel: {escape_markdown(names[suggested])}", key=f"{key}-{image}-fix",
                type="primary", shortcut="F", width="stretch"):
            _decide(project, "label", image, suggested,
                    f"Image {image} relabeled as **{escape_markdown(names[suggested])}**")
        if b.button(f"Keep: {escape_markdown(names.get(given, '?'))}", key=f"{key}-{image}-keep",
                    shortcut="K", width="stretch", disabled=given not in names):
            _decide(project, "kept", image, given, f"Image {image} kept as "
                    f"**{escape_markdown(names.get(given, '?'))}**")
        if c.button("Clear label", key=f"{key}-{image}-clear", shortcut="X", width="stretch"):
            _decide(project, "label", image, None, f"Image {image}'s label cleared")
        if z.button("Undo", key=f"{key}-undo", shortcut="Z", width="stretch"):
            _undo(project)
        other = st.selectbox("Another class", [cid for cid in names if cid not in (given, suggested)],
                             index=None, key=f"{key}-{image}-other", placeholder="Type a class name…",
                             format_func=lambda cid: names[cid])
        if other is not None:
            _decide(project, "label", image, other,
                    f"Image {image} relabeled as **{escape_markdown(names[other])}**")
        st.caption("Keys: **F** fix (relabel as suggested) · **K** keep · **X** clear · **Z** undo "
                   "(Streamlit reserves C and R).")
        if last:
            st.caption(last)
