"""Streamlit glue shared by the pages: session state, the sidebar, job progress widgets.
Everything that computes lives in ssl_core; this package only arranges widgets."""
