"""The latent map as one Plotly WebGL scatter.

One `Scattergl` trace holds every point, with the image id in `customdata`: Streamlit merges
point indices across traces (notes/streamlit.md), so several traces would make selections
ambiguous. Each point's colour goes out as an RGBA row of an (N, 4) uint8 array, which Plotly
receives as one base64 typed array and uses without conversion. A colour scale over category
codes (what this module sent before) made Plotly turn every code into a colour string and
parse it back: ~1 s of the browser's time per repaint at 70,000 points in Chromium's software
GL, against ~0.1 s for the rows. Continuous values (confidence) go through a 256-entry Viridis
table here for the same reason; an empty trace carries the colour bar.

The legend is made of empty traces, one per category: it shows names, colours and counts for
any number of classes, and holds no points that could be selected. Names are HTML-escaped:
Plotly renders a subset of HTML in trace names.
"""
from __future__ import annotations

import dataclasses
import functools
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

    def take(self, order: np.ndarray) -> "Colouring":
        """The same colouring with its per-point arrays in `order` (N,)."""
        return dataclasses.replace(
            self, codes=np.asarray(self.codes)[order],
            continuous=None if self.continuous is None else np.asarray(self.continuous)[order])


def draw_order(colouring: Colouring) -> np.ndarray:
    """(N,) the order to draw the points in: those without a category ('unlabeled') first, so
    that the few labeled or suggested points are drawn over the grey mass instead of under
    it (100 labels among 70,000 points were invisible). Stable: otherwise the layout's order."""
    if colouring.continuous is not None:
        return np.arange(len(colouring.continuous))
    return np.argsort(np.asarray(colouring.codes) >= 0, kind="stable")


def hex_to_rgba(colors: list[str]) -> np.ndarray:
    """'#rrggbb' strings -> (K, 4) uint8 RGBA rows, alpha 255."""
    rows = [[int(c[i:i + 2], 16) for i in (1, 3, 5)] + [255] for c in colors]
    return np.array(rows, np.uint8).reshape(-1, 4)


@functools.cache
def _viridis_table() -> np.ndarray:
    """(256, 4) uint8: Plotly's Viridis sampled at 256 evenly spaced values in [0, 1]."""
    from plotly.colors import sample_colorscale, unlabel_rgb

    rgb = [unlabel_rgb(c) for c in sample_colorscale("Viridis", np.linspace(0, 1, 256).tolist())]
    return np.hstack([np.round(rgb), np.full((256, 1), 255)]).astype(np.uint8)


def point_colors(colouring: Colouring) -> np.ndarray:
    """(N, 4) uint8 RGBA per point: its category's colour (UNLABELED for code -1), or the
    continuous value's Viridis colour (NaN counts as 0)."""
    if colouring.continuous is not None:
        v = np.nan_to_num(np.asarray(colouring.continuous, np.float64), nan=0.0)   # (N,)
        return _viridis_table()[np.clip(np.round(v * 255), 0, 255).astype(np.int64)]
    palette = hex_to_rgba([UNLABELED, *colouring.colors])                       # (K + 1, 4)
    codes = np.asarray(colouring.codes, np.int64)
    return palette[np.where((codes >= 0) & (codes < len(colouring.colors)), codes + 1, 0)]


def point_sizes(colouring: Colouring, n: int) -> float | np.ndarray:
    """Marker size: smaller as the map fills up. When under 10 % of the points have a category
    (a few labels, the suggestions) those are drawn bigger, (N,) float32, so they stand out.
    The markers need line width 0: Streamlit's theme outlines them in white, which at 2.5 px
    washed the grey mass out to a faint haze once the size became an array."""
    size = 6.0 if n < 2_000 else 4.0 if n < 20_000 else 2.5
    if colouring.continuous is not None:
        return size
    coded = np.asarray(colouring.codes) >= 0                                   # (N,)
    if not 0 < coded.sum() < 0.1 * n:
        return size
    return np.where(coded, max(7.0, 2.0 * size), size).astype(np.float32)


def map_figure(xy: np.ndarray, ids: np.ndarray, colouring: Colouring, height: int = 640,
               dragmode: str = "lasso") -> go.Figure:
    """xy (N, 2) float32 layout, ids (N,) int image ids -> the figure."""
    fig = go.Figure(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers", customdata=np.asarray(ids, np.int32),
        marker=dict(color=point_colors(colouring), size=point_sizes(colouring, len(xy)),
                    line=dict(width=0)),
        hovertemplate="image %{customdata}<extra></extra>", showlegend=False, name="images"))
    if colouring.continuous is not None:       # the colour bar alone: no points, no legend
        fig.add_trace(go.Scattergl(
            x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
            marker=dict(color=[0.0, 1.0], colorscale="Viridis", cmin=0, cmax=1, showscale=True,
                        colorbar=dict(title=colouring.continuous_name, thickness=12))))
    else:
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
                      # Below the map: it keeps the column's whole width, and the toolbar
                      # (top right) never covers an entry, however many classes there are.
                      legend=dict(itemsizing="constant", font=dict(size=11), orientation="h",
                                  x=0, y=0, xanchor="left", yanchor="top"),
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
