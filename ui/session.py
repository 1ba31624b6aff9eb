"""Session state in one place: which project this browser session works on, and who the user is.

Who labels: the name is asked once per browser session, in the sidebar, and kept in the page's
address (`?user=alice`) by binding the text box to the query parameter (`bind="query-params"`,
in the Streamlit this app pins). Why the address: the server cannot write a cookie (st.context.cookies
is read-only) and there is no localStorage API without a custom component, while a bound query
parameter survives a reload, a page switch and a bookmark with no JavaScript of ours. The
operating-system user is no default any more: on a server it is the server's account, the same
for every browser. Each browser session also gets a random id (kept in st.session_state, so a
new tab, or a reload, is a new session); labels are recorded as "<name> · session <id>"
(label_log.session_user), so Undo takes back this tab's own actions only, never another tab's,
even under the same name.

On the very first start there is no project: the built-in digits (1,797 images bundled with
scikit-learn) are imported into a project called 'digits' so the app opens on something
useful, offline. That import takes about a second, so it runs inline; every other import is a
background job (see pages/data.py)."""
from __future__ import annotations

import uuid

import streamlit as st

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.labeling.label_log import session_user
from ssl_core.project.folder import Project, list_projects
from ssl_core.threads import fix_process_threads

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
    fix_process_threads()   # once per server process: sessions compute in threads side by side
    st.session_state.setdefault("session_id", uuid.uuid4().hex[:8])
    st.session_state.setdefault("project_name", None)
    # "user" is the sidebar's name box, bound to ?user=: not set here (a widget bound to the
    # address takes its first value from there)


def name() -> str:
    """The name typed in the sidebar ('' until given)."""
    return " ".join(str(st.session_state.get("user") or "").split())


def user() -> str:
    """Who is labeling, as recorded with every label action and matched by Undo: the name plus
    this browser session ("ann · session 3f2a9c1e"; "guest · ..." until a name is given)."""
    sid = st.session_state.setdefault("session_id", uuid.uuid4().hex[:8])
    return session_user(name(), sid)


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
        st.text_input("Your name (recorded with each label)", key="user", bind="query-params",
                      placeholder="who is labeling?", max_chars=64,
                      help="Kept in this page's address, so a reload remembers it. Undo takes "
                           "back this tab's own labels only.")
        if not name():
            st.caption("Type your name to have your labels recorded under it (until then: guest).")


def _switch_project() -> None:
    st.session_state["project_name"] = st.session_state["project_picker"]
