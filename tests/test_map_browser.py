"""The latent map in a real browser: lasso a cluster, label it, see the colours change, undo."""
import time

import numpy as np
import pytest
from browser import (
    chromium_page,
    lasso_around,
    running_app,
    screenshot,
    wait_for_plot,
    wait_until_idle,
)

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.jobs.map_job import build_map
from ssl_core.latentmap.map_files import load_map
from ssl_core.project.folder import Project


@pytest.fixture
def digits_with_map(latentlab_home):
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    build_map(project, {"vae_budget_s": 20})
    return project


def test_lasso_label_recolour_and_undo(digits_with_map):
    project = digits_with_map
    data = load_map(project)
    gt = ImageCollection(project).ground_truth()
    zero = data.layout[gt.labels == 0]
    centre = np.median(zero, axis=0)                      # the middle of the zeros' cluster
    with running_app(project.root.parent.parent) as url, chromium_page(1400, 1100) as page:
        page.goto(url)
        page.get_by_role("heading", name="Images · digits").wait_for(timeout=60_000)
        page.get_by_role("link", name="Map").click()
        wait_for_plot(page)
        wait_until_idle(page)
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
        confirmed = page.locator("[data-testid='stAlertContentSuccess']",
                                 has_text=f"Labeled {n_selected} images as zero.")
        assert confirmed.count() == 1                     # the panel repeats the toast's word
        screenshot(page, "map-03-labeled")
        assert page.locator("[data-testid='stException']").count() == 0
        page.get_by_role("button", name="Undo my last action").click()
        page.locator(".legendtext", has_text="zero").wait_for(state="detached", timeout=30_000)
        wait_until_idle(page)
        screenshot(page, "map-04-undone")
        assert page.locator(".legendtext", has_text="unlabeled (1,797)").count() == 1
        # A class exists now and no model has run: a new selection must not start on it.
        lasso_around(page, centre)
        page.get_by_role("heading", name="selected").wait_for(timeout=30_000)
        wait_until_idle(page)
        box = page.get_by_role("combobox", name="Class", exact=True)
        assert box.input_value() == "" and box.get_attribute("placeholder") == "Choose a class…"
        assert page.get_by_role("button", name=f"Label {n_selected}").is_disabled()
        screenshot(page, "map-05-choose-a-class")
