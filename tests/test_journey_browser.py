"""A new user's journey in a real browser, twice: on the built-in digits the app opens with, and
on an uploaded zip that holds corrupt files. Images → Map (the page builds it) → lasso a
cluster → label it → a second class → Retrain → accuracy → (samples) → labels CSV.

Every step is timed from the user's action to its visible result, printed, and screenshotted
as test-artifacts/journey-<name>-NN-<step>.png so a person can walk the same path by eye."""
import contextlib
import io
import re
import time
import zipfile

import numpy as np
import pytest
from browser import (
    ARTIFACTS,
    chromium_page,
    download_labels_csv,
    lasso_around,
    plot_pixels,
    running_app,
    screenshot,
    wait_for_plot,
    wait_until_idle,
)
from PIL import Image, ImageDraw
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ssl_core.data.collection import ImageCollection
from ssl_core.labeling.classes import list_classes
from ssl_core.labeling.evaluation_split import sealed_mask, training_labels
from ssl_core.labeling.label_log import current_labels
from ssl_core.latentmap.map_files import load_map
from ssl_core.project.folder import Project
from ssl_core.results.runs import list_runs
from ssl_core.training.validation import Accuracy

MAX_RADIUS_PX = 40.0       # the largest lasso circle drawn around a cluster's centre
MAP_TIMEOUT_MS = 600_000   # VAE + UMAP in the background: a minute or two, more on a busy machine
TRAIN_TIMEOUT_MS = 420_000
SHAPES = ("circle", "square", "cross")
PER_SHAPE = 80             # images of each shape in the zip: ~16 per shape in the test split
CORRUPT = {"circle/truncated.png": "truncated or corrupt image data",
           "square/empty.png": "empty file",
           "cross/notes.png": "not an image"}


class Journey:
    """One user's walk through the app: `step` times the action inside it up to its result,
    then waits for the page to settle, checks it shows no exception and takes a screenshot."""

    def __init__(self, page, name: str):
        self.page, self.name, self.times = page, name, []
        for old in ARTIFACTS.glob(f"journey-{name}-*.png"):   # no stale steps from earlier runs
            old.unlink()

    @contextlib.contextmanager
    def step(self, title: str):
        t0 = time.monotonic()
        try:
            yield
        except Exception:                                # show CI what the user would have seen
            screenshot(self.page, f"journey-{self.name}-{len(self.times) + 1:02d}-{title}-FAILED")
            raise
        seconds = time.monotonic() - t0
        wait_until_idle(self.page, 120_000)
        self.page.mouse.move(1, 1)                       # no tooltip over the screenshot
        self.times.append((title, seconds))
        screenshot(self.page, f"journey-{self.name}-{len(self.times):02d}-{title}")
        print(f"[{self.name}] {len(self.times):02d} {title}: {seconds:.1f} s", flush=True)
        assert self.page.locator("[data-testid='stException']").count() == 0, title
        assert "Traceback" not in self.page.inner_text("body"), title

    def report(self) -> None:
        print(f"\nStep timings, {self.name} journey (action -> result):")
        for i, (title, seconds) in enumerate(self.times, 1):
            print(f"  {i:02d} {title:<22} {seconds:7.1f} s")
        print(f"  total {sum(s for _, s in self.times):.1f} s", flush=True)


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the select box `label`. Its list may stay empty when the box was
    clicked while still moving (an expander opening): then close it and open it again."""
    box = page.get_by_role("combobox", name=label, exact=True)
    item = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):
        box.click()
        try:
            item.click(timeout=5_000)
            return
        except PlaywrightTimeout:
            print(f"the select box {label!r} opened without its list: opening it again")
            page.keyboard.press("Escape")
    raise AssertionError(f"the select box {label!r} did not offer {option!r}")


def open_app(j: Journey, url: str) -> None:
    with j.step("images"):
        j.page.goto(url)
        j.page.get_by_role("heading", name="Images · digits").wait_for(timeout=120_000)


def open_map(j: Journey) -> None:
    """Map link → the page starts the map job and follows it → a provisional map draws at once
    → the VAE's map replaces it in place when the job is done (the lasso needs the final one)."""
    with j.step("map-building"):
        j.page.get_by_role("link", name="Map").click()
        j.page.get_by_text(re.compile(r"Job \d+ \(map\)")).first.wait_for(timeout=60_000)
    with j.step("provisional map"):
        wait_for_plot(j.page, MAP_TIMEOUT_MS)
    with j.step("map"):
        j.page.get_by_text("A first map, from the images' shrunk pixels").wait_for(
            state="hidden", timeout=MAP_TIMEOUT_MS)
        wait_for_plot(j.page, MAP_TIMEOUT_MS)


