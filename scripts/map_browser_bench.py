"""Time the map page in a real browser (Chromium via Playwright) on a project with a built map:

    .venv/bin/python scripts/map_browser_bench.py --home /tmp/mnist70k/home --project mnist

Prints one JSON line (and appends it to benchmarks/map_browser.jsonl):
- page_interactive_s: from opening the Map page's URL until the WebGL scatter has drawn every
  point and Streamlit's script is idle (first visit, then a reload in a new session);
- lasso_to_selection_s: lasso started (64 mouse moves, each of which Plotly answers by
  restyling every point) -> the selection panel shows its count; lasso_release_to_selection_s:
  the part after the mouse button is released;
- label_to_toast_s: "Label N" clicked -> the toast "Labeled N images as ..." is on screen
  (sent once the labels are committed to the store), by the page's own clock (first
  animation frame that has it);
- label_to_legend_s: "Label N" clicked -> the legend shows the new class with N points (same
  clock); label_to_settled_s: -> the first two animation frames after that less than 50 ms apart,
  i.e. the page has finished redrawing the map (Streamlit remounts the chart whenever its
  figure changes, so Plotly draws it anew) and answers input again;
- *_spec_received_s: when the map's spec (the one big websocket frame) arrived, which splits
  each time into server + transfer before it and browser render after it.
The lasso is drawn around ~`--select` points of one ground-truth class's cluster.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PLOT_DRAWN = """(n) => { const gd = document.querySelector('.js-plotly-plot');
    return gd && gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length > 100
           && gd._fullData && gd._fullData.length > 0 && gd._fullData[0].x
           && gd._fullData[0].x.length >= n
           && gd.querySelectorAll('canvas').length > 0; }"""


# In-page clock for the label step: from the click (capture phase) to the first animation frame
# in which the toast, then the legend entry, is in the DOM. Polling from Playwright cannot
# tell these apart: it waits for the page's main thread, which the map repaint holds.
WATCH = """([toast, legend]) => {
    window.__seen = {};
    let clicked = null, last = null;
    document.addEventListener('click', () => { clicked = performance.now(); }, {capture: true, once: true});
    const check = () => {
        const now = performance.now();
        if (clicked !== null) {
            const has = (sel, text) => [...document.querySelectorAll(sel)].some(e => e.textContent.includes(text));
            if (!('toast' in window.__seen) && has("[data-testid='stToast']", toast)) window.__seen.toast = now - clicked;
            if (!('legend' in window.__seen) && has('.legendtext', legend)) window.__seen.legend = now - clicked;
            else if ('legend' in window.__seen && now - last < 50) window.__seen.settled = now - clicked;
        }
        last = now;
        if (!('settled' in window.__seen)) requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
}"""


def lasso(page, centre: np.ndarray, radius: float, n: int = 32) -> None:
    """A lasso polygon around `centre` with `radius` in data units (an ellipse on screen)."""
    from browser import drag_ellipse, plot_pixels
    c, right, up = plot_pixels(page, [centre, centre + [radius, 0.0], centre + [0.0, radius]])
    drag_ellipse(page, c[0], c[1], right[0] - c[0], up[1] - c[1], n)


class Frames:
    """Sizes and arrival times of the websocket frames the page receives: when the map's spec
    (the one big frame) arrives splits page time into server + transfer and browser render."""

    def __init__(self, page) -> None:
        self.got: list[tuple[float, int]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        self.got.append((time.monotonic(), len(payload)))

    def big_since(self, t0: float, min_bytes: int = 200_000) -> tuple[float | None, int]:
        """Seconds from t0 to the last frame of at least min_bytes, and its size."""
        big = [(t, size) for t, size in self.got if t >= t0 and size >= min_bytes]
        return (round(big[-1][0] - t0, 2), big[-1][1]) if big else (None, 0)


def open_map(page, url: str, n_points: int, frames: Frames) -> dict:
    from browser import wait_until_idle
    t0 = time.monotonic()
    page.goto(url + "/map")
    page.locator(".js-plotly-plot").wait_for(timeout=120_000)
    page.wait_for_function(PLOT_DRAWN, arg=n_points, timeout=120_000)
    wait_until_idle(page, 120_000)
    spec_s, spec_bytes = frames.big_since(t0)
    return {"s": round(time.monotonic() - t0, 2), "spec_received_s": spec_s,
            "spec_bytes": spec_bytes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", required=True, help="LATENTLAB_HOME holding the project")
    ap.add_argument("--project", required=True)
    ap.add_argument("--select", type=int, default=1000, help="about how many points to lasso")
    ap.add_argument("--class-name", default="bench")
    args = ap.parse_args()
    os.environ["LATENTLAB_HOME"] = args.home
    from ssl_core.data.collection import ImageCollection
    from ssl_core.labeling.label_log import current_labels
    from ssl_core.latentmap.map_files import load_map
    from ssl_core.project.folder import Project

    project = Project.named(args.project)
    data = load_map(project)
    if data is None:
        sys.exit("the project has no current map: build it first (Map page or the map job)")
    n = len(data.layout)
    gt = ImageCollection(project).ground_truth()
    unlabeled = current_labels(project.store, n) < 0
    cls = np.flatnonzero(gt.labels == 0) if gt.available else np.arange(n)
    centre = np.median(data.layout[cls], axis=0)
    dist = np.linalg.norm(data.layout - centre, axis=1)
    radius = float(np.sort(dist[unlabeled])[min(args.select, unlabeled.sum()) - 1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip()
    result = {"project": args.project, "points": n, "commit": commit or None}
    try:
        _run(args, project, n, centre, radius, result)
    finally:
        _remove_class(project, args.class_name)             # also after a failed run
    result["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    with open(ROOT / "benchmarks" / "map_browser.jsonl", "a") as fh:
        fh.write(json.dumps(result) + "\n")


def _remove_class(project, name: str) -> None:
    """Delete the bench's class (which unlabels its images), if it exists."""
    from ssl_core.labeling.classes import list_classes
    from ssl_core.labeling.label_log import delete_class
    for cls in list_classes(project.store):
        if cls.name == name:
            delete_class(project.store, cls.id)


def _run(args, project, n: int, centre: np.ndarray, radius: float, result: dict) -> None:
    from browser import chromium_page, running_app, screenshot, wait_until_idle
    with running_app(Path(args.home), timeout_s=180) as url, chromium_page(1400, 1100) as page:
        frames = Frames(page)
        first, reload = open_map(page, url, n, frames), open_map(page, url, n, frames)
        result["page_interactive_first_s"], result["page_interactive_reload_s"] = first["s"], reload["s"]
        result["first_visit_spec"] = {k: first[k] for k in ("spec_received_s", "spec_bytes")}
        page.wait_for_timeout(500)
        screenshot(page, "bench-map-loaded")
        t0 = time.monotonic()
        lasso(page, centre, radius)
        released = time.monotonic()
        heading = page.get_by_role("heading", name="selected")
        heading.wait_for(timeout=60_000)
        wait_until_idle(page)
        result["lasso_to_selection_s"] = round(time.monotonic() - t0, 2)
        result["lasso_release_to_selection_s"] = round(time.monotonic() - released, 2)
        selected = int(heading.inner_text().split()[0].replace(",", ""))
        result["selected"] = selected
        name_box = page.get_by_label("New class name")
        if not name_box.is_visible():
            page.get_by_role("combobox", name="Class", exact=True).click()
            page.get_by_role("option", name="New class").click()
        name_box.fill(args.class_name)
        name_box.press("Enter")
        wait_until_idle(page)
        page.evaluate(WATCH, [f"Labeled {selected:,} images", f"{args.class_name} ({selected:,})"])
        t1 = time.monotonic()
        page.get_by_role("button", name=f"Label {selected:,}").click()
        page.wait_for_function("() => 'settled' in window.__seen", timeout=60_000)
        seen = page.evaluate("() => window.__seen")
        result["label_to_toast_s"] = round(seen["toast"] / 1000, 2)
        result["label_to_legend_s"] = round(seen["legend"] / 1000, 2)
        result["label_to_settled_s"] = round(seen["settled"] / 1000, 2)
        result["label_spec_received_s"] = frames.big_since(t1)[0]
        wait_until_idle(page)
        screenshot(page, "bench-map-labeled")
        page.get_by_role("button", name="Undo my last action").click()
        wait_until_idle(page)


if __name__ == "__main__":
    main()
