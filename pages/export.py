"""Export page: take the labels out of Latentlab."""
import streamlit as st

from ssl_core.export import labels_frame
from ui import session

project = session.current_project()
st.title("Export")
frame = labels_frame(project)
st.subheader("Labels")
if frame.empty:
    st.info("No labels yet: once you label images they can be downloaded here as CSV.")
else:
    st.write(f"{len(frame):,} labeled images in {frame['label'].nunique()} classes.")
    st.dataframe(frame.head(200), hide_index=True, width="stretch")
st.download_button("Download labels CSV", frame.to_csv(index=False).encode("utf-8"),
                   file_name=f"{project.name}-labels.csv", mime="text/csv",
                   disabled=frame.empty, key="export_labels_csv")
st.caption("Command line: `python -m ssl_core export-labels --project "
           f"{project.root} --out labels.csv`")
