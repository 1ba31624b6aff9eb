"""Latentlab: label many images with few labels. Entry point: `streamlit run app.py`.

This file only sets up the page, the shared sidebar and the navigation; each page in pages/
describes its own UI and calls into ssl_core for everything it computes."""
import streamlit as st

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
    st.Page("pages/samples.py", title="Samples", icon=":material/auto_awesome:"),
    st.Page("pages/jobs.py", title="Jobs", icon=":material/pending_actions:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
])
session.sidebar(project)
navigation.run()
