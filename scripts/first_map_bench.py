"""Time from opening the Map page of a project with no map yet to the first map on screen.

    .venv/bin/python scripts/first_map_bench.py --source digits
    .venv/bin/python scripts/first_map_bench.py --source folder --path /tmp/mem10k/images

A fresh LATENTLAB_HOME; the images are imported (not timed), then the app is started and the
Map page opened in Chromium: `first_map_s` runs from the page request to the first scatter
drawn with every point (the provisional map, made by the map job's first step),
`vae_map_s` to the page showing the VAE's map (map.json no longer provisional). One JSON
line, appended to benchmarks/first_map.jsonl. Target: first map within 10 s up to 10,000 images.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

DRAWN = """(n) => { const gd = document.querySelector('.js-plotly-plot');
    return gd && gd._fullData && gd._fullData.length > 0 && gd._fullData[0].x
           && gd._fullData[0].x.length >= n && gd.querySelectorAll('canvas').length > 0; }"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="digits", choices=("digits", "folder"))
    parser.add_argument("--path")
    parser.add_argument("--timeout-s", type=float, default=900)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="first-map-")) / "home"
    os.environ["LATENTLAB_HOME"] = str(home)
    from browser import chromium_page, running_app, screenshot, wait_until_idle

    from ssl_core.data.collection import ImageCollection
    from ssl_core.data.importer import import_source
    from ssl_core.data.sources import SourceSpec
    from ssl_core.project.folder import Project

    project = Project.named("first")
    import_source(project, SourceSpec(args.source, path=args.path))
    n = ImageCollection(project).n_images
    row = {"benchmark": "first_map", "source": args.source, "n_images": n,
           "load_avg_start": round(os.getloadavg()[0], 2),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip()}
    with running_app(home) as url, chromium_page() as page:
        page.goto(url)
        wait_until_idle(page)
        t0 = time.monotonic()
        page.get_by_role("link", name="Map").click()
        page.wait_for_function(DRAWN, arg=n, timeout=args.timeout_s * 1000)
        row["first_map_s"] = round(time.monotonic() - t0, 2)
        row["first_map_provisional"] = json.loads(project.map_meta_path.read_text()).get(
            "provisional", False)
        screenshot(page, f"first-map-{args.source}-{n}")
        deadline = time.monotonic() + args.timeout_s
        while json.loads(project.map_meta_path.read_text()).get("provisional"):
            if time.monotonic() > deadline:
                raise SystemExit("the VAE map did not come in time")
            time.sleep(0.5)
        page.wait_for_timeout(2500)                      # the page's poll reruns it
        wait_until_idle(page)
        page.wait_for_function(DRAWN, arg=n, timeout=60_000)
        row["vae_map_s"] = round(time.monotonic() - t0, 2)
        screenshot(page, f"vae-map-{args.source}-{n}")
    line = json.dumps(row)
    print(line)
    with open(ROOT / "benchmarks" / "first_map.jsonl", "a") as fh:
        fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
