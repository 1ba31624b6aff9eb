"""Plotly figures for the Train page: live curves, the learning curve, a confusion matrix.

Figure builders only (frames in, figures out), so they are testable without a browser."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

_LAYOUT = dict(height=280, margin=dict(l=10, r=10, t=30, b=10),
               legend=dict(orientation="h", yanchor="top", y=-0.22))  # below the x-axis title


def curves_figure(curves: pd.DataFrame, names: list[str], title: str, y_title: str) -> go.Figure:
    """Lines of the chosen metric names against seconds (step when no time was logged)."""
    fig = go.Figure()
    for name in names:
        part = curves[curves["name"] == name]
        x = part["seconds"] if part["seconds"].notna().all() else part["step"]
        fig.add_trace(go.Scatter(x=x, y=part["value"], mode="lines+markers", name=name,
                                 marker=dict(size=4)))
    x_title = "seconds" if curves["seconds"].notna().all() else "step"
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, **_LAYOUT)
    if y_title == "accuracy":
        fig.update_yaxes(range=[0, 1.02])                     # a fixed scale, even for one point
    return fig


def learning_curve_figure(curve: pd.DataFrame) -> go.Figure:
    """Accuracy % against number of labels, a line per method and measure (test dashed)."""
    fig = go.Figure()
    for (method, measure), part in curve.groupby(["method", "measure"], sort=True):
        part = part.groupby("labels", as_index=False)["accuracy %"].max()  # best run per count
        fig.add_trace(go.Scatter(
            x=part["labels"], y=part["accuracy %"], mode="lines+markers",
            name=f"{method} · {measure}",
            line=dict(dash="dash" if measure.startswith("test") else "solid")))
    fig.update_layout(title="Accuracy against number of labels", xaxis_title="labels",
                      yaxis_title="accuracy %", **{**_LAYOUT, "height": 340})
    counts = sorted({int(v) for v in curve["labels"]})
    if counts:
        _label_axis(fig, counts)
        top = float(curve["accuracy %"].max())
        fig.update_yaxes(range=[min(float(curve["accuracy %"].min()) - 1, 99), min(100.5, top + 1)])
    return fig


def _label_axis(fig: go.Figure, counts: list[int]) -> None:
    """Label counts are whole numbers: ticks at the counts that have runs (up to 10 of them),
    and one count alone sits mid-axis instead of between fractional ticks (99.5, 100.5)."""
    if len(counts) <= 10:
        fig.update_xaxes(tickvals=counts, ticktext=[f"{c:,}" for c in counts])
    else:
        fig.update_xaxes(tickformat=",d")
    if len(counts) == 1:
        fig.update_xaxes(range=[0, 2 * counts[0]])


def confusion_figure(report: dict) -> go.Figure:
    """Heatmap of a run's test confusion matrix (rows: ground truth, columns: predicted)."""
    names = [html.escape(n) for n in report["classes"]]
    matrix = report["confusion"]
    columns = names + ["other class"]
    if not any(row[-1] for row in matrix):                       # no prediction fell outside
        matrix, columns = [row[:-1] for row in matrix], names
    fig = go.Figure(go.Heatmap(z=matrix, x=columns, y=names, colorscale="Blues",
                               text=matrix, texttemplate="%{text}", showscale=False,
                               hovertemplate="true %{y} · predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(title="Confusion on the sealed evaluation images", xaxis_title="predicted",
                      yaxis_title="true", yaxis_autorange="reversed",
                      **{**_LAYOUT, "height": 120 + 28 * len(names)})
    return fig
