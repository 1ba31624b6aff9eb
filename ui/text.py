"""User text (class names) inside Streamlit markdown: button labels, st.markdown, captions."""
from __future__ import annotations

import re

_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&=\"'^])")


def escape_markdown(text: str) -> str:
    """`text` shown literally where Streamlit renders markdown: every markdown character is
    backslash-escaped (no bold, links, HTML, LaTeX, lists or headings), and a zero-width space
    follows each colon, so ':red[x]' stays text and ':material/home:' is no icon."""
    return _PUNCT.sub(r"\\\1", str(text)).replace(":", ":\u200b")
