"""Retraining in a real browser on digits: label from the keyboard queue, press Retrain, watch
the live view, see accuracy and the class preview appear, download the labels CSV."""
import time

import pytest
from browser import (
    chromium_page,
    download_labels_csv,
    open_queue_one_at_a_time,
    running_app,
    screenshot,
    wait_until_idle,
)

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project

NAMES = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]   # key d -> class "d", as the
                                                              # ground truth names them
N_LABELS = 20


@pytest.fixture
def digits_with_classes(latentlab_home):
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    for name in NAMES:                                       # key d labels digit d
        label_classes.add_class(project.store, name)
    return project


def test_label_retrain_see_accuracy_and_samples_download_csv(digits_with_classes):
    project = digits_with_classes
    gt = ImageCollection(project).ground_truth()
    with running_app(project.root.parent.parent) as url, chromium_page(1400, 1000) as page:
        page.goto(url)
        open_queue_one_at_a_time(page, "digits")
        for _ in range(N_LABELS):                            # the true digit's key, as a user would
            shown = int(page.locator("[data-testid='stImage']").first.inner_text().split()[-1])
            page.keyboard.press(gt.class_names[gt.labels[shown]])     # digits' names are "0".."9"
            page.get_by_text(f"Labeled image {shown} as").first.wait_for(timeout=30_000)
            wait_until_idle(page)
        y = labels.current_labels(project.store)
        assert (y >= 0).sum() == N_LABELS

        page.get_by_role("link", name="Train").click()
        retrain = page.get_by_role("button", name=f"Retrain on {N_LABELS} labels")
        retrain.wait_for(timeout=60_000)
        wait_until_idle(page)
        t0 = time.monotonic()
        retrain.click()
        page.get_by_text("Job 1 (train)").first.wait_for(timeout=30_000)   # the live view
        print(f"click -> live view {time.monotonic() - t0:.1f} s")
        screenshot(page, "train-01-live")
        page.get_by_text("Test accuracy (ground truth)").first.wait_for(timeout=180_000)
        print(f"click -> accuracy shown {time.monotonic() - t0:.1f} s")
        wait_until_idle(page)
        metric = page.locator("[data-testid='stMetric']").filter(has_text="Test accuracy")
        value = metric.locator("[data-testid='stMetricValue']").inner_text()
        shown = float(value.strip().rstrip("%"))
        assert shown > 50                                    # 20 labels; chance is 10%
        page.get_by_role("tab", name="Curves of this run").click()
        preview = page.get_by_text("Random images of each class as the model labels them now")
        preview.first.wait_for(timeout=30_000)
        screenshot(page, "train-02-results")
        assert page.locator("[data-testid='stException']").count() == 0

        rows = download_labels_csv(page)
        assert len(rows) == N_LABELS
        assert {r["label"] for r in rows} <= set(NAMES)
