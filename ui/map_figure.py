"""The latent map as one Plotly WebGL scatter.

One `Scattergl` trace holds every point, with the image id in `customdata`: Streamlit merges
point indices across traces (notes/streamlit.md), so several traces would make selections
ambiguous. Colours are per-point category codes on a discrete colour scale (small ints, not
70,000 colour strings). The legend is made of empty traces, one per category: it shows names,
colours and counts for any number of classes, and holds no points that could be selected.
Names are HTML-escaped: Plotly renders a subset of HTML in trace names.
"""
from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

UNLABELED = "#c8c8c8"


@dataclass
class Colouring:
    """What the points are coloured by: categorical codes or a continuous value."""
    codes: np.ndarray                  # (N,) int: index into names/colors, -1 = 'none'
    names: list[str]                   # category names
    colors: list[str]                  # '#rrggbb' per category
    none_name: str = "unlabeled"
    continuous: np.ndarray | None = None   # (N,) float in [0, 1] (e.g. confidence) instead
    continuous_name: str = ""


def _discrete_scale(colors: list[str]) -> list[list]:
    """Plotly colorscale mapping integer code k (0 = 'none', 1.. = categories) to its colour."""
    palette = [UNLABELED, *colors]
    n = len(palette)
    scale = []
    for k, c in enumerate(palette):
        scale += [[k / n, c], [(k + 1) / n, c]]
    return scale


def map_figure(xy: np.ndarray, ids: np.ndarray, colouring: Colouring, height: int = 640,
               dragmode: str = "lasso") -> go.Figure:
    """xy (N, 2) float32 layout, ids (N,) int image ids -> the figure."""
    n = len(xy)
    size = 6 if n < 2_000 else 4 if n < 20_000 else 2.5
    if colouring.continuous is not None:
        marker = dict(color=colouring.continuous.astype(np.float32), colorscale="Viridis", cmin=0, cmax=1,
                      size=size, colorbar=dict(title=colouring.continuous_name, thickness=12))
    else:
        k = len(colouring.colors) + 1
        marker = dict(color=(colouring.codes + 1).astype(np.int16), colorscale=_discrete_scale(colouring.colors),
                      cmin=-0.5, cmax=k - 0.5, size=size, showscale=False)
    fig = go.Figure(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers", marker=marker, customdata=ids,
        hovertemplate="image %{customdata}<extra></extra>", showlegend=False, name="images"))
    if colouring.continuous is None:
        counts = np.bincount(colouring.codes + 1, minlength=len(colouring.names) + 1)
        entries = [(colouring.none_name, UNLABELED, counts[0])] + \
            [(name, col, counts[i + 1]) for i, (name, col) in enumerate(zip(colouring.names, colouring.colors))]
        for name, col, count in entries:
            if count:
                fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers",
                                           name=f"{html.escape(name)} ({count:,})",  # user text
                                           marker=dict(color=col, size=9), hoverinfo="skip"))
    fig.update_layout(height=height, dragmode=dragmode, margin=dict(l=0, r=0, t=24, b=0),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      legend=dict(itemsizing="constant", font=dict(size=11), orientation="h",
                                  x=0, y=1.0, xanchor="left", yanchor="bottom"),  # above: the
                                  # map keeps the column's whole width
                      uirevision="latent-map", plot_bgcolor="white")
    return fig


def cached_map_figure(xy: np.ndarray, ids: np.ndarray, colouring: Colouring) -> go.Figure:
    """map_figure, built once per (layout, colouring): validating 70,000 points into a Figure
    takes ~0.45 s, so a rerun that changes nothing on the map (a selection, a page of
    thumbnails) reuses the figure. Keyed by a digest of the arrays; shared by sessions (the
    figure is only read)."""
    h = hashlib.blake2b(digest_size=16)
    for array in (xy, ids, colouring.codes, colouring.continuous):
        if array is not None:
            h.update(np.ascontiguousarray(array).tobytes())
    h.update(repr((colouring.names, colouring.colors, colouring.none_name,
                   colouring.continuous_name)).encode())
    return _figure_for(h.hexdigest(), xy, ids, colouring)


@st.cache_resource(max_entries=8, show_spinner=False)
def _figure_for(key: str, _xy: np.ndarray, _ids: np.ndarray, _colouring: Colouring) -> go.Figure:
    return map_figure(_xy, _ids, _colouring)
