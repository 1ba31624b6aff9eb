"""Faults: what a killed app, a killed worker, a read-only folder and a full disk do to a project.

- kill -9 the app and a labeling process mid-stream, several times: every label whose
  acknowledgement was seen (the writer's ack line, the page's confirmation) is in the store
  exactly once, the database passes its integrity check, and the restarted app works.
- kill -9 a worker: the job shows failed and the pages keep working. (That a killed *training*
  keeps the last good model and a new retrain succeeds is test_trainjob.py's
  test_killed_training_fails_and_keeps_the_last_good_model.)
- A read-only project folder and a full disk, for real (tests/fault_scenarios.py, in a private
  mount namespace): a typed error that says so, a clear message on the page instead of a
  traceback, and nothing changed or half-written.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from browser import ARTIFACTS, BROWSER_USERS, chromium_page, free_port, screenshot, wait_until_idle
from conftest import REPO, TEST_WORKER, TESTS, require, tree_snapshot, worker_env
from fault_scenarios import APP_SESSION, integrity
from label_writer import check_acks, read_acks
from streamlit.testing.v1 import AppTest

from ssl_core.data.importer import import_source
from ssl_core.data.sources import SourceSpec
from ssl_core.features.choice import META_KEY, PIXELS
from ssl_core.jobs import records as jobs
from ssl_core.jobs import worker
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project

ROUNDS = 3
CLASSES = ("one", "two", "three")


def make_project(home: Path) -> Project:
    """Digits with three classes, 60 labels (30 of them by the app's browser session
    APP_SESSION, so the pages' undo has something to undo) and a stand-in map (the Map page needs one, and
    building a real one costs a VAE fit)."""
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    store = project.store
    # pixels, as chosen on the Images page: left on 'auto', a retrain compares pixels with
    # pretrained features on these (arbitrary) labels, and a win for the features would make
    # the next train job write a features file before its model (the full-disk scenario
    # expects the model write to be the one that fails)
    store.set_meta(META_KEY, PIXELS)
    ids = [label_classes.add_class(store, name).id for name in CLASSES]
    labels.set_labels(store, range(0, 30), ids[0])
    labels.set_labels(store, range(30, 60), ids[1], user=labels.session_user("guest", APP_SESSION))
    n = 1797
    rng = np.random.default_rng(0)
    np.save(project.layout_path, rng.normal(size=(n, 2)).astype(np.float32))
    np.save(project.latents_path, rng.normal(size=(n, 8)).astype(np.float32))
    project.map_meta_path.write_text(json.dumps({"n_images": n, "created": "stand-in"}))
    return project


# ---- kill -9 the app and a writer ---------------------------------------------------------------

def start_app(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` (like browser.running_app, but the test owns the process to
    SIGKILL it)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port",
                             str(port), "--server.headless", "true", "--server.fileWatcherType",
                             "none"], cwd=REPO, env=dict(os.environ, LATENTLAB_HOME=str(home)),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the app did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.3)


def confirmed_image(page) -> int | None:
    """The image the queue's last confirmation names ("Labeled image 12 as one"), if any."""
    shown = page.get_by_text(re.compile(r"Labeled image \d+ as one"))
    if shown.count() == 0:
        return None
    return int(re.search(r"Labeled image (\d+)", shown.first.inner_text()).group(1))


def open_queue(page, url: str) -> None:
    """The Label queue in its one-at-a-time view, with fresh random suggestions."""
    page.goto(url)
    page.get_by_role("heading", name="Images · digits").wait_for(timeout=90_000)
    page.get_by_role("link", name="Label queue").click()
    heading = page.get_by_role("heading", name="Label queue · digits")
    heading.wait_for(timeout=90_000)
    wait_until_idle(page, 90_000)
    page.get_by_role("radio", name="random").click()
    wait_until_idle(page, 90_000)
    heading.click()                                          # focus off the pills: keys work
    page.keyboard.press("n")
    page.get_by_text("Save 24").first.wait_for(timeout=60_000)
    wait_until_idle(page, 90_000)
    page.get_by_role("radio", name="One at a time").click()
    page.get_by_text(re.compile(r"\d+ of 24 labeled")).wait_for(timeout=60_000)
    page.get_by_role("button", name=re.compile(r"^one")).wait_for(timeout=60_000)
    wait_until_idle(page, 90_000)
    heading.click()
    wait_until_idle(page, 90_000)


