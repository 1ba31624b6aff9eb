"""The label event log: current labels, undo, idempotent retries, concurrent writers, crashes."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import REPO

from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.labeling.classes import LabelError


def test_events_give_current_labels(digits_project):
    s = digits_project.store
    cat, dog = label_classes.add_class(s, "cat"), label_classes.add_class(s, "dog")
    labels.set_labels(s, [1, 2, 3], cat.id)
    labels.set_labels(s, [3, 4], dog.id)
    labels.set_labels(s, [1], None)  # clear
    y = labels.current_labels(s)
    assert y.shape == (1797,)
    assert (y[[2, 3, 4]] == [cat.id, dog.id, dog.id]).all()
    assert y[1] == -1 and (y >= 0).sum() == 3


def test_unchanged_images_get_no_event(digits_project):
    s = digits_project.store
    cat = label_classes.add_class(s, "cat")
    assert labels.set_labels(s, [1, 2], cat.id).n_images == 2
    assert labels.set_labels(s, [1, 2, 3], cat.id).n_images == 1


def test_undo_restores_previous_labels(digits_project):
    s = digits_project.store
    a, b = label_classes.add_class(s, "a"), label_classes.add_class(s, "b")
    labels.set_labels(s, [1, 2], a.id)
    labels.set_labels(s, [2, 3], b.id)
    assert labels.undo_last(s).n_images == 2
    y = labels.current_labels(s)
    assert (y[[1, 2, 3]] == [a.id, a.id, -1]).all()
    labels.undo_last(s)
    assert (labels.current_labels(s) == -1).all()
    assert labels.undo_last(s) is None
    history = labels.label_history(s)
    assert [h["kind"] for h in history] == ["undo", "undo", "label", "label"]
    assert all(h["undone"] for h in history if h["kind"] == "label")


def test_undo_is_per_user_and_keeps_later_work_of_others(digits_project):
    s = digits_project.store
    a, b = label_classes.add_class(s, "a"), label_classes.add_class(s, "b")
    labels.set_labels(s, [1, 2], a.id, user="ann")
    labels.set_labels(s, [2], b.id, user="bob")
    labels.undo_last(s, user="ann")  # image 2 now belongs to bob's later action
    y = labels.current_labels(s)
    assert y[1] == -1 and y[2] == b.id


def test_retried_action_is_recorded_once(digits_project):
    s = digits_project.store
    a = label_classes.add_class(s, "a")
    first = labels.set_labels(s, [5, 6], a.id, action_uuid="same")
    again = labels.set_labels(s, [5, 6], a.id, action_uuid="same")
    assert not first.duplicate and again.duplicate and again.action_id == first.action_id
    assert len(labels.label_history(s)) == 1


def test_bad_requests_are_clear_errors(digits_project):
    s = digits_project.store
    a = label_classes.add_class(s, "a")
    with pytest.raises(LabelError, match="nothing is selected"):
        labels.set_labels(s, [], a.id)
    with pytest.raises(LabelError, match="no class"):
        labels.set_labels(s, [1], 999)
    with pytest.raises(LabelError, match="0..1796"):
        labels.set_labels(s, [5000], a.id)
    with pytest.raises(LabelError, match="empty"):
        label_classes.add_class(s, "   ")
    b = label_classes.add_class(s, "b")
    with pytest.raises(LabelError, match="already exists"):
        label_classes.rename_class(s, b.id, "a")
    assert label_classes.add_class(s, "a").id == a.id  # same name -> same class


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from ssl_core.project.folder import Project
    from ssl_core.labeling import classes as label_classes, label_log as labels
    store = Project.open(sys.argv[1]).store
    worker = int(sys.argv[2])
    cls = label_classes.add_class(store, f"class-{{worker % 3}}")
    for k in range(int(sys.argv[3])):
        labels.set_labels(store, [worker * 100 + k], cls.id, user=f"w{{worker}}",
                          action_uuid=f"w{{worker}}-{{k}}")
""")


def test_concurrent_writer_processes_lose_nothing(digits_project, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO)))
    n_writers, n_actions = 8, 25
    procs = [subprocess.Popen([sys.executable, str(script), str(digits_project.root), str(w),
                               str(n_actions)]) for w in range(n_writers)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    y = labels.current_labels(digits_project.store)
    expected = {w * 100 + k for w in range(n_writers) for k in range(n_actions)}
    assert set(np.flatnonzero(y >= 0)) == expected
    with digits_project.store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == len(expected)
        assert conn.execute("SELECT COUNT(*) FROM actions").fetchone()[0] == len(expected)


HALF_WRITE = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from ssl_core.project.folder import Project
    store = Project.open(sys.argv[1]).store
    with store.write() as conn:
        cur = conn.execute("INSERT INTO actions (uuid, kind, user, ts) VALUES ('x', 'label', 'k', 0)")
        conn.execute("INSERT INTO label_events (action_id, image_id, class_id, user, ts) "
                     "VALUES (?, 7, 1, 'k', 0)", (cur.lastrowid,))
        print("inside", flush=True)
        time.sleep(60)
""")


def test_writer_killed_mid_transaction_leaves_nothing_and_no_lock(digits_project, tmp_path):
    s = digits_project.store
    a = label_classes.add_class(s, "a")
    labels.set_labels(s, [1], a.id)
    script = tmp_path / "half.py"
    script.write_text(HALF_WRITE.format(repo=str(REPO)))
    proc = subprocess.Popen([sys.executable, str(script), str(digits_project.root)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "inside"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.monotonic()
    labels.set_labels(s, [2], a.id)  # the lock died with the writer
    assert time.monotonic() - t0 < 5
    y = labels.current_labels(s)
    assert y[1] == a.id and y[2] == a.id and y[7] == -1
    with s.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM actions WHERE uuid = 'x'").fetchone()[0] == 0
