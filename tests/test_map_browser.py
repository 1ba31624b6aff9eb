"""The latent map in a real browser: lasso a cluster, label it, see the colours change, undo."""
import math
import time

import numpy as np
import pytest

from browser import chromium_page, running_app, screenshot, wait_until_idle
from ssl_core.imagestore import ImageStore
from ssl_core.importer import import_source
from ssl_core.mapjob import build_map, load_map
from ssl_core.project import Project
from ssl_core.sources import SourceSpec


@pytest.fixture
def digits_with_map(latentlab_home):
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    build_map(project, {"vae_budget_s": 20})
    return project


def lasso_around(page, xy_data: np.ndarray, radius_px: float = 40.0, n: int = 24) -> None:
    """Drag a lasso circle around the data point's centre, converting data to page pixels with
    the plot's own axes."""
    box = page.evaluate("""([x, y]) => {
        const gd = document.querySelector('.js-plotly-plot');
        const fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return [r.left + fl._size.l + fl.xaxis.l2p(x), r.top + fl._size.t + fl.yaxis.l2p(y)];
    }""", [float(xy_data[0]), float(xy_data[1])])
    cx, cy = box
    page.mouse.move(cx + radius_px, cy)
    page.mouse.down()
    for k in range(1, n + 1):
        a = 2 * math.pi * k / n
        page.mouse.move(cx + radius_px * math.cos(a), cy + radius_px * math.sin(a), steps=2)
    page.mouse.up()


def test_lasso_label_recolour_and_undo(digits_with_map):
    project = digits_with_map
    data = load_map(project)
    gt = ImageStore(project).ground_truth()
    zero = data.layout[gt.labels == 0]
    centre = np.median(zero, axis=0)                      # the middle of the zeros' cluster
    with running_app(project.root.parent.parent) as url, chromium_page(1400, 1100) as page:
        page.goto(url)
        page.get_by_role("heading", name="Images · digits").wait_for(timeout=60_000)
        page.get_by_role("link", name="Map").click()
        page.locator(".js-plotly-plot").wait_for(timeout=60_000)
        wait_until_idle(page)
        page.wait_for_function("""() => { const gd = document.querySelector('.js-plotly-plot');
            return gd && gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length > 100
                   && gd.querySelectorAll('.scatterlayer, canvas').length > 0; }""", timeout=60_000)
        page.wait_for_timeout(1000)                       # let WebGL finish its first draw
        t0 = time.monotonic()
        screenshot(page, "map-01-loaded")
        lasso_around(page, centre)
        heading = page.get_by_role("heading", name="selected")
        heading.wait_for(timeout=30_000)
        wait_until_idle(page)
        n_selected = int(heading.inner_text().split()[0].replace(",", ""))
        print(f"lasso -> selection shown in {time.monotonic() - t0:.1f} s ({n_selected} points)")
        assert n_selected >= 5
        screenshot(page, "map-02-selected")
        name_box = page.get_by_label("New class name")
        if not name_box.is_visible():                     # classes exist: pick "New class…"
            page.get_by_role("combobox", name="Class", exact=True).click()
            page.get_by_role("option", name="New class").click()
        name_box.fill("zero")
        page.get_by_label("New class name").press("Enter")
        wait_until_idle(page)
        t1 = time.monotonic()
        page.get_by_role("button", name=f"Label {n_selected}").click()
        legend = page.locator(".legendtext", has_text=f"zero ({n_selected})")
        legend.wait_for(timeout=30_000)
        print(f"label {n_selected} -> map recoloured in {time.monotonic() - t1:.1f} s")
        wait_until_idle(page)
        screenshot(page, "map-03-labeled")
        assert page.locator("[data-testid='stException']").count() == 0
        page.get_by_role("button", name="Undo my last action").click()
        page.locator(".legendtext", has_text="zero").wait_for(state="detached", timeout=30_000)
        wait_until_idle(page)
        screenshot(page, "map-04-undone")
        assert page.locator(".legendtext", has_text="unlabeled (1,797)").count() == 1