def test_kill_9_of_the_app_and_a_writer_loses_no_acknowledged_label(tmp_path, latentlab_home):
    project = make_project(latentlab_home)
    store = project.store
    one, *rest = [c.id for c in label_classes.list_classes(store)]
    others = ",".join(map(str, rest))  # the writers never give "one": each "one" is the page's
    # The writers relabel images 600.. (labeled here first), so the queue, which suggests
    # unlabeled images, never shows one they could take from under a key press.
    labels.set_labels(store, range(600, 1797), rest[0], user="setup")
    seed = int(os.environ.get("LATENTLAB_FAULT_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    acks_file, log = tmp_path / "acks.jsonl", tmp_path / "streamlit.log"
    confirmed: list[int] = []          # images the page confirmed as labeled "one"
    killed_mid_action = 0
    with chromium_page(1400, 1000) as page:
        for r in range(ROUNDS):
            app, url = start_app(latentlab_home, log)
            writer = subprocess.Popen([sys.executable, str(TESTS / "label_writer.py"), str(project.root),
                                       str(acks_file), "--user", f"writer-{r}", "--actions", "0",
                                       "--seed", str(seed + r), "--classes", others,
                                       "--from-image", "600"])
            try:
                open_queue(page, url)
                page.keyboard.press("1")                           # label the image "one"...
                page.get_by_text(re.compile(r"Labeled image \d+ as one")).wait_for(timeout=60_000)
                first = confirmed_image(page)
                confirmed.append(first)
                wait_until_idle(page, 90_000)
                page.keyboard.press("1")                           # ...and one more, killed mid-way or not
                time.sleep(rng.uniform(0.0, 1.0))
            except Exception:
                screenshot(page, f"faults-kill-round-{r}-FAILED")
                raise
            finally:
                for proc in (app, writer):
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
            second = confirmed_image(page)
            if second is not None and second != first:
                confirmed.append(second)                           # confirmed before the kill
            else:
                killed_mid_action += 1
            screenshot(page, f"faults-kill-round-{r}")

        acks = read_acks(acks_file)
        writers = check_acks(store, acks)
        assert integrity(project.db_path) == "ok"
        assert not writers["lost"] and not writers["wrong"], writers
        assert writers["acknowledged"] >= ROUNDS
        with store.read() as conn:
            browser_actions = conn.execute(
                "SELECT e.image_id, COUNT(DISTINCT a.id) AS n FROM actions a JOIN label_events e "
                "ON e.action_id = a.id WHERE a.user LIKE ? AND e.class_id = ? GROUP BY e.image_id",
                (BROWSER_USERS, one)).fetchall()
            writer_actions = conn.execute("SELECT COUNT(*) FROM actions WHERE user LIKE 'writer-%'"
                                          ).fetchone()[0]
        per_image = {row["image_id"]: row["n"] for row in browser_actions}
        assert all(per_image.get(i) == 1 for i in confirmed), (confirmed, per_image)
        assert writer_actions >= len(acks)        # committed but killed before its ack: allowed

        app, url = start_app(latentlab_home, log)                  # the restarted app works
        try:
            page.goto(url)
            page.get_by_role("heading", name="Images · digits").wait_for(timeout=90_000)
            for link, heading in (("Classes", "Classes · digits"), ("Map", "Map · digits")):
                page.get_by_role("link", name=link).click()
                page.get_by_role("heading", name=heading).wait_for(timeout=90_000)
                wait_until_idle(page, 90_000)
                assert page.locator("[data-testid='stException']").count() == 0
            page.locator(".js-plotly-plot").first.wait_for(timeout=90_000)
            screenshot(page, "faults-restarted-map")
        finally:
            app.terminate()
            app.wait(timeout=30)
    figures = {"rounds": ROUNDS, "seed": seed, "writer_acks": writers["acknowledged"],
               "writer_acks_present": writers["present"], "writer_actions_in_store": writer_actions,
               "writer_events_acknowledged": writers["events_acknowledged"],
               "browser_confirmed": len(confirmed), "browser_present": sum(per_image.get(i) == 1 for i in confirmed),
               "browser_killed_mid_action": killed_mid_action,
               "lost": len(writers["lost"]) + len(writers["wrong"])}
    print("kill -9 faults:", json.dumps(figures))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "faults.json").write_text(json.dumps(figures) + "\n")


# ---- kill -9 a worker: the app keeps working ----------------------------------------------------

def test_pages_keep_working_after_a_worker_is_killed(latentlab_home):
    project = Project.named("digits")
    import_source(project, SourceSpec("digits"))
    job_id = worker.launch(project, "test.sleep", {"seconds": 120}, env=worker_env(), module=TEST_WORKER)
    deadline = time.monotonic() + 120
    while (job := jobs.get_job(project.store, job_id)).status is not jobs.JobStatus.RUNNING or not job.progress:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    with project.store.read() as conn:
        pid = conn.execute("SELECT pid FROM jobs WHERE id = ?", (job_id,)).fetchone()["pid"]
    os.kill(pid, signal.SIGKILL)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/jobs.py").run()
    deadline = time.monotonic() + 60
    while not jobs.get_job(project.store, job_id).status.finished:     # reaped within seconds
        assert time.monotonic() < deadline
        time.sleep(0.5)
        at.run()
    at.run()      # get_job above may itself have reaped the job after the page's last render
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    row = table[table["id"] == job_id].iloc[0]
    assert row["status"] == "failed" and "stopped responding" in row["error"]
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    again = worker.launch(project, "test.sleep", {"seconds": 0.5}, env=worker_env(), module=TEST_WORKER)
    deadline = time.monotonic() + 120
    while not (job := jobs.get_job(project.store, again)).status.finished:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.error


# ---- read-only folder, full disk ---------------------------------------------------------------

def private_mounts(scratch: Path) -> list[str] | None:
    """A command prefix that runs a program in its own mount namespace where it may mount a
    tmpfs (unprivileged through a user namespace, or as root); None where neither works."""
    if shutil.which("unshare") is None:
        return None
    probe = scratch / "probe"
    probe.mkdir(exist_ok=True)
    for prefix in (["unshare", "-Urm"], ["unshare", "-m"]):
        done = subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                              capture_output=True)
        if done.returncode == 0:
            return prefix
    return None