def distances_px(page, xy: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(N,) pixel distance of every map point from `centre` (data units), as drawn right now
    (the legend's width, and so the plot's scale, changes as classes are added)."""
    px = plot_pixels(page, np.vstack([xy, centre[None]]))
    return np.linalg.norm(px[:-1] - px[-1], axis=1)


def room_px(page, centre: np.ndarray) -> float:
    """Pixels from `centre` to the nearest edge of the plot's drag area (a lasso that starts
    outside it, e.g. over the legend, selects nothing)."""
    left, top, right, bottom = page.evaluate("""() => {
        const r = document.querySelector('.js-plotly-plot .nsewdrag').getBoundingClientRect();
        return [r.left, r.top, r.right, r.bottom]; }""")
    cx, cy = plot_pixels(page, centre)[0]
    return min(cx - left, right - cx, cy - top, bottom - cy)


def pick_clusters(page, project: Project, k: int = 2) -> list[tuple[str, np.ndarray, float]]:
    """The k ground-truth classes whose lasso circle is purest and far enough apart not to
    overlap. A circle is centred on the class's median position and holds about its inner 40%
    (so the class's other images remain to measure test accuracy on), less where the plot's
    edge is nearer: (class name, centre, radius in pixels)."""
    xy = load_map(project).layout
    gt = ImageCollection(project).ground_truth()
    candidates = []
    for c, name in enumerate(gt.class_names):
        centre = np.median(xy[gt.labels == c], axis=0)
        dist = distances_px(page, xy, centre)
        radius = float(np.clip(np.percentile(dist[gt.labels == c], 40), 12, MAX_RADIUS_PX))
        radius = min(radius, room_px(page, centre) - 20)   # the legend may still widen by ~20 px
        inside = dist < radius
        if inside.sum() >= 8:
            purity = (gt.labels[inside] == c).mean()
            candidates.append((purity, inside.sum(), name, centre, radius))
    chosen = []
    for purity, count, name, centre, radius in sorted(candidates, key=lambda t: t[:2],
                                                      reverse=True):
        if all(distances_px(page, centre[None], other)[0] > radius + r + 20
               for _, other, r in chosen):
            print(f"[lasso] class {name}: {count} points in a {radius:.0f} px circle, "
                  f"{purity:.0%} of them {name}")
            chosen.append((name, centre, radius))
        if len(chosen) == k:
            return chosen
    raise AssertionError("the map has too few separate clusters to lasso")


def lasso_and_label(j: Journey, project: Project, name: str, centre: np.ndarray,
                    radius: float) -> int:
    """Lasso the circle, create class `name` through "New class…", label the selection."""
    page = j.page
    dist = distances_px(page, load_map(project).layout, centre)
    assert room_px(page, centre) > radius + 2, f"the lasso around {name} would leave the plot"
    with j.step(f"lasso-{name}"):
        lasso_around(page, centre, radius)
        heading = page.get_by_role("heading", name="selected")
        heading.wait_for(timeout=60_000)
    n = int(heading.inner_text().split()[0].replace(",", ""))
    # the lasso is a 24-gon on the circle, drawn in whole pixels: it holds what lies well inside
    assert (dist < radius - 2).sum() <= n <= (dist < radius + 2).sum()
    name_box = page.get_by_label("New class name")
    if not name_box.is_visible():                        # classes exist: pick "New class…"
        choose(page, "Class", "+ New class…")
    name_box.fill(name)
    name_box.press("Enter")
    wait_until_idle(page)
    with j.step(f"label-{name}"):
        page.get_by_role("button", name=f"Label {n:,}").click()
        page.locator(".legendtext", has_text=f"{name} ({n:,})").wait_for(timeout=60_000)
    cid = next(c.id for c in list_classes(project.store) if c.name == name)
    labeled = current_labels(project.store) == cid
    assert labeled.sum() == n and (dist[labeled] < radius + 2).all()
    return n


def retrain(j: Journey, project: Project, n_labels: int) -> dict[str, float]:
    """Train page → Retrain → the live view → accuracy metrics → the run's preview grid."""
    page = j.page
    with j.step("train-page"):
        page.get_by_role("link", name="Train").click()
        button = page.get_by_role("button", name=f"Retrain on {n_labels:,} labels")
        button.wait_for(timeout=60_000)
    with j.step("training"):
        button.click()
        page.get_by_text(re.compile(r"Job \d+ \(train\)")).first.wait_for(timeout=60_000)
    with j.step("accuracy"):
        page.get_by_text("Test accuracy (ground truth)").first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    shown = {}
    for label in ("Validation accuracy", "Test accuracy (ground truth)"):
        metric = page.locator("[data-testid='stMetric']").filter(has_text=label)
        shown[label] = float(metric.locator("[data-testid='stMetricValue']").inner_text()
                             .strip().rstrip("%"))
    run = list_runs(project.store, 1)[0]                  # what the page shows is the run's own
    for label, key in (("Validation accuracy", "validation"),
                       ("Test accuracy (ground truth)", "test")):
        print(f"[{j.name}] {label}: {Accuracy(**run.summary[key])}")
        assert shown[label] == round(100 * run.summary[key]["value"], 1)
    with j.step("preview"):
        page.get_by_role("tab", name="Curves of this run").click()
        preview = page.get_by_test_id("stImage").filter(
            has_text="Random images of each class as the model labels them now")
        preview.last.locator("img").wait_for(timeout=60_000)   # the grid under its caption
    return shown


def export_csv(j: Journey, project: Project) -> list[dict]:
    """Export page → Download labels CSV; its rows are exactly the store's current labels."""
    page = j.page
    with j.step("export"):
        rows = download_labels_csv(page)
    labels = current_labels(project.store)
    names = {c.id: c.name for c in list_classes(project.store)}
    image_names = ImageCollection(project).names()
    assert sorted((int(r["image_id"]), r["label"], r["name"]) for r in rows) == [
        (int(i), names[labels[i]], image_names[i]) for i in np.flatnonzero(labels >= 0)]
    return rows


def label_two_clusters_and_train(j: Journey, project: Project) -> dict[str, float]:
    """The shared middle of both journeys: two lassoed classes named like the ground truth (so
    the Train page can show test accuracy), then Retrain."""
    clusters = pick_clusters(j.page, project)
    n_lassoed = sum(lasso_and_label(j, project, *cluster) for cluster in clusters)
    images = ImageCollection(project)
    held = training_labels(current_labels(project.store), sealed_mask(images, images.n_images))
    assert int((held.labels >= 0).sum()) + held.n_sealed == n_lassoed
    shown = retrain(j, project, int((held.labels >= 0).sum()))   # evaluation images never train
    assert shown["Test accuracy (ground truth)"] > 65     # two classes: chance is 50%
    return shown


@pytest.mark.timeout(1200)
def test_digits_journey(latentlab_home):
    with running_app(latentlab_home) as url, chromium_page(1400, 1000) as page:
        j = Journey(page, "digits")
        try:
            open_app(j, url)                              # the first start imports digits
            project = Project.named("digits")
            open_map(j)
            label_two_clusters_and_train(j, project)
            with j.step("samples"):
                page.get_by_role("link", name="Samples").click()
                page.get_by_role("heading", name="VAE samples per class").wait_for(timeout=60_000)
                page.get_by_text("Decoded from each class's region").wait_for(timeout=60_000)
            names = [c.name for c in list_classes(project.store)]
            captions = page.get_by_test_id("stImageCaption")
            for name in names:                            # a grid of samples for each class
                caption = re.compile(rf"^{re.escape(name)}( ·|$)")   # "2 · from 163 labeled images"
                assert captions.filter(has_text=caption).count() == 1, name
            export_csv(j, project)
        finally:
            j.report()


def shape_png(kind: str, rng: np.random.Generator, size: int = 28) -> bytes:
    """A white filled circle, hollow square or cross of random size and place on black."""
    im = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(im)
    r, (cx, cy) = rng.uniform(7, 11), rng.uniform(11, 17, 2)
    box = [cx - r, cy - r, cx + r, cy + r]
    if kind == "circle":
        draw.ellipse(box, fill=255)
    elif kind == "square":
        draw.rectangle(box, outline=255, width=3)
    else:
        draw.line(box, fill=255, width=3)
        draw.line([box[0], box[3], box[2], box[1]], fill=255, width=3)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def shapes_zip(path) -> None:
    """shapes/<class>/*.png (class folders give ground truth) plus the three CORRUPT files."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as z:
        for kind in SHAPES:
            for i in range(PER_SHAPE):
                z.writestr(f"shapes/{kind}/{kind}-{i:03d}.png", shape_png(kind, rng))
        whole = shape_png("circle", rng)
        z.writestr("shapes/circle/truncated.png", whole[:len(whole) // 2])
        z.writestr("shapes/square/empty.png", b"")
        z.writestr("shapes/cross/notes.png", b"a text file, not an image\n")


@pytest.mark.timeout(1200)
def test_uploaded_zip_journey(latentlab_home, tmp_path):
    archive = tmp_path / "shapes.zip"
    shapes_zip(archive)
    with running_app(latentlab_home) as url, chromium_page(1400, 1000) as page:
        j = Journey(page, "zip")
        try:
            open_app(j, url)
            with j.step("choose-zip"):
                page.get_by_text("Import images", exact=True).click()
                choose(page, "Source", "Upload a .zip")
                uploader = page.get_by_test_id("stFileUploader")
                uploader.wait_for(timeout=60_000)
                uploader.locator("input[type=file]").set_input_files(archive)
                uploader.get_by_text("shapes.zip").wait_for(timeout=60_000)
                wait_until_idle(page)
                page.get_by_test_id("stRadioGroup").get_by_text("a new project").click()
                page.get_by_label("New project name").fill("shapes")
                page.get_by_label("New project name").press("Enter")
            with j.step("imported"):
                page.get_by_role("button", name="Import", exact=True).click()
                page.get_by_role("heading", name="Images · shapes").wait_for(timeout=60_000)
                page.get_by_text(f"Last import: {3 * PER_SHAPE} images from zip:shapes.zip, "
                                 "3 files skipped") \
                    .wait_for(timeout=120_000)
            report = page.get_by_test_id("stExpander").filter(has_text="Last import").inner_text()
            for path, reason in CORRUPT.items():          # each bad file named, with its reason
                assert path in report and reason in report, (path, report)
            project = Project.named("shapes")
            assert ImageCollection(project).ground_truth_classes() == sorted(SHAPES)
            open_map(j)
            label_two_clusters_and_train(j, project)
            export_csv(j, project)
        finally:
            j.report()
