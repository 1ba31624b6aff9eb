"""Session state in one place: which project this browser session works on, and who the user is.

On the very first start there is no project: the built-in digits (1,797 images bundled with
scikit-learn) are imported into a project called 'digits' so the app opens on something
useful, offline. That import takes about a second, so it runs inline; every other import is a
background job (see pages/data.py)."""
from __future__ import annotations

import getpass

import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.project.folder import Project, list_projects

DEFAULT_PROJECT = "digits"


def _bootstrap() -> list[Project]:
    projects = list_projects()
    if not projects:
        with st.spinner("First start: importing the built-in digits dataset..."):
            project = Project.named(DEFAULT_PROJECT)
            if ImageCollection(project).n_images == 0:
                import_source(project, SourceSpec("digits"))
        projects = list_projects()
    return projects


def init() -> None:
    """Idempotent per rerun: defaults for every session key the pages use. Called by app.py."""
    st.session_state["_entered_via_app"] = True
    st.session_state.setdefault("user", getpass.getuser())
    st.session_state.setdefault("project_name", None)


def user() -> str:
    """Who is labeling (recorded with every label event)."""
    return st.session_state.get("user") or getpass.getuser()


def _ensure_app_entry() -> None:
    """A fresh server whose first visitor opens a page's URL (e.g. /map after a restart) runs
    that page alone, without app.py: Streamlit sees the pages/ folder and uses its legacy
    multipage mode until some run calls st.navigation (streamlit/runtime/pages_manager.py,
    `uses_pages_directory`). The page then has the narrow layout, raw file names in the
    sidebar and no project picker. So a page reached that way switches the legacy mode off and
    reruns once, which goes through app.py to the same page."""
    if not st.session_state.get("_entered_via_app"):
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
        st.rerun()


def current_project() -> Project:
    _ensure_app_entry()
    projects = {p.name: p for p in _bootstrap()}
    name = st.session_state.get("project_name")
    if name not in projects:
        name = DEFAULT_PROJECT if DEFAULT_PROJECT in projects else next(iter(projects))
        st.session_state["project_name"] = name
    return projects[name]


def sidebar(project: Project) -> None:
    names = [p.name for p in list_projects()]
    with st.sidebar:
        st.session_state["project_picker"] = project.name  # follow switches made by pages
        st.selectbox("Project", names, key="project_picker", on_change=_switch_project)
        store = ImageCollection(project)
        shape = store.shape
        st.caption(f"{store.n_images:,} images" + (f" · {shape[0]}×{shape[1]}×{shape[2]}"
                                                    if shape else ""))
        st.text_input("Your name (recorded with each label)", key="user")


def _switch_project() -> None:
    st.session_state["project_name"] = st.session_state["project_picker"]