def run_scenario(name: str, home: Path, tmp_path: Path) -> dict:
    prefix = private_mounts(tmp_path)
    require(prefix is not None, "a private mount namespace (unshare -Urm) for a real read-only "
                                "folder and a full disk")
    out = tmp_path / f"{name}.json"
    done = subprocess.run([*prefix, sys.executable, str(TESTS / "fault_scenarios.py"), name,
                           str(home), str(out)], capture_output=True, text=True, timeout=540,
                          env=worker_env(LATENTLAB_HOME=str(home)))
    assert done.returncode == 0 and out.is_file(), done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert "crashed" not in report, report.get("crashed")
    print(f"{name}:", json.dumps(report, indent=1)[:4000])
    return report


def page_said(step: dict, words: str) -> bool:
    """The page showed an error saying `words` (markdown escapes aside), and no exception."""
    plain = [e.replace("\\", "").replace("\u200b", "") for e in step["errors"]]
    return not step["exceptions"] and any(words in e for e in plain)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_only_project_folder_says_so_and_writes_nothing(latentlab_home, tmp_path):
    project = make_project(latentlab_home)
    before, db = tree_snapshot(project.root), digest(project.db_path)
    report = run_scenario("readonly", latentlab_home, tmp_path)
    assert report["labeled"] == 60                               # the project can still be read
    for call in ("set_labels", "add_class", "undo"):
        assert report[call]["type"] == "StoreError" and "read-only" in report[call]["message"], call
    pages = report["pages"]
    assert not pages["start"]["errors"] and not pages["start"]["exceptions"]
    for step in ("classes_add", "queue_label", "map_undo"):
        assert page_said(pages[step], "is read-only"), (step, pages[step])
    assert tree_snapshot(project.root) == before and digest(project.db_path) == db


