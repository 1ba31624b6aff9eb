"""Load: 8 labeling processes and 3 real browser sessions label one project at the same time.

The writers (tests/label_writer.py) commit label actions through ssl_core.labeling.label_log, each with its
own action uuid, and send every tenth one twice as a client whose reply was lost would; the
browser sessions (one Chromium, three contexts, so three Streamlit sessions) label through the
Label queue's one-at-a-time view by key presses. Then every acknowledged action must be in the
store exactly once with the events it reported, every page confirmation must be one action with
one event, and nothing else may be there. Latencies are printed and written to
test-artifacts/load.json: browser key press -> confirmation visible, writer call -> committed.
The machine these run on is small and shared, so correctness is asserted strictly and speed
only loosely (p95 under 10 s); the printed figures are the result.
"""
import asyncio
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser import ARTIFACTS, BROWSER_USERS, CHROMIUM, CHROMIUM_ARGS, OUTCOME, SHOWN, running_app
from conftest import TESTS, require
from label_writer import check_acks, read_acks

from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project

WRITERS, ACTIONS, RETRY_EVERY = 8, 200, 10
SESSIONS = ("one", "two", "three")      # session k presses key k+1: its own class
WRITER_CLASSES = ("four", "five", "six")
FROM_IMAGE = 600                        # writers label images 600..1796; the queue keeps 0..599
MIN_CLICKS, MAX_CLICKS = 6, 30          # per session: at least this many, more while writers run
TIMEOUT_MS = 90_000


@pytest.fixture
def shared_project(latentlab_home) -> Project:
    """Digits with the sessions' and the writers' classes. The writers' images start labeled,
    so the queue (which suggests unlabeled images) never shows one a writer is relabeling."""
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    ids = [label_classes.add_class(project.store, name).id for name in SESSIONS + WRITER_CLASSES]
    labels.set_labels(project.store, range(FROM_IMAGE, 1797), ids[len(SESSIONS)], user="setup")
    return project


def stats(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(ordered), "median_s": round(statistics.median(ordered), 4),
            "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
            "max_s": round(ordered[-1], 4)}


async def idle(page) -> None:
    await page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                                 timeout=TIMEOUT_MS)


async def ready_queue(page, url: str) -> None:
    """The Label queue, one image at a time, with random suggestions and the focus on the page."""
    await page.goto(url)
    await page.get_by_role("heading", name="Images · digits").wait_for(timeout=TIMEOUT_MS)
    await page.get_by_role("link", name="Label queue").click()
    heading = page.get_by_role("heading", name="Label queue · digits")
    await heading.wait_for(timeout=TIMEOUT_MS)
    await idle(page)
    await page.get_by_role("radio", name="random").click()
    await idle(page)
    await heading.click()
    await page.keyboard.press("n")
    await page.get_by_text("Save 24").first.wait_for(timeout=TIMEOUT_MS)
    await idle(page)
    await page.get_by_role("radio", name="One at a time").click()
    await page.get_by_role("button", name=re.compile(r"^one")).wait_for(timeout=TIMEOUT_MS)
    await idle(page)
    await heading.click()
    await idle(page)




async def label_loop(page, key: str, name: str, writers_running, dropped: list) -> list:
    """Press `key` on the current image until done; returns (image, latency s, time) per
    confirmation, and appends a press that found its image gone to `dropped`. Asks for new
    suggestions (N) when the queue runs dry."""
    done, before = [], None
    while len(done) < MAX_CLICKS and (len(done) < MIN_CLICKS or writers_running()):
        if await page.get_by_text("suggested images are labeled").count():
            await page.keyboard.press("n")
            await page.get_by_role("button", name=re.compile(r"^one")).wait_for(timeout=TIMEOUT_MS)
            await idle(page)
        shown = await page.evaluate(SHOWN)
        t0 = time.perf_counter()
        await page.keyboard.press(key)
        handle = await page.wait_for_function(OUTCOME, arg=[name, before, shown], timeout=TIMEOUT_MS)
        latency = time.perf_counter() - t0
        outcome = await handle.json_value()
        if "done" in outcome:
            before = outcome["done"]
            done.append((int(re.search(r"\d+", before).group()), latency, time.time()))
        else:
            dropped.append(shown)
        await idle(page)
    return done


async def browse(url: str, writers_running, start_writers, dropped: list) -> list:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pages = [await (await browser.new_context(viewport={"width": 1300, "height": 900})
                            ).new_page() for _ in SESSIONS]
            await asyncio.gather(*(ready_queue(page, url) for page in pages))
            start_writers()                           # now everybody labels at once
            return await asyncio.gather(*(label_loop(page, str(k + 1), name, writers_running, dropped)
                                          for k, (page, name) in enumerate(zip(pages, SESSIONS))))
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            for k, page in enumerate(pages):
                await page.screenshot(path=str(ARTIFACTS / f"load-session-{k}-FAILED.png"), full_page=True)
            raise
        finally:
            await browser.close()


