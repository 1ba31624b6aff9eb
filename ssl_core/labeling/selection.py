"""From a selection on the latent map to image ids, and what the selection contains.

The map is ONE `Scattergl` trace whose `customdata` holds each point's image id; Streamlit's
`st.plotly_chart(..., on_select="rerun")` hands back `event.selection`:

    {"points": [{"curve_number": 0, "point_index": 5, "x": .., "y": .., "customdata": [id]}, ...],
     "point_indices": [...],
     "box":   [{"xref": "x", "yref": "y", "x": [x0, x1], "y": [y0, y1]}],
     "lasso": [{"xref": "x", "yref": "y", "x": [...], "y": [...]}]}

Why the shapes are tested here and not taken from `points`: a lasso around 30,000 points ships
30,000 dicts through the browser, and the front end may drop or truncate them. The drawn box or
lasso polygon is a handful of numbers, so we test the layout against it server-side (even-odd
rule, vectorised in numpy) and take the union with whatever `points` did arrive (clicks).
`point_indices` is ignored: the front end merges the indices of all traces into one list, so
they are ambiguous as soon as a figure has a second trace (Streamlit #8914).

Nothing here imports Streamlit: callers pass the selection as a plain mapping.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

UNPREDICTED = "unpredicted"
_BATCH = 1 << 21  # (edge, point) pairs tested at once in points_in_polygon: ~50 MB of temporaries


def selected_ids(selection: Mapping | None, xy: np.ndarray, ids: np.ndarray | None = None
                 ) -> np.ndarray:
    """Image ids picked by a plotly selection: clicked/listed points plus everything inside
    the drawn boxes and lassos. Sorted, unique, (M,) int64.

    `xy` (N, 2) are the layout coordinates exactly as plotted, and `ids` (N,) the image id of
    each row (None: row i is image i). They must be the arrays the figure was built from, or
    the server-side shape test would select different images than the user saw."""
    xy = np.asarray(xy)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must have shape (N, 2), got {xy.shape}")
    row_ids = np.arange(len(xy), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    if row_ids.shape != (len(xy),):
        raise ValueError(f"ids must have shape ({len(xy)},), got {row_ids.shape}")
    if not selection:
        return np.empty(0, np.int64)

    picked = [_point_ids(selection.get("points") or (), row_ids)]
    inside = np.zeros(len(xy), dtype=bool)  # (N,)
    for box in selection.get("box") or ():
        inside |= _in_box(box, xy)
    for lasso in selection.get("lasso") or ():
        inside |= points_in_polygon(xy, _coords(lasso, "x"), _coords(lasso, "y"))
    picked.append(row_ids[inside])
    return np.unique(np.concatenate(picked)).astype(np.int64)


def _point_ids(points: Sequence, row_ids: np.ndarray) -> np.ndarray:
    """Ids of the listed points: customdata (a list holding the id, or the id itself), else
    the point's index into the layout when it belongs to the map trace (curve 0). (M,) int64"""
    out: list[int] = []
    for point in points:
        if not isinstance(point, Mapping):
            continue
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple, np.ndarray)):
            custom = np.ravel(custom)[0] if len(np.ravel(custom)) else None
        value = _as_int(custom)
        if value is None and point.get("curve_number", 0) == 0:
            index = _as_int(point.get("point_index"))
            if index is not None and 0 <= index < len(row_ids):
                value = int(row_ids[index])
        if value is not None:
            out.append(value)
    return np.asarray(out, dtype=np.int64)


def _as_int(value) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _coords(shape: Mapping, axis: str) -> np.ndarray:
    """One axis of a drawn shape's vertices, (V,) float64; empty when missing or malformed."""
    try:
        values = np.asarray(shape.get(axis) or (), dtype=np.float64).ravel()
    except (TypeError, ValueError, AttributeError):
        return np.empty(0)
    return values


def _in_box(box: Mapping, xy: np.ndarray) -> np.ndarray:
    """Points inside an axis-aligned box given by two corners in any order. (N,) bool"""
    bx, by = _coords(box, "x"), _coords(box, "y")
    if len(bx) < 2 or len(by) < 2 or not (np.isfinite(bx).all() and np.isfinite(by).all()):
        return np.zeros(len(xy), dtype=bool)
    x, y = xy[:, 0], xy[:, 1]
    return (x >= bx.min()) & (x <= bx.max()) & (y >= by.min()) & (y <= by.max())


