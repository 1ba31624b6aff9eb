"""Storage faults for real, in a private mount namespace: a read-only project folder and a full
disk. tests/test_faults.py runs this script under `unshare -Urm` (a user and mount namespace:
root inside, no privilege outside), so the read-only bind mount and the tiny tmpfs are real
kernel faults (EROFS, ENOSPC), they bind even root, and they vanish when the script exits.

    python tests/fault_scenarios.py SCENARIO LATENTLAB_HOME OUT_JSON

SCENARIO is one of SCENARIOS below. Each works on the project <home>/projects/digits (made by
the test: classes, some labels, a map, and for `full_train` a trained model) and writes what it
saw to OUT_JSON: error types and messages, what the pages showed, and whether anything changed
or was left half-written. The test asserts on that report.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from ssl_core.data.collection import ImageCollection  # noqa: E402
from ssl_core.jobs import records as jobs  # noqa: E402
from ssl_core.jobs import worker  # noqa: E402
from ssl_core.labeling import classes as label_classes  # noqa: E402
from ssl_core.labeling import label_log as labels  # noqa: E402
from ssl_core.project.folder import Project  # noqa: E402
from ssl_core.results.predictions import (  # noqa: E402
    load_predictions,
    predictions_path,
    save_predictions,
)

TMPFS_BYTES = 8 << 20   # the "disk" of the full-disk scenarios


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def failure(call) -> dict | None:
    """Run `call`; None when it worked, else the exception's type and message."""
    try:
        call()
    except Exception as err:
        return {"type": type(err).__name__, "message": str(err)}
    return None


def on_tiny_disk(root: Path) -> None:
    """Move the project folder onto a tmpfs of TMPFS_BYTES mounted over it."""
    stage = root.with_name(root.name + ".stage")
    shutil.copytree(root, stage)
    mount("-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(root))
    shutil.copytree(stage, root, dirs_exist_ok=True)
    shutil.rmtree(stage)


def fill(root: Path, leave: int, name: str = "filler.bin") -> Path:
    """Fill the disk under `root`, then give `leave` bytes back; returns the filler file."""
    filler = root / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(1 << 16))
    except OSError:
        pass
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError:
        pass
    os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    os.close(fd)
    return filler


# the browser session that labeled 30 of the fixture's images (tests/test_faults.py make_project):
# undo is scoped to a session, so the pages' Undo has something to write only as that session
APP_SESSION = "faults00"


def app_pages(project: Project) -> dict:
    """Drive the labeling pages with AppTest: add a class, label the queue's image by its
    button, undo on the Map page. Returns what each showed: errors and exceptions."""
    from streamlit.testing.v1 import AppTest

    def seen(at) -> dict:
        return {"errors": [e.value for e in at.error], "exceptions": [str(e.value) for e in at.exception],
                "titles": [t.value for t in at.title]}

    out = {}
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.session_state["session_id"] = APP_SESSION     # its undo has the fixture's labels to take back
    at.run()
    out["start"] = seen(at)
    at.switch_page("pages/classes.py").run()
    at.text_input[0].input("cat")
    at.button(key="FormSubmitter:add_class-Add class").click().run()
    out["classes_add"] = seen(at)

    y = labels.current_labels(project.store)
    image = int(np.flatnonzero(y < 0)[0])
    first = label_classes.list_classes(project.store)[0].id
    at.switch_page("pages/queue.py")
    at.session_state["suggested"] = [image]
    at.run()
    at.segmented_control(key="queue_view").set_value("One at a time").run()
    at.button(key=f"qk-{image}-c{first}").click().run()
    out["queue_label"] = seen(at)

    at.switch_page("pages/map.py").run()
    at.button(key="undo_empty").click().run()
    out["map_undo"] = seen(at)
    return out


def readonly(project: Project) -> dict:
    root = project.root
    mount("--bind", str(root), str(root))
    mount("-o", "remount,ro,bind", str(root))
    store = project.store
    first = label_classes.list_classes(store)[0].id
    return {"labeled": int((labels.current_labels(store) >= 0).sum()),    # reads still work
            "set_labels": failure(lambda: labels.set_labels(store, [5], first, action_uuid="ro-1")),
            "add_class": failure(lambda: label_classes.add_class(store, "new")),
            "undo": failure(lambda: labels.undo_last(store)),
            "pages": app_pages(project)}


