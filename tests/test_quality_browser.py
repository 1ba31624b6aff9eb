"""The Quality page in a real browser (issue 16's "done when"): on the digits project with a few
wrong labels put in on purpose, the check lists them near the top of the review and one click
each fixes them; keep and undo work in place; the map colours by quality flag."""
import re

import numpy as np
import pytest
from browser import chromium_page, running_app, screenshot, wait_for_plot, wait_until_idle

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project
from ssl_core.quality.marks import kept_labels

PER_CLASS = 8
N_WRONG = 4
LOOK_AT = 8          # the wrong labels must all come up among the first LOOK_AT suspects


@pytest.fixture
def digits_with_wrong_labels(latentlab_home):
    """Digits, 8 labels of each digit on training images, 4 of them flipped on purpose."""
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    gt = ImageCollection(project).ground_truth()
    ids = {name: label_classes.add_class(project.store, name).id for name in gt.class_names}
    rng = np.random.default_rng(7)
    chosen = {d: rng.choice(np.flatnonzero((gt.labels == d) & ~gt.is_test), PER_CLASS, replace=False)
              for d in range(10)}
    wrong = {int(chosen[d][0]): (d + 3) % 10 for d in (1, 4, 6, 8)}      # image -> wrong digit
    for d, picks in chosen.items():
        for i in picks:
            digit = wrong.get(int(i), d)
            labels.set_labels(project.store, [int(i)], ids[gt.class_names[digit]], user="setup")
    return project, gt, ids, wrong


def test_quality_page_puts_wrong_labels_first_and_one_click_fixes_each(digits_with_wrong_labels):
    project, gt, ids, wrong = digits_with_wrong_labels
    with running_app(project.root.parent.parent) as url, chromium_page(1400, 1100) as page:
        page.goto(url)
        page.get_by_role("link", name="Quality").click()
        page.get_by_role("heading", name="Quality · digits").wait_for(timeout=60_000)
        wait_until_idle(page)
        page.get_by_role("button", name="Check now").click()
        page.get_by_text("suspected label errors to review").first.wait_for(timeout=180_000)
        wait_until_idle(page)
        screenshot(page, "quality-01-review")
        fixed, kept = [], []
        for _ in range(LOOK_AT):
            if not (set(wrong) - set(fixed)):
                break
            text = page.get_by_text(re.compile(r"Image \d+ is labeled")).first.inner_text()
            shown = int(re.search(r"Image (\d+) is labeled", text).group(1))
            if shown in wrong:
                truth = gt.class_names[gt.labels[shown]]
                page.get_by_role("button", name=f"Relabel: {truth}").click()   # one click
                page.get_by_text(f"Image {shown} relabeled as {truth}").first.wait_for(timeout=30_000)
                fixed.append(shown)
            else:
                page.get_by_role("button", name=re.compile("^Keep: ")).click()
                page.get_by_text(f"Image {shown} kept as").first.wait_for(timeout=30_000)
                kept.append(shown)
            wait_until_idle(page)
        print(f"fixed {fixed}, kept {kept} (correct labels looked at)")
        assert sorted(fixed) == sorted(wrong), f"wrong labels not among the first {LOOK_AT}: {wrong}"
        current = labels.current_labels(project.store)
        for i in wrong:                                  # fixed to the truth, in the label log
            assert current[i] == ids[gt.class_names[gt.labels[i]]]
        assert set(kept_labels(project.store)) == set(kept)
        last = fixed[-1]                                 # Z undoes the last decision: a fix
        page.get_by_role("button", name="Undo").first.click()
        page.get_by_text(f"Undone: image {last} is back for review.").first.wait_for(timeout=30_000)
        assert labels.current_labels(project.store)[last] == ids[gt.class_names[wrong[last]]]
        wait_until_idle(page)
        truth = gt.class_names[gt.labels[last]]
        page.get_by_role("button", name=f"Relabel: {truth}").click()       # back first: fix again
        page.get_by_text(f"Image {last} relabeled as {truth}").first.wait_for(timeout=30_000)
        assert labels.current_labels(project.store)[last] == ids[truth]
        wait_until_idle(page)
        screenshot(page, "quality-02-fixed")
        assert page.locator("[data-testid='stException']").count() == 0

        page.get_by_role("tab", name="Duplicates").click()
        page.get_by_role("tab", name="Label balance").click()
        page.get_by_text("Counted on the labels training sees").first.wait_for(timeout=30_000)
        screenshot(page, "quality-03-balance")
        page.get_by_role("link", name="Map").click()
        wait_for_plot(page, timeout_ms=240_000)
        page.get_by_role("radio", name="quality flag").click()
        page.get_by_text("images flagged by the last quality check").first.wait_for(timeout=60_000)
        wait_until_idle(page)
        screenshot(page, "quality-04-map")
        assert page.locator("[data-testid='stException']").count() == 0
