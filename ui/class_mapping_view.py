"""Train page: which of your classes each ground-truth class is scored as, when names differ.

Test accuracy compares class names (ssl_core/results/report.py), so a user who called the
digits "zero", "one", … sees "n/a". When the project has ground truth and a ground-truth class
has no class of yours by its name and no mapping was confirmed yet, this section opens with one
selectbox per ground-truth class, pre-filled by majority overlap with your labels (else the
latest predictions). "Use this mapping" checks and stores it (used only to score, never to
train); the next run shows test accuracy, or "Re-score" scores the latest run's saved
predictions again at once. Once confirmed it stays, folded, for edits.
"""
from __future__ import annotations

import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.labeling.class_mapping import META_KEY, load_mapping
from ssl_core.labeling.classes import list_classes
from ssl_core.project.folder import Project
from ssl_core.results.rescore import confirm_mapping, rescore_latest, suggestion, unmapped
from ssl_core.results.runs import Run
from ui.text import escape_markdown

NOT_SCORED = "— not scored —"
COLUMNS = 4
_SUGGESTED = "class_map_suggested"     # session cache: (project folder, run id) -> suggestion
_NOTICE = "class_map_notice"           # what to say after the rerun a button causes


def show(project: Project, latest: Run | None) -> None:
    """The mapping section (nothing when there is no ground truth, or no mapping was ever
    confirmed and every class of yours is named like a ground-truth class, or every
    ground-truth class has a class of yours by its name)."""
    store = project.store
    gt_names = ImageCollection(project).ground_truth_classes()
    names = [c.name for c in list_classes(store)]
    if not gt_names or not names:
        return
    confirmed = store.get_meta(META_KEY) is not None
    mapping = load_mapping(store)
    missing = unmapped(gt_names, names, mapping)
    # a class of yours that no ground-truth class is named for: only then can names differ
    # (two classes "circle", "cross" of a dataset with a third, "square", need no mapping)
    spare = [p for p in names if p not in gt_names and p not in mapping.values()]
    if not (missing and spare) and not confirmed:
        return
    needed = bool(missing) and bool(spare) and not confirmed
    with st.expander("Class names for test accuracy", expanded=needed):
        if needed:
            st.warning(f"{len(missing)} of the dataset's {len(gt_names)} ground-truth classes "
                       "have no class of yours by the same name, so they cannot be scored. Say "
                       "which of your classes each one is (suggested from your labels, else the "
                       "latest predictions); this is used only to score, never to train.")
        else:
            st.caption("Which of your classes each ground-truth class is scored as (used only "
                       "to measure test accuracy, never to train). A class named like one of "
                       "yours is always compared with it.")
        prefill = mapping if confirmed else _suggested(project, latest)
        options = [NOT_SCORED, *names]
        cols = st.columns(COLUMNS)
        chosen = {}
        for i, gt in enumerate(gt_names):
            default = prefill.get(gt) or (gt if gt in names else NOT_SCORED)
            chosen[gt] = cols[i % COLUMNS].selectbox(
                escape_markdown(gt), options, key=f"class_map_{i}",
                index=options.index(default) if default in options else 0)
        if st.button("Use this mapping", key="class_map_save", type="primary"):
            try:
                confirm_mapping(project, {g: "" if v == NOT_SCORED else v
                                          for g, v in chosen.items()})
            except ValueError as err:
                st.error(escape_markdown(str(err)))
            else:
                st.session_state[_NOTICE] = (
                    "Mapping saved. The next run shows test accuracy on the mapped classes"
                    + (" — or re-score the latest run now." if latest is not None else "."))
                st.rerun()
    _after_confirmation(project, latest, gt_names, names, mapping if confirmed else None)


def _after_confirmation(project: Project, latest: Run | None, gt_names: list[str],
                        names: list[str], mapping: dict[str, str] | None) -> None:
    """The notice a button left, and "Re-score" while the latest run was scored otherwise."""
    if notice := st.session_state.pop(_NOTICE, None):
        st.success(notice)
    if mapping is None or latest is None:
        return
    expected = {g: mapping.get(g, g) for g in gt_names if mapping.get(g, g) in names}
    scored_as = (latest.summary.get("test_report") or {}).get("mapping") or {}
    if scored_as == expected:
        return
    if st.button(f"Re-score the latest run ({latest.id}) with this mapping",
                 key="class_map_rescore",
                 help="Scores its saved predictions again on the sealed evaluation images; "
                      "no retraining"):
        try:
            run_id, summary = rescore_latest(project)
        except ValueError as err:
            st.error(escape_markdown(str(err)))
        else:
            test = summary.get("test")
            st.session_state[_NOTICE] = (f"Run {run_id} re-scored: test accuracy "
                                         + (f"{100 * test['value']:.1f}%" if test else "n/a")
                                         + ".")
            st.rerun()


def _suggested(project: Project, latest: Run | None) -> dict[str, str]:
    """The suggested mapping, computed once per project and latest run in this session."""
    key = (str(project.root), latest.id if latest is not None else None)
    cached = st.session_state.get(_SUGGESTED)
    if not cached or cached[0] != key:
        cached = (key, suggestion(project))
        st.session_state[_SUGGESTED] = cached
    return cached[1]