def full_label(project: Project) -> dict:
    root = project.root
    on_tiny_disk(root)
    store = project.store
    before = labels.current_labels(store)
    first = label_classes.list_classes(store)[0].id
    filler = fill(root, leave=40 << 10)    # room for SQLite's 32 KiB -shm, not for a commit
    everything = list(range(len(before)))
    out = {"set_labels": failure(lambda: labels.set_labels(store, everything, first,
                                                          action_uuid="full-1")),
           "add_class": failure(lambda: label_classes.add_class(store, "new")),
           "pages": app_pages(project)}
    out["unchanged"] = bool(np.array_equal(labels.current_labels(store), before))
    out["integrity"] = integrity(project.db_path)
    out["files_when_full"] = files(root)
    filler.unlink()                        # space again: the same action now goes through once
    result = labels.set_labels(store, everything, first, action_uuid="full-1")
    again = labels.set_labels(store, everything, first, action_uuid="full-1")
    out["after_space"] = {"n": result.n_images, "expected": int((before != first).sum()),
                          "retry_duplicate": again.duplicate,
                          "all_labeled": bool((labels.current_labels(store) == first).all())}
    return out


def full_train(project: Project) -> dict:
    root = project.root
    pred_before = sha256(predictions_path(project))
    models_before = files(project.models_dir)
    on_tiny_disk(root)
    fill(root, leave=256 << 10)            # room for the job's database writes, not a model
    job_id = jobs.create_job(project.store, "train", {"method": "baseline", "budget_s": 3,
                                                      "compare_baseline": False})
    worker.run_job(project, job_id)
    job = jobs.get_job(project.store, job_id)
    out = {"job": {"status": job.status.value, "error": job.error}}
    proba = np.full((ImageCollection(project).n_images, 3), 1 / 3, np.float32)
    full = fill(root, leave=0, name="filler2.bin")                   # now completely full
    out["save_predictions"] = failure(lambda: save_predictions(project, proba, np.arange(3), None, "x"))
    full.unlink()                         # (the database's -shm needs a little room to be read)
    out["predictions_unchanged"] = sha256(predictions_path(project)) == pred_before
    out["models_before"], out["models_after"] = models_before, files(project.models_dir)
    out["root_files"] = files(root)
    out["integrity"] = integrity(project.db_path)
    pred = load_predictions(project)
    out["predictions_load"] = pred is not None and pred.proba.shape[1] != 3
    return out


def full_import(project: Project) -> dict:
    root = project.root
    images = ImageCollection(project)
    n_before, pixels_before = images.n_images, sha256(project.images_path)
    on_tiny_disk(root)
    filler = fill(root, leave=160 << 10)   # the database's writes fit, a second copy of the images not
    job_id = jobs.create_job(project.store, "import", {"source": {"kind": "digits"}})
    worker.run_job(project, job_id)
    job = jobs.get_job(project.store, job_id)
    out = {"job": {"status": job.status.value, "error": job.error},
           "n_unchanged": images.n_images == n_before,
           "pixels_unchanged": sha256(project.images_path) == pixels_before,
           "root_files": files(root), "integrity": integrity(project.db_path)}
    filler.unlink()
    job_id = jobs.create_job(project.store, "import", {"source": {"kind": "digits"}})
    worker.run_job(project, job_id)
    out["after_space"] = {"status": jobs.get_job(project.store, job_id).status.value,
                          "n": images.n_images, "n_before": n_before}
    return out


def full_map(project: Project) -> dict:
    root = project.root
    kept = (project.layout_path, project.latents_path, project.map_meta_path)
    before = [sha256(p) for p in kept]
    on_tiny_disk(root)
    filler = fill(root, leave=256 << 10)   # room for the job's database writes, not a VAE
    params = {"vae": {"epochs": 1}, "vae_budget_s": 5}
    job_id = jobs.create_job(project.store, "map", params)
    worker.run_job(project, job_id)
    job = jobs.get_job(project.store, job_id)
    out = {"job": {"status": job.status.value, "error": job.error},
           "map_unchanged": [sha256(p) for p in kept] == before,
           "models": files(project.models_dir), "root_files": files(root),
           "integrity": integrity(project.db_path)}
    filler.unlink()
    job_id = jobs.create_job(project.store, "map", params)
    worker.run_job(project, job_id)
    out["after_space"] = {"status": jobs.get_job(project.store, job_id).status.value,
                          "map_changed": [sha256(p) for p in kept] != before,
                          "root_files": files(root)}
    return out


SCENARIOS = {"readonly": readonly, "full_label": full_label, "full_train": full_train,
             "full_import": full_import, "full_map": full_map}


def main() -> int:
    name, home, out_path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    os.environ["LATENTLAB_HOME"] = str(home)
    try:
        report = SCENARIOS[name](Project.open(home / "projects" / "digits"))
    except Exception:
        report = {"crashed": traceback.format_exc()}
    out_path.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