def test_eight_writers_and_three_browser_sessions_record_every_label_once(shared_project, tmp_path):
    require(Path(CHROMIUM).is_file(), f"Chromium at {CHROMIUM}")
    project, store = shared_project, shared_project.store
    ids = {c.name: c.id for c in label_classes.list_classes(store)}
    writers: list[subprocess.Popen] = []
    span, dropped = {}, []

    def start_writers() -> None:
        span["start"] = time.time()
        for w in range(WRITERS):
            writers.append(subprocess.Popen(
                [sys.executable, str(TESTS / "label_writer.py"), str(project.root),
                 str(tmp_path / f"acks-{w}.jsonl"), "--user", f"load-w{w}", "--actions", str(ACTIONS),
                 "--seed", str(w), "--retry-every", str(RETRY_EVERY), "--from-image", str(FROM_IMAGE),
                 "--classes", ",".join(str(ids[c]) for c in WRITER_CLASSES)]))

    def writers_running() -> bool:
        running = [w for w in writers if w.poll() is None]
        if not running and "end" not in span:
            span["end"] = time.time()
        return bool(running)

    try:
        with running_app(project.root.parent.parent) as url:
            sessions = asyncio.run(browse(url, writers_running, start_writers, dropped))
            for w in writers:
                assert w.wait(timeout=600) == 0
            writers_running()
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()

    # Writers: each acknowledged action once, with its events; retries recorded once.
    acks = [a for w in range(WRITERS) for a in read_acks(tmp_path / f"acks-{w}.jsonl")]
    check = check_acks(store, acks)
    assert check["acknowledged"] == WRITERS * ACTIONS
    assert not check["lost"] and not check["wrong"], check
    retries = [a["retry_dup"] for a in acks if a["retry_dup"] is not None]
    assert len(retries) == WRITERS * ACTIONS // RETRY_EVERY and all(retries)
    with store.read() as conn:
        n_writer_actions = conn.execute("SELECT COUNT(*) FROM actions WHERE user LIKE 'load-w%'"
                                        ).fetchone()[0]
        n_writer_events = conn.execute("SELECT COUNT(*) FROM label_events WHERE user LIKE 'load-w%'"
                                       ).fetchone()[0]
        browser_rows = conn.execute(
            "SELECT a.id, e.image_id, e.class_id FROM actions a JOIN label_events e "
            "ON e.action_id = a.id WHERE a.user LIKE ?", (BROWSER_USERS,)).fetchall()
        n_browser_actions = conn.execute("SELECT COUNT(*) FROM actions WHERE user LIKE ?",
                                         (BROWSER_USERS,)).fetchone()[0]
    assert n_writer_actions == WRITERS * ACTIONS                 # nothing beyond the acks
    assert n_writer_events == check["events_acknowledged"]
    # Browser sessions: each confirmation is one action with one event, of the session's class.
    assert n_browser_actions == len(browser_rows) == sum(len(s) for s in sessions)
    for name, done in zip(SESSIONS, sessions):
        mine = sorted(r["image_id"] for r in browser_rows if r["class_id"] == ids[name])
        assert mine == sorted(image for image, _, _ in done), name
    conn = sqlite3.connect(project.db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    browser_latency = [lat for s in sessions for _, lat, _ in s]
    during = sum(span["start"] <= t <= span["end"] for s in sessions for _, _, t in s)
    figures = {
        "writers": WRITERS, "sessions": len(SESSIONS), "writer_actions": len(acks),
        "writer_retries": len(retries), "writer_events": check["events_acknowledged"],
        "writer_actions_in_store": n_writer_actions, "lost": len(check["lost"]) + len(check["wrong"]),
        "browser_actions": len(browser_latency), "browser_actions_in_store": n_browser_actions,
        "browser_actions_while_writers_ran": during,
        "browser_presses_on_an_image_another_session_took": len(dropped),
        "writers_wall_s": round(span["end"] - span["start"], 2),
        "writer_actions_per_s": round(len(acks) / (span["end"] - span["start"]), 1),
        "writer_commit": stats([a["s"] for a in acks]), "browser_key_to_confirmation": stats(browser_latency),
    }
    print("load:", json.dumps(figures))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(figures) + "\n")
    assert during >= len(SESSIONS)                  # the sessions really labeled alongside the writers
    assert figures["browser_key_to_confirmation"]["p95_s"] < 10
