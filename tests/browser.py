"""Real-browser helpers: start the app on a free port and drive it with Playwright + Chromium.

Screenshots go to test-artifacts/ (kept by CI) so a person can look at what the tests saw."""
from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from conftest import REPO, require

from ssl_core.labeling.label_log import SESSION_MARK

ARTIFACTS = REPO / "test-artifacts"
# who labels from a browser tab nobody named: each session records itself as
# "guest · session <id>" (ui/session.py), so tests match all of them with LIKE
BROWSER_USERS = "guest" + SESSION_MARK + "%"
CHROMIUM = os.environ.get("LATENTLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(home: Path, timeout_s: float = 90):
    """`streamlit run app.py` against a private LATENTLAB_HOME; yields the base URL."""
    port = free_port()
    env = dict(os.environ, LATENTLAB_HOME=str(home))
    log = open(home.parent / f"streamlit-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py",
                             "--server.port", str(port), "--server.headless", "true",
                             "--server.fileWatcherType", "none"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the app did not start:\n"
                                       + Path(log.name).read_text()[-3000:])
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    require(Path(CHROMIUM).is_file(), f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_until_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit reports its script as finished (the stApp element carries the
    script state). After a click, wait for the content it brings too: the state can still
    read 'notRunning' for a moment before the rerun starts."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           timeout=timeout_ms)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_for_plot(page, timeout_ms: int = 60_000) -> None:
    """Wait until the page's Plotly chart has laid out its axes and drawn its points."""
    page.locator(".js-plotly-plot").first.wait_for(timeout=timeout_ms)
    page.wait_for_function("""() => { const gd = document.querySelector('.js-plotly-plot');
        return gd && gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length > 100
               && gd.querySelectorAll('.scatterlayer, canvas').length > 0; }""", timeout=timeout_ms)
    page.wait_for_timeout(1000)                           # let WebGL finish its first draw


def plot_pixels(page, xy) -> np.ndarray:
    """(N, 2) page pixels of the data points xy (N, 2) on the page's Plotly chart, from its own
    axes (so they follow zoom, legend width and window size)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    return np.array(page.evaluate("""([xs, ys]) => {
        const gd = document.querySelector('.js-plotly-plot');
        const fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return xs.map((x, i) => [r.left + fl._size.l + fl.xaxis.l2p(x),
                                 r.top + fl._size.t + fl.yaxis.l2p(ys[i])]);
    }""", [xy[:, 0].tolist(), xy[:, 1].tolist()]), np.float64).reshape(-1, 2)


def lasso_around(page, xy_data, radius_px: float = 40.0, n: int = 24) -> None:
    """Drag a lasso circle of `radius_px` around the data point `xy_data` on the Plotly chart
    (the chart must start in lasso mode)."""
    cx, cy = plot_pixels(page, xy_data)[0]
    drag_ellipse(page, cx, cy, radius_px, radius_px, n)


def drag_ellipse(page, cx: float, cy: float, rx: float, ry: float, n: int = 24) -> None:
    """Drag the mouse once round an ellipse of n segments centred on page pixel (cx, cy)."""
    page.mouse.move(cx + rx, cy)
    page.mouse.down()
    for k in range(1, n + 1):
        a = 2 * math.pi * k / n
        page.mouse.move(cx + rx * math.cos(a), cy + ry * math.sin(a), steps=2)
    page.mouse.up()


def download_labels_csv(page) -> list[dict]:
    """Export page -> "Download labels CSV" -> the downloaded file's rows."""
    page.get_by_role("link", name="Export").click()
    button = page.get_by_role("button", name="Download labels CSV")
    button.wait_for(timeout=60_000)
    wait_until_idle(page)
    with page.expect_download() as info:
        button.click()
    return list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))


def open_queue_one_at_a_time(page, project_name: str, n: int = 24) -> None:
    """From any page: Label queue -> random strategy -> N (suggest n) -> the one-at-a-time view,
    with the focus off every widget so key presses reach the page."""
    heading = page.get_by_role("heading", name=f"Label queue · {project_name}")
    page.get_by_role("link", name="Label queue").click()
    heading.wait_for(timeout=60_000)
    wait_until_idle(page)
    page.get_by_role("radio", name="random").click()
    wait_until_idle(page)
    heading.click()
    page.keyboard.press("n")
    page.get_by_text(f"Save {n}").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    page.get_by_role("radio", name="One at a time").click()
    page.get_by_text(f"0 of {n} labeled").wait_for(timeout=30_000)
    wait_until_idle(page)
    heading.click()


# Label-queue key presses watched from the page (tests/test_load.py, tests/test_soak.py).
# After a key press: {done: "Labeled image 12 as two "} once a new confirmation for this
# session's class shows, or {dropped: ...} when the script finished showing another image
# without one (the image was labeled in another session meanwhile: the page's buttons are keyed
# by image, so the press is ignored by design).
OUTCOME = """([name, before, shownBefore]) => {
    const m = document.body.innerText.match(new RegExp('Labeled image (\\\\d+) as ' + name + ' '));
    if (m && m[0] !== before) return {done: m[0]};
    const img = document.querySelector("[data-testid='stImage']");
    const shown = img ? img.innerText.trim() : null;
    const idle = document.querySelector("[data-testid='stApp'][data-test-script-state='notRunning']");
    return idle && shown !== shownBefore ? {dropped: shown} : null; }"""
SHOWN = """() => { const img = document.querySelector("[data-testid='stImage']");
                   return img ? img.innerText.trim() : null; }"""
