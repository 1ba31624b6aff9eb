"""Selections on the latent map -> image ids; the predicted-class mix of a selection."""
import numpy as np
import pytest

from ssl_core.labeling.selection import (
    describe_selection,
    majority_class,
    points_in_polygon,
    selected_ids,
)


def grid(n: int = 10) -> np.ndarray:
    """n*n points on the integer grid; row i is (i % n, i // n). (n*n, 2) float32"""
    k = np.arange(n * n)
    return np.stack([k % n, k // n], axis=1).astype(np.float32)


def reference_inside(xy: np.ndarray, px, py) -> np.ndarray:
    """Plain even-odd ray casting, one point at a time: the slow obvious version."""
    out = np.zeros(len(xy), dtype=bool)
    n = len(px)
    for p, (x, y) in enumerate(xy.astype(np.float64)):
        inside = False
        for i in range(n):
            xi, yi, xj, yj = px[i], py[i], px[(i + 1) % n], py[(i + 1) % n]
            if (yi > y) != (yj > y) and x < xi + (y - yi) * (xj - xi) / (yj - yi):
                inside = not inside
        out[p] = inside
    return out


def test_empty_and_missing_selections_select_nothing():
    xy = grid()
    for selection in (None, {}, {"points": [], "box": [], "lasso": []}, {"points": None},
                      {"selection": {"points": []}}):
        ids = selected_ids(selection, xy)
        assert ids.dtype == np.int64 and ids.shape == (0,)


def test_points_use_customdata_as_list_or_scalar_and_fall_back_to_point_index():
    xy = grid()
    ids = np.arange(100, 200)  # image id of row i is 100 + i
    selection = {"points": [
        {"curve_number": 0, "point_index": 1, "customdata": [157]},
        {"curve_number": 0, "point_index": 2, "customdata": 142},
        {"curve_number": 0, "point_index": 7},                      # no customdata: row 7
        {"curve_number": 0, "point_index": 3, "customdata": [157]},  # duplicate id
        {"curve_number": 1, "point_index": 9},                      # another trace: not ours
        {"curve_number": 0, "point_index": 5000},                   # out of range: ignored
    ], "point_indices": [1, 2, 7, 3, 9]}
    assert selected_ids(selection, xy, ids).tolist() == [107, 142, 157]
    # without ids, row i is image i
    assert selected_ids({"points": [{"point_index": 4}]}, xy).tolist() == [4]


def test_box_selects_the_points_inside_in_either_corner_order():
    xy = grid()
    box = {"xref": "x", "yref": "y", "x": [2.5, 4.5], "y": [6.5, 5.5]}  # y given high->low
    expected = sorted(x + 10 * y for x in (3, 4) for y in (6,))
    assert selected_ids({"box": [box]}, xy).tolist() == expected
    flipped = {"x": [4.5, 2.5], "y": [5.5, 6.5]}
    assert selected_ids({"box": [flipped]}, xy).tolist() == expected
    # ids map rows to image ids
    ids = np.arange(100)[::-1].copy()
    assert selected_ids({"box": [box]}, xy, ids).tolist() == sorted(99 - e for e in expected)


def test_lasso_triangle_and_concave_polygon_match_the_reference():
    xy = grid()
    triangle = {"x": [0.5, 8.5, 0.5], "y": [0.5, 0.5, 8.5]}
    got = selected_ids({"lasso": [triangle]}, xy)
    want = np.flatnonzero((xy[:, 0] >= 1) & (xy[:, 1] >= 1) & (xy[:, 0] + xy[:, 1] <= 8))
    assert got.tolist() == want.tolist()
    # A "U": the notch (x in 3..6, y >= 3) is outside although it lies in the bounding box.
    ux = [0.5, 8.5, 8.5, 6.5, 6.5, 2.5, 2.5, 0.5]
    uy = [0.5, 0.5, 8.5, 8.5, 2.5, 2.5, 8.5, 8.5]
    got = selected_ids({"lasso": [{"x": ux, "y": uy}]}, xy)
    assert got.tolist() == np.flatnonzero(reference_inside(xy, ux, uy)).tolist()
    notch = 4 + 10 * 5
    assert notch not in got and (1 + 10 * 5) in got and (7 + 10 * 5) in got
    assert len(got) == 8 * 2 + 2 * 6 * 2  # bottom band 8x2, two arms 2 wide x 6 high


def test_degenerate_lassos_select_nothing():
    xy = grid()
    for lasso in ({"x": [1, 5], "y": [1, 5]}, {"x": [1, 5, 1], "y": [1, 5, 1]},
                  {"x": [1, 2, 3], "y": [1, 2]}, {"x": [], "y": []}, {"xref": "x"},
                  {"x": [1.0, np.nan, 3.0], "y": [1.0, 2.0, np.nan]}):
        assert selected_ids({"lasso": [lasso]}, xy).tolist() == [], lasso


def test_mixed_selection_is_the_union():
    xy = grid()
    selection = {"points": [{"curve_number": 0, "point_index": 99, "customdata": [99]}],
                 "box": [{"x": [-0.5, 1.5], "y": [-0.5, 0.5]}],          # rows 0, 1
                 "lasso": [{"x": [4.5, 5.5, 5.5, 4.5], "y": [4.5, 4.5, 5.5, 5.5]}]}  # row 55
    assert selected_ids(selection, xy).tolist() == [0, 1, 55, 99]


def test_large_layout_freehand_lasso_matches_the_reference():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(70_000, 2)).astype(np.float32)
    # A star-shaped freehand lasso with 600 vertices (concave everywhere between the tips).
    angle = np.linspace(0, 2 * np.pi, 600, endpoint=False)
    radius = 1.2 + 0.6 * np.sin(7 * angle)
    px, py = radius * np.cos(angle), radius * np.sin(angle)
    got = selected_ids({"lasso": [{"x": px.tolist(), "y": py.tolist()}]}, xy)
    # Reference on the exact polar description of the same star, checked away from its edges.
    r, a = np.hypot(xy[:, 0], xy[:, 1]), np.arctan2(xy[:, 1], xy[:, 0]) % (2 * np.pi)
    boundary = 1.2 + 0.6 * np.sin(7 * a)
    clear = np.abs(r - boundary) > 0.02  # a 600-gon is within ~0.01 of the curve
    inside = np.zeros(len(xy), bool)
    inside[got] = True
    assert (inside[clear] == (r < boundary)[clear]).all()
    assert 20_000 < len(got) < 60_000
    # and the exact polygon test agrees with the slow reference on a sample
    sample = rng.choice(len(xy), 300, replace=False)
    assert (points_in_polygon(xy[sample], px, py) == reference_inside(xy[sample], px, py)).all()


def test_bad_layouts_are_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        selected_ids({}, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="ids"):
        selected_ids({}, np.zeros((5, 2)), np.arange(4))


def test_describe_selection_counts_predicted_classes():
    predictions = np.array([0, 0, 1, 2, -1, 1, 0, 5])
    names = {0: "cat", 1: "dog", 2: "bird"}
    mix = describe_selection(np.array([0, 1, 2, 4, 5, 6, 7, 40]), predictions, names)
    assert mix == [("cat", 3), ("dog", 2), ("unpredicted", 2), ("class 5", 1)]
    assert describe_selection(np.array([2, 3]), predictions, names) == [("bird", 1), ("dog", 1)]
    assert describe_selection(np.array([1, 2, 3]), None, names) == [("unpredicted", 3)]
    assert describe_selection(np.array([], dtype=np.int64), predictions, names) == []


def test_majority_class_counts_only_live_classes_and_predicted_images():
    predicted = np.array([3, 3, 7, 7, 7, 9, 9, 9, 9])           # image id -> predicted class id
    assert majority_class(np.array([0, 1, 2, 3, 4]), predicted, [3, 7]) == 7
    assert majority_class(np.array([0, 1, 2, 3]), predicted, [3, 7]) == 3        # tie: smaller id
    assert majority_class(np.arange(9), predicted, [3, 7]) == 7    # 9 is no live class (deleted)
    assert majority_class(np.array([5, 6, 40]), predicted, [3, 7]) is None     # 40: beyond
    assert majority_class(np.array([0, 1]), None, [3, 7]) is None               # no model yet
    assert majority_class(np.array([], np.int64), predicted, [3, 7]) is None
