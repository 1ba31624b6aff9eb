"""Screenshots of a photo project's Images, Map, Train and Samples pages, made the way a user
would get there from a shell, for the README and docs/photos.md.

    .venv/bin/python -m benchmarks.photo_folder --out /tmp/photos
    .venv/bin/python scripts/photo_screenshots.py --photos /tmp/photos --out assets

A fresh LATENTLAB_HOME; `python -m ssl_core import` the folder, `map` (features, feature VAE,
UMAP), `label` 3 images per class (a simulated user: random training-split images of each
ground-truth folder, seeded), `train --method default` and `--method gan`; then the app in
Chromium, one full-page screenshot per page (screenshot-photos-<page>.png). Prints the train
job's test accuracy as the Train page shows it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
LABELS_PER_CLASS = 3


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ssl_core", *args], cwd=ROOT, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", required=True, help="python -m benchmarks.photo_folder --out")
    parser.add_argument("--out", default=str(ROOT / "assets"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="photo-shots-")) / "home"
    os.environ["LATENTLAB_HOME"] = str(home)
    from browser import chromium_page, running_app, wait_for_plot, wait_until_idle

    from ssl_core.data.collection import ImageCollection
    from ssl_core.project.folder import Project

    project = Project.named("photos")
    folder = str(project.root)
    cli("import", "--source", "folder", "--path", args.photos, "--project", folder)
    cli("map", "--project", folder)
    gt = ImageCollection(project).ground_truth()
    rng = np.random.default_rng(args.seed)
    for k, name in enumerate(gt.class_names):
        ids = rng.choice(np.flatnonzero((gt.labels == k) & ~gt.is_test), LABELS_PER_CLASS,
                         replace=False)
        cli("label", "--project", folder, "--ids", ",".join(map(str, sorted(ids))), "--label", name)
    cli("train", "--project", folder, "--method", "gan", "--budget-s", "60", "--no-baseline")
    cli("train", "--project", folder, "--method", "default", "--budget-s", "60")
    out = Path(args.out)
    with running_app(home) as url, chromium_page(1400, 1000) as page:
        for name, link in (("images", "Images"), ("map", "Map"), ("train", "Train"),
                           ("samples", "Samples")):
            page.goto(url)
            wait_until_idle(page)
            page.get_by_role("link", name=link).click()
            page.wait_for_timeout(1500)
            wait_until_idle(page)
            if name == "map":
                wait_for_plot(page)
            page.wait_for_timeout(2000)
            path = out / f"screenshot-photos-{name}{'-labels' if name == 'map' else ''}.png"
            page.screenshot(path=str(path), full_page=True)
            print(path)
            if name == "map":                     # the same map coloured by the ground truth
                page.get_by_text("ground truth", exact=True).first.click()
                page.wait_for_timeout(1500)
                wait_until_idle(page)
                wait_for_plot(page)
                path = out / "screenshot-photos-map.png"        # the README's
                page.screenshot(path=str(path), full_page=True)
                print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