def test_full_disk_while_labeling_says_so_and_keeps_the_labels(latentlab_home, tmp_path):
    make_project(latentlab_home)
    report = run_scenario("full_label", latentlab_home, tmp_path)
    assert report["set_labels"]["type"] == "StoreError" and "is full" in report["set_labels"]["message"]
    assert report["add_class"] is None or "is full" in report["add_class"]["message"]
    pages = report["pages"]
    assert not pages["start"]["exceptions"]
    for step in ("queue_label", "map_undo"):
        assert page_said(pages[step], "is full"), (step, pages[step])
    assert report["unchanged"] and report["integrity"] == "ok"
    expected = {"project.db", "images.npy", "layout.npy", "latents.npy", "map.json", "filler.bin",
                "project.db-wal", "project.db-shm"}
    assert set(report["files_when_full"]) <= expected, report["files_when_full"]
    after = report["after_space"]                                 # freed: the retry goes through once
    assert after["n"] == after["expected"] and after["retry_duplicate"] and after["all_labeled"]


def test_full_disk_during_training_keeps_the_last_model_and_predictions(latentlab_home, tmp_path):
    project = make_project(latentlab_home)
    good = jobs.create_job(project.store, "train", {"method": "baseline", "budget_s": 3,
                                                    "compare_baseline": False})
    worker.run_job(project, good)
    assert jobs.get_job(project.store, good).status is jobs.JobStatus.SUCCEEDED
    report = run_scenario("full_train", latentlab_home, tmp_path)
    job = report["job"]
    assert job["status"] == "failed" and "is full" in job["error"] and "model" in job["error"], job
    assert (report["save_predictions"]["type"] == "FileWriteError"
            and "is full" in report["save_predictions"]["message"])
    assert report["predictions_unchanged"] and report["predictions_load"]
    assert report["models_after"] == report["models_before"]      # no new or half-written model
    assert not [f for f in report["root_files"] if "tmp" in f], report["root_files"]
    assert report["integrity"] == "ok"


def test_full_disk_during_an_import_keeps_the_images(latentlab_home, tmp_path):
    make_project(latentlab_home)
    report = run_scenario("full_import", latentlab_home, tmp_path)
    job = report["job"]
    assert job["status"] == "failed" and "is full" in job["error"], job
    assert report["n_unchanged"] and report["pixels_unchanged"] and report["integrity"] == "ok"
    assert not [f for f in report["root_files"] if "tmp" in f], report["root_files"]
    after = report["after_space"]
    assert after["status"] == "succeeded" and after["n"] == 2 * after["n_before"]


def test_full_disk_while_building_the_map_keeps_the_previous_map(latentlab_home, tmp_path):
    make_project(latentlab_home)
    report = run_scenario("full_map", latentlab_home, tmp_path)
    job = report["job"]
    assert job["status"] == "failed" and "is full" in job["error"] and "map" in job["error"], job
    assert report["map_unchanged"] and report["integrity"] == "ok"
    assert not [f for f in report["root_files"] if "tmp" in f or ".new-" in f], report["root_files"]
    assert not report["models"], report["models"]                 # no half-written VAE either
    after = report["after_space"]                                 # space back: the rebuild works
    assert after["status"] == "succeeded" and after["map_changed"], after
    assert not [f for f in after["root_files"] if "tmp" in f or ".new-" in f or ".old-" in f]
