"""Labels read and undone while others write: `current_labels` sees one committed state even when
a merge commits between its queries; undo reads an action's events in a batch, not one query
per image; and undo is scoped to a browser session, so two tabs under the same name never take
back each other's labels (library level, and two AppTest sessions of the app)."""
from contextlib import contextmanager

import numpy as np
from conftest import REPO
from streamlit.testing.v1 import AppTest

from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.project.folder import Project, projects_dir
from ssl_core.project.store import Store


class _Hooked:
    """A connection that runs `before(sql)` ahead of each statement (a deterministic way to let
    another writer commit between two of a reader's queries)."""

    def __init__(self, conn, before):
        self._conn, self._before = conn, before

    def execute(self, sql, *args):
        self._before(sql)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _hook_reads(store: Store, monkeypatch, before) -> None:
    real = store.read

    @contextmanager
    def read():
        with real() as conn:
            yield _Hooked(conn, before)

    monkeypatch.setattr(store, "read", read)


def test_current_labels_is_one_snapshot_when_a_merge_commits_between_its_reads(digits_project,
                                                                                monkeypatch):
    store = digits_project.store
    a = label_classes.add_class(store, "a").id
    b = label_classes.add_class(store, "b").id
    labels.set_labels(store, range(0, 5), a)
    labels.set_labels(store, range(5, 10), b)
    merged = []

    def merge_before_the_class_query(sql: str) -> None:
        # the events are read; now a merge of a into b commits (another connection: the write
        # goes through, WAL readers never block writers) before the live classes are read
        if "FROM classes" in sql and not merged:
            merged.append(labels.merge_classes(Store(store.db_path), [a], b, user="other"))

    _hook_reads(store, monkeypatch, merge_before_the_class_query)
    y = labels.current_labels(store, 10)
    assert merged, "the merge was not injected between the reads"
    # before the merge: a a a a a b b b b b; after it: all b. Never a label dropped (-1).
    assert y.tolist() in ([a] * 5 + [b] * 5, [b] * 10), y.tolist()
    monkeypatch.undo()
    assert labels.current_labels(store, 10).tolist() == [b] * 10      # the merge did commit


def test_labels_snapshot_reads_image_count_and_labels_together(digits_project):
    store = digits_project.store
    a = label_classes.add_class(store, "a").id
    labels.set_labels(store, [3], a)
    with labels.read_snapshot(store) as conn:
        n, y = labels.labels_snapshot(conn)
        labels.set_labels(Store(store.db_path), [4], a)          # commits meanwhile: not seen
        assert labels.current_labels(store, n, conn=conn)[4] == -1
    assert n == 1797 and y[3] == a and y[4] == -1
    assert labels.current_labels(store)[4] == a


def test_undo_reads_an_actions_events_in_a_batch_not_one_query_per_image(digits_project,
                                                                         monkeypatch):
    store = digits_project.store
    a = label_classes.add_class(store, "a").id
    b = label_classes.add_class(store, "b").id
    labels.set_labels(store, range(0, 300), a, user="ann")
    labels.set_labels(store, range(0, 300), b, user="ann")
    statements = []
    real = store._connect

    def counting():
        conn = real()
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(store, "_connect", counting)
    result = labels.undo_last(store, user="ann")
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert result.n_images == 300
    assert len(selects) < 20, f"{len(selects)} SELECTs for one undo of 300 images"
    assert (labels.current_labels(store)[:300] == a).all()           # back to the earlier label


def test_two_sessions_with_the_same_name_undo_only_their_own(digits_project):
    store = digits_project.store
    a = label_classes.add_class(store, "a").id
    tab_a = labels.session_user("alice", "aaaa1111")
    tab_b = labels.session_user("alice", "bbbb2222")
    labels.set_labels(store, [1], a, user=tab_a)
    labels.set_labels(store, [2], a, user=tab_b)                       # B labels after A
    labels.undo_last(store, user=tab_a)
    y = labels.current_labels(store)
    assert y[1] == -1 and y[2] == a                                    # A's undo took A's label
    assert labels.undo_last(store, user=tab_a) is None
    names = {h["user"]: h["name"] for h in labels.label_history(store)}
    assert names[tab_a] == names[tab_b] == "alice" and tab_a != tab_b  # who did it: kept
    assert labels.session_user("  ", None) == "guest"


ORDER = [5, 6, 7, 8]


def _queue_session(name: str) -> AppTest:
    """The app in one browser session whose address carries ?user=<name>, on the label queue
    (one image at a time) with a fixed suggested order."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.query_params["user"] = name
    at.run()
    at.session_state["suggested"] = list(ORDER)
    at.switch_page("pages/queue.py").run()
    at.segmented_control(key="queue_view").set_value("One at a time").run()
    assert not at.exception, at.exception
    return at


def _click_class(at: AppTest, class_id: int) -> None:
    next(b for b in at.button if b.key and b.key.startswith("qk-")
         and b.key.endswith(f"-c{class_id}")).click().run()
    assert not at.exception, at.exception


def test_two_tabs_named_alike_in_the_app_never_undo_each_other():
    first = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    first.run()                                                  # imports the built-in digits
    store = Project.open(projects_dir() / "digits").store
    a = label_classes.add_class(store, "a").id
    tab_a, tab_b = _queue_session("alice"), _queue_session("alice")
    _click_class(tab_a, a)                                       # tab A labels image 5
    tab_b.run()
    _click_class(tab_b, a)                                       # then tab B labels image 6
    assert (labels.current_labels(store)[[5, 6]] == a).all()
    tab_a.button(key="qk-undo").click().run()                    # tab A presses Z
    assert not tab_a.exception, tab_a.exception
    y = labels.current_labels(store)
    assert y[5] == -1 and y[6] == a, "tab A's undo took back tab B's label"
    with store.read() as conn:
        users = [r["user"] for r in conn.execute("SELECT user FROM actions WHERE kind = 'label' "
                                                 "ORDER BY id")]
    assert len(set(users)) == 2 and all(labels.user_name(u) == "alice" for u in users), users
    assert np.count_nonzero(y >= 0) == 1
