"""The map's Plotly figure as the browser receives it: per-point RGBA rows, ids, legend."""
import base64
import json

import numpy as np

from ui.map_figure import UNLABELED, Colouring, draw_order, map_figure, point_colors


def decoded(spec: dict) -> np.ndarray:
    """A Plotly typed-array spec ({dtype, bdata, shape}) -> the numpy array it encodes."""
    dtype = {"u1": np.uint8, "i4": np.int32, "f4": np.float32}[spec["dtype"]]
    shape = [int(s) for s in str(spec.get("shape", "-1")).split(",")]
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype).reshape(shape)


def test_each_point_goes_out_as_its_class_colour_in_one_typed_array():
    rng = np.random.default_rng(0)
    n = 5000
    xy = rng.normal(size=(n, 2)).astype(np.float32)
    codes = rng.integers(-1, 3, n)                                 # -1: unlabeled
    colouring = Colouring(codes, ["cat", "dog", "<b>bird</b>"], ["#1f77b4", "#ff7f0e", "#2ca02c"])
    spec = json.loads(map_figure(xy, np.arange(n) + 10, colouring).to_json())
    points = spec["data"][0]
    rgba = decoded(points["marker"]["color"])                       # (n, 4) uint8
    assert rgba.shape == (n, 4) and points["marker"]["color"]["dtype"] == "u1"
    expected = {-1: UNLABELED, 0: "#1f77b4", 1: "#ff7f0e", 2: "#2ca02c"}
    for code, hex_colour in expected.items():
        want = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)] + [255]
        assert (rgba[codes == code] == want).all()
    assert decoded(points["customdata"]).tolist() == (np.arange(n) + 10).tolist()
    assert np.allclose(decoded(points["x"]), xy[:, 0])
    legend = [t["name"] for t in spec["data"][1:]]
    counts = [int((codes == c).sum()) for c in (-1, 0, 1, 2)]
    assert legend == [f"unlabeled ({counts[0]:,})", f"cat ({counts[1]:,})", f"dog ({counts[2]:,})",
                      f"&lt;b&gt;bird&lt;/b&gt; ({counts[3]:,})"]      # user text is escaped
    assert all(len(t["x"]) == 1 and t["x"][0] is None for t in spec["data"][1:])  # no points


def test_a_category_without_points_has_no_legend_entry_and_unknown_codes_are_grey():
    colouring = Colouring(np.array([0, 0, 5, -1]), ["a", "b"], ["#000000", "#ffffff"])
    spec = json.loads(map_figure(np.zeros((4, 2), np.float32), np.arange(4), colouring).to_json())
    assert [t["name"] for t in spec["data"][1:]] == ["unlabeled (1)", "a (2)"]
    assert point_colors(colouring)[2].tolist() == point_colors(colouring)[3].tolist()


def test_continuous_values_use_viridis_with_a_colour_bar():
    values = np.array([0.0, 1.0, np.nan, 0.5])
    colouring = Colouring(np.full(4, -1), [], [], continuous=values, continuous_name="confidence")
    rgba = point_colors(colouring)
    assert rgba[0].tolist() == [0x44, 0x01, 0x54, 255]              # Viridis ends: #440154
    assert rgba[1].tolist() == [0xfd, 0xe7, 0x25, 255]              # ... and #fde725
    assert rgba[2].tolist() == rgba[0].tolist()                     # NaN shown as 0
    spec = json.loads(map_figure(np.zeros((4, 2), np.float32), np.arange(4), colouring).to_json())
    bar = spec["data"][1]
    assert bar["marker"]["showscale"] and bar["marker"]["colorbar"]["title"]["text"] == "confidence"
    assert len(spec["data"]) == 2                                   # no legend entries


def test_the_few_labeled_points_are_drawn_last_and_bigger():
    n = 70_000
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(n, 2)).astype(np.float32)
    codes = np.full(n, -1)
    labeled = rng.choice(n, 100, replace=False)
    codes[labeled] = rng.integers(0, 10, 100)
    colouring = Colouring(codes, [str(k) for k in range(10)], ["#1f77b4"] * 10)
    order = draw_order(colouring)
    assert sorted(order.tolist()) == list(range(n))                         # a permutation
    assert set(order[-100:].tolist()) == set(labeled.tolist())              # on top
    assert (np.diff(order[:-100]) > 0).all()                                # rest: layout order
    spec = json.loads(map_figure(xy[order], order, colouring.take(order)).to_json())["data"][0]
    ids = decoded(spec["customdata"])
    assert (ids == order).all() and np.allclose(decoded(spec["x"]), xy[order, 0])
    sizes = decoded(spec["marker"]["size"])                                 # (n,) float32
    assert spec["marker"]["line"]["width"] == 0          # no theme outline washing them out
    assert (sizes[-100:] > 2 * sizes[:-100].max() - 1e-6).all()
    rgba = decoded(spec["marker"]["color"])
    assert (rgba[-100:, :3] == [0x1F, 0x77, 0xB4]).all()                   # colours follow
    everyone = Colouring(rng.integers(0, 10, n), colouring.names, colouring.colors)
    assert isinstance(map_figure(xy, np.arange(n), everyone).data[0].marker.size, float)
    conf = Colouring(codes, [], [], continuous=rng.random(n), continuous_name="confidence")
    assert (draw_order(conf) == np.arange(n)).all()