def points_in_polygon(xy: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Even-odd test of every point against one polygon (closed implicitly). (N,) bool

    A horizontal ray from a point crosses edge (i, j) when yi <= y < yj (or the reverse) and the
    crossing lies to the right of the point. Points are sorted by y once, so each edge only
    touches the contiguous slice of points in its y-band (two binary searches); the (edge, point)
    pairs of many edges are then tested in one vectorised batch. Only points inside the
    polygon's bounding box are considered at all: a freehand lasso with thousands of vertices
    over 70,000 points takes milliseconds. Fewer than 3 distinct vertices enclose nothing."""
    n = len(xy)
    inside = np.zeros(n, dtype=bool)
    px, py = np.asarray(px, np.float64).ravel(), np.asarray(py, np.float64).ravel()
    if len(px) != len(py):
        return inside
    keep = np.isfinite(px) & np.isfinite(py)
    px, py = px[keep], py[keep]
    if len(np.unique(np.stack([px, py], axis=1), axis=0)) < 3:
        return inside
    x = xy[:, 0].astype(np.float64)
    y = xy[:, 1].astype(np.float64)
    cand = np.flatnonzero((x >= px.min()) & (x <= px.max()) & (y >= py.min()) & (y <= py.max()))
    if len(cand) == 0:
        return inside
    order = cand[np.argsort(y[cand], kind="stable")]
    xs, ys = x[order], y[order]                   # (C,) candidates sorted by y
    x0, y0 = px, py
    x1, y1 = np.roll(px, -1), np.roll(py, -1)     # edge k runs from vertex k to vertex k+1
    starts = np.searchsorted(ys, np.minimum(y0, y1), side="left")
    stops = np.searchsorted(ys, np.maximum(y0, y1), side="left")  # half-open y-band
    crossings = np.zeros(len(order), dtype=np.int64)  # (C,) edges crossed right of each point
    edges = np.flatnonzero(stops > starts)
    sizes = stops[edges] - starts[edges]
    # Batches of edges whose bands hold at most _BATCH (edge, point) pairs, all in one go.
    batch_of = np.cumsum(sizes) // _BATCH
    for batch in np.unique(batch_of):
        e, size = edges[batch_of == batch], sizes[batch_of == batch]
        edge = np.repeat(e, size)                                   # (P,) edge of each pair
        first = np.repeat(np.cumsum(size) - size, size)
        point = np.repeat(starts[e], size) + np.arange(len(edge)) - first  # (P,) into xs/ys
        t = (ys[point] - y0[edge]) / (y1[edge] - y0[edge])
        hit = xs[point] < x0[edge] + t * (x1[edge] - x0[edge])
        crossings += np.bincount(point[hit], minlength=len(order))
    inside[order] = crossings % 2 == 1
    return inside


def describe_selection(ids: np.ndarray, predictions: np.ndarray | None,
                       class_names: Mapping[int, str]) -> list[tuple[str, int]]:
    """The predicted-class mix of a selection: (class name, count), largest first.

    `predictions` (N,) holds the predicted class id per image id, -1 where there is none; None
    when no model has run. Images without a prediction (or beyond the array) are counted as
    'unpredicted'; a predicted id missing from `class_names` (e.g. a deleted class) is shown
    as 'class <id>' rather than silently merged with another bucket."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if len(ids) == 0:
        return []
    if predictions is None:
        return [(UNPREDICTED, int(len(ids)))]
    predictions = np.asarray(predictions).ravel()
    known = (ids >= 0) & (ids < len(predictions))
    pred = np.full(len(ids), -1, dtype=np.int64)   # (M,)
    pred[known] = predictions[ids[known]]
    counts: dict[str, int] = {}
    values, n = np.unique(pred, return_counts=True)
    for value, count in zip(values.tolist(), n.tolist()):
        name = UNPREDICTED if value < 0 else class_names.get(value, f"class {value}")
        counts[name] = counts.get(name, 0) + count
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def majority_class(ids: np.ndarray, predicted: np.ndarray | None,
                   class_ids: Sequence[int]) -> int | None:
    """The class id the model predicts for most of the selected images, among `class_ids` (the
    live classes); None when there are no predictions or none of them is a live class. Ties go
    to the smaller class id. `predicted` (N,) holds a class id per image id."""
    if predicted is None:
        return None
    ids = np.asarray(ids, dtype=np.int64).ravel()
    pred = np.asarray(predicted)[ids[(ids >= 0) & (ids < len(predicted))]]       # (S,)
    pred = pred[np.isin(pred, np.asarray(list(class_ids), dtype=np.int64))]
    return int(np.bincount(pred).argmax()) if len(pred) else None
