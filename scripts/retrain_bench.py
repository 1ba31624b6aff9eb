"""Time retraining as a user feels it, in Chromium, on the built-in digits (1,797 images):

    .venv/bin/python scripts/retrain_bench.py [--labels-per-class 5] [--method default]

A fresh project gets N true labels per class (classes named like the ground truth), then:
- click_to_running_s: "Retrain" clicked -> the live view says the job is running (a worker
  process claimed it; the view polls every second); job_recorded_to_claimed_s: the same from
  the job's own timestamps (request recorded -> worker running);
- ui_action_s: while it trains, labels given in the Label queue's one-at-a-time view with a key
  press -> the confirmation shown (several presses; median and max);
- click_to_accuracy_s: "Retrain" clicked -> the new test accuracy shown on the Train page.
Prints one JSON line and appends it to benchmarks/retrain_browser.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
NAMES = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]    # key d -> class "d"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels-per-class", type=int, default=5)
    ap.add_argument("--method", default="default")
    ap.add_argument("--presses", type=int, default=6)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="latentlab-retrain-"))
    os.environ["LATENTLAB_HOME"] = str(home)
    from browser import (
        chromium_page,
        open_queue_one_at_a_time,
        running_app,
        screenshot,
        wait_until_idle,
    )

    from ssl_core.data.collection import ImageCollection
    from ssl_core.data.importer import import_source
    from ssl_core.data.sources import SourceSpec
    from ssl_core.jobs import records as jobs
    from ssl_core.labeling import classes as label_classes
    from ssl_core.labeling import label_log as labels
    from ssl_core.project.folder import Project

    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    ids = {name: label_classes.add_class(project.store, name).id for name in NAMES}
    gt = ImageCollection(project).ground_truth()
    for d in range(10):
        pick = np.flatnonzero((gt.labels == d) & ~gt.is_test)[:args.labels_per_class]
        labels.set_labels(project.store, pick.tolist(), ids[gt.class_names[d]])
    n_labels = 10 * args.labels_per_class
    out = {"dataset": "digits", "method": args.method, "labels": n_labels}
    with running_app(home, timeout_s=180) as url, chromium_page(1400, 1000) as page:
        page.goto(url + "/train")
        page.get_by_role("heading", name="Train · digits").wait_for(timeout=120_000)
        wait_until_idle(page)
        if args.method != "default":
            page.get_by_role("combobox", name="Method").click()
            page.get_by_role("option", name=args.method, exact=False).first.click()
            wait_until_idle(page)
        t0 = time.monotonic()
        page.get_by_role("button", name=f"Retrain on {n_labels} labels").click()
        page.get_by_text("(train) · running").first.wait_for(timeout=60_000)
        out["click_to_running_s"] = round(time.monotonic() - t0, 2)
        # label while it trains: the queue's one-at-a-time view, true digit keys
        open_queue_one_at_a_time(page, "digits")
        times, during = [], 0
        for _ in range(args.presses):
            shown = int(page.locator("[data-testid='stImage']").first.inner_text().split()[-1])
            active = any(j.kind == "train" for j in jobs.active_jobs(project.store))
            t1 = time.monotonic()
            page.keyboard.press(gt.class_names[gt.labels[shown]])
            page.get_by_text(f"Labeled image {shown} as").first.wait_for(timeout=30_000)
            times.append(time.monotonic() - t1)
            during += active
            wait_until_idle(page)
        out["ui_action_s_median"] = round(statistics.median(times), 2)
        out["ui_action_s_max"] = round(max(times), 2)
        out["ui_actions_while_training"] = during
        page.get_by_role("link", name="Train").click()
        page.get_by_text("Test accuracy (ground truth)").first.wait_for(timeout=300_000)
        out["click_to_accuracy_s"] = round(time.monotonic() - t0, 2)
        first = jobs.list_jobs(project.store, 50)[-1]
        out["job_recorded_to_claimed_s"] = round(first.started_at - first.created_at, 2)
        wait_until_idle(page)
        value = page.locator("[data-testid='stMetric']").filter(has_text="Test accuracy") \
            .locator("[data-testid='stMetricValue']").inner_text()
        out["test_accuracy_shown"] = value.strip()
        screenshot(page, "bench-retrain")
    out["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    with open(ROOT / "benchmarks" / "retrain_browser.jsonl", "a") as fh:
        fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
