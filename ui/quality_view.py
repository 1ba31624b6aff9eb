"""The Quality page's sections (balance, duplicates, outliers) and the warning banner the Train
and Images pages show where the user acts. Everything is computed in ssl_core.quality; this
module only lays it out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.data.thumbnails import contact_sheet
from ssl_core.labeling.classes import LabelError, list_classes
from ssl_core.labeling.evaluation_split import sealed_mask
from ssl_core.labeling.label_log import current_labels
from ssl_core.project.folder import Project
from ssl_core.project.store import StoreError
from ssl_core.quality.balance import BalanceReport
from ssl_core.quality.compute import project_balance, quality_keys
from ssl_core.quality.marks import excluded_mask, set_excluded
from ssl_core.quality.report import QualityReport, load_report, straddles
from ssl_core.quality.summary import quality_summary
from ui import session
from ui.text import escape_markdown

QUALITY_PAGE = "pages/quality.py"
GROUPS_SHOWN = 12
OUTLIERS_SHOWN = 48


def warnings_banner(project: Project, where: str, report: QualityReport | None = None,
                    keys: dict | None = None) -> None:
    """Balance warnings (always current) and what the last quality check found, each with a
    link to the Quality page. `where`: 'train' (before Retrain) or 'images' (after an import);
    `report` and `keys` when the caller has read them already."""
    balance = project_balance(project)
    lines = list(balance.warnings) if where == "train" else []
    report = report or load_report(project)
    if report.parts:
        s = quality_summary(project, report, balance, keys or quality_keys(project))
        if (e := s["label_errors"]) and e["flagged"]:
            lines.append(f"{e['flagged']} of your labels look wrong (suspected label errors).")
        if (d := s["duplicates"]) and d["still_included_copies"]:
            lines.append(f"{d['still_included_copies']:,} duplicate copies in {d['groups']:,} groups"
                         + (f", {d['straddling_evaluation_split']} across the evaluation split "
                            "(they inflate test accuracy)" if d["straddling_evaluation_split"] else "")
                         + ".")
        if s["stale"] and where == "images":
            lines.append("The images changed since the last quality check.")
    if not lines:
        return
    with st.container(border=True):
        st.warning("\n\n".join(escape_markdown(x) for x in lines), icon=":material/rule:")
        st.page_link(QUALITY_PAGE, label="Review on the Quality page", icon=":material/rule:")


def balance_section(balance: BalanceReport) -> None:
    st.subheader("Label balance")
    if not balance.classes:
        st.caption("No classes yet.")
        return
    for w in balance.warnings:
        st.warning(escape_markdown(w))
    table = pd.DataFrame([{"class": c.name, "labels": c.n_labels,
                           "predicted images": c.n_predicted} for c in balance.classes])
    if table["predicted images"].isna().all():
        table = table.drop(columns="predicted images")
    left, right = st.columns([1, 2])
    left.dataframe(table, hide_index=True, width="stretch")
    right.bar_chart(table.set_index("class")[["labels"]], height=240)
    st.caption("Counted on the labels training sees (not on evaluation images or excluded "
               "copies). Predicted sizes come from the latest run.")


def duplicates_section(project: Project, result: dict | None) -> None:
    st.subheader("Duplicates")
    if result is None:
        st.caption("Not checked yet.")
        return
    groups = result.get("groups", [])
    cal = result.get("calibration") or {}
    st.caption(f"{len(groups):,} groups: exact copies (same pixels) and near-duplicates (closer "
               f"than {result.get('threshold', 0):.3g} in feature space, a threshold calibrated on "
               "re-encoded, shifted and rescaled copies of this project's own images"
               + (f"; estimated recall {cal['estimated_recall']:.0%}" if "estimated_recall" in cal
                  else "") + f"). Found in {result.get('seconds', 0):.0f} s.")
    if cal.get("precision_guard"):
        st.info("In these images' descriptor, re-encoded or shifted copies are hardly closer "
                "than different images, so the threshold was tightened to keep the groups "
                f"right: about {1 - cal.get('estimated_recall', 0):.0%} of near-duplicates may be "
                "missed (exact copies are always found).")
    if not groups:
        return
    images = ImageCollection(project)
    n = images.n_images
    sealed, excluded = sealed_mask(images, n), excluded_mask(project.store, n)
    labels = current_labels(project.store, n)
    names = {c.id: c.name for c in list_classes(project.store)}
    open_groups = [g for g in groups if int((~excluded[[i for i in g["ids"] if i < n]]).sum()) > 1]
    if open_groups and st.button(f"Keep one of each ({len(open_groups):,} groups)",
                                 key="dup-keep-all", help="In every group, keep the labeled copy "
                                 "(else the first) and exclude the others from training"):
        drop = [i for g in open_groups for i in g["ids"] if i != _keeper(g["ids"], labels, sealed)]
        _exclude(project, drop, True, f"Excluded {len(drop):,} copies.")
    straddle = sum(1 for g in groups if straddles(g["ids"], sealed))
    if straddle:
        st.warning(f"{straddle} groups have copies on both sides of the evaluation split: a test "
                   "image whose copy is in training inflates test accuracy.")
    page = st.number_input("Page", 1, max(1, -(-len(groups) // GROUPS_SHOWN)), 1, key="dup-page")
    for g in groups[(page - 1) * GROUPS_SHOWN: page * GROUPS_SHOWN]:
        ids = [i for i in g["ids"] if i < n]
        left, right = st.columns([3, 2], vertical_alignment="center")
        scale = max(1, 48 // max(images.shape[:2]))
        left.image(contact_sheet(images.images()[ids[:12]], cols=12, scale=scale, pad=2),
                   caption=" · ".join(_caption(i, labels, names, sealed, excluded) for i in ids[:12]))
        kind = "exact copies" if g.get("exact") else "near-duplicates"
        right.markdown(f"**{len(ids)} {kind}**" + (" · across the evaluation split"
                                                   if straddles(ids, sealed) else ""))
        keep = _keeper(ids, labels, sealed)
        if int((~excluded[ids]).sum()) > 1 and right.button(
                f"Keep image {keep}, exclude the others", key=f"dup-keep-{ids[0]}"):
            _exclude(project, [i for i in ids if i != keep], True,
                     f"Kept image {keep}; excluded {len(ids) - 1}.")
        if excluded[ids].any() and right.button("Restore all", key=f"dup-restore-{ids[0]}"):
            _exclude(project, [i for i in ids if excluded[i]], False, "Restored.")


def _keeper(ids: list[int], labels: np.ndarray, sealed: np.ndarray) -> int:
    """The copy to keep: an evaluation image (it stays scored), else a labeled one, else the
    first."""
    for pick in (lambda i: sealed[i], lambda i: labels[i] >= 0):
        if chosen := [i for i in ids if pick(i)]:
            return chosen[0]
    return ids[0]


def _caption(i: int, labels, names, sealed, excluded) -> str:
    tags = [str(i)]
    if labels[i] >= 0:
        tags.append(names.get(int(labels[i]), "?"))
    if sealed[i]:
        tags.append("eval")
    if excluded[i]:
        tags.append("excluded")
    return " ".join(tags)


def _exclude(project: Project, ids: list[int], excluded: bool, message: str) -> None:
    try:
        set_excluded(project.store, ids, excluded, user=session.user())
    except (LabelError, StoreError) as err:
        st.error(escape_markdown(str(err)))
        return
    st.toast(message)
    st.rerun()


def outliers_section(project: Project, result: dict | None, flagged: int) -> None:
    st.subheader("Outliers")
    if result is None:
        st.caption("Not checked yet.")
        return
    ids = [int(i) for i in result.get("ids", [])][:OUTLIERS_SHOWN]
    st.caption(f"The images farthest from every neighbour, oddest first (the top {flagged:,} are "
               "flagged on the map). Often another kind of image, a broken file or a rare class "
               "worth a label.")
    if ids:
        images = ImageCollection(project)
        scale = max(1, 48 // max(images.shape[:2]))
        st.image(contact_sheet(images.images()[ids], cols=12, scale=scale, pad=2),
                 caption="Image ids, row by row: " + ", ".join(map(str, ids)))


def after_import(project: Project, n_images: int) -> None:
    """After an import: the warnings of the last quality check, or an offer to check the new
    images (the map job also starts the check when it has built the map)."""
    from ssl_core.jobs import records as jobs
    from ssl_core.jobs import worker

    report, keys = load_report(project), quality_keys(project)     # read once for both
    warnings_banner(project, "images", report, keys)
    if not n_images or "duplicates" not in report.stale_parts(keys):
        return
    if any(j.kind in ("quality", "map") for j in jobs.active_jobs(project.store)):
        st.caption("The new images are being checked for duplicates and outliers (Jobs page).")
    elif st.button("Check these images for duplicates and outliers", key="quality_after_import",
                   help="Runs in the background; the Quality page shows what it finds"):
        worker.launch_once(project, "quality", {"n_images": n_images})
        st.rerun()
