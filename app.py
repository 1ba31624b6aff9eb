"""Latentlab: label many images with few labels. Entry point: `streamlit run app.py`.

This file only sets up the page, the shared sidebar and the navigation; each page in pages/
describes its own UI and calls into ssl_core for everything it computes."""
import streamlit as st

from ssl_core.project.errors import ProjectError
from ui import session

st.set_page_config(page_title="Latentlab", page_icon="assets/icon.png", layout="wide")
session.init()
project = session.current_project()
navigation = st.navigation([
    st.Page("pages/data.py", title="Images", icon=":material/photo_library:", default=True),
    st.Page("pages/map.py", title="Map", icon=":material/scatter_plot:"),
    st.Page("pages/queue.py", title="Label queue", icon=":material/checklist:"),
    st.Page("pages/classes.py", title="Classes", icon=":material/label:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/quality.py", title="Quality", icon=":material/rule:"),
    st.Page("pages/samples.py", title="Samples", icon=":material/auto_awesome:"),
    st.Page("pages/jobs.py", title="Jobs", icon=":material/pending_actions:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
])
try:
    session.sidebar(project)
    navigation.run()
except ProjectError as err:   # a read-only or full project folder, a busy database: say so
    st.error(f"Project storage: {err}")
