"""The label queue in a real browser, driven by real key presses: N suggests, 1 labels, A
accepts the model's guess, Z undoes, S skips; each label is read back from the store."""
import time

import numpy as np
import pytest
from browser import chromium_page, running_app, screenshot, wait_until_idle

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project
from ssl_core.results.predictions import save_predictions

NAMES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero"]


@pytest.fixture
def digits_with_classes(latentlab_home):
    """Digits with classes one..nine, zero (so key 1 is "one", key 0 is "zero") and a stand-in
    model that guesses the true digit, 80% sure."""
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    ids = [label_classes.add_class(project.store, name).id for name in NAMES]
    gt = ImageCollection(project).ground_truth()
    proba = np.full((len(gt.labels), 10), 0.2 / 9, np.float32)
    proba[np.arange(len(gt.labels)), (gt.labels - 1) % 10] = 0.8   # digit d -> class NAMES[d-1]
    save_predictions(project, proba, np.array(ids), None, "stand-in")
    return project, ids


def shown_image(page) -> int:
    return int(page.locator("[data-testid='stImage']").first.inner_text().split()[-1])


def press(page, key: str, expect: str) -> None:
    """Press a key on the page (no text box focused) and wait for the rerun it causes."""
    page.keyboard.press(key)
    page.get_by_text(expect).first.wait_for(timeout=30_000)
    wait_until_idle(page)


def test_keys_label_accept_undo_and_skip(digits_with_classes):
    project, ids = digits_with_classes
    store = project.store
    with running_app(project.root.parent.parent) as url, chromium_page(1400, 1000) as page:
        page.goto(url)
        page.get_by_role("heading", name="Images · digits").wait_for(timeout=60_000)
        page.get_by_role("link", name="Label queue").click()
        page.get_by_role("heading", name="Label queue · digits").wait_for(timeout=60_000)
        wait_until_idle(page)
        page.get_by_role("radio", name="random").click()
        wait_until_idle(page)
        page.get_by_role("heading", name="Label queue · digits").click()   # focus off the pills
        press(page, "n", "Save 24")                                    # N: Suggest
        page.get_by_role("radio", name="One at a time").click()
        page.get_by_text("0 of 24 labeled").wait_for(timeout=30_000)
        wait_until_idle(page)
        page.get_by_role("heading", name="Label queue · digits").click()
        screenshot(page, "queue-01-one-at-a-time")
        assert page.locator("[data-testid='stException']").count() == 0

        first = shown_image(page)
        t0 = time.monotonic()
        press(page, "1", f"Labeled image {first} as one")               # 1: class "one"
        print(f"key 1 -> next image shown in {time.monotonic() - t0:.1f} s")
        assert labels.current_labels(store)[first] == ids[0]
        second = shown_image(page)
        assert second != first
        guessed = ids[(ImageCollection(project).ground_truth().labels[second] - 1) % 10]
        press(page, "a", f"Labeled image {second} as")                 # A: accept the guess
        assert labels.current_labels(store)[second] == guessed
        press(page, "z", "Undone")                                      # Z: undo the last label
        y = labels.current_labels(store)
        assert y[second] == -1 and y[first] == ids[0] and shown_image(page) == second
        press(page, "s", f"Skipped image {second}")                     # S: skip, no label
        assert shown_image(page) != second
        assert (labels.current_labels(store) >= 0).sum() == 1
        screenshot(page, "queue-02-after-keys")
        assert page.locator("[data-testid='stException']").count() == 0

        page.get_by_role("radio", name="Grid").click()                  # the batch view
        page.get_by_text("Save 23").first.wait_for(timeout=30_000)
        wait_until_idle(page)
        box = page.locator("[data-testid='stForm']").get_by_role("combobox").first
        box.click()
        page.keyboard.type("zero")                                      # fix one guess by typing
        page.keyboard.press("Enter")
        wait_until_idle(page)
        screenshot(page, "queue-03-grid")
        page.keyboard.press("Control+Enter")        # Ctrl+Enter saves, even from inside a box
        page.get_by_text("All 24 suggested images are labeled").wait_for(timeout=30_000)
        y = labels.current_labels(store)
        assert (y >= 0).sum() == 24 and (y == ids[9]).sum() >= 1
