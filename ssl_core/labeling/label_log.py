"""Labels: an append-only event log from which current labels are derived.

Every user action (label a selection, clear it, merge or delete classes, undo) is one row in
`actions` plus one event per image in `label_events`, all written in one transaction before the
caller returns — so when the UI confirms a label it is already on disk. Current labels are "the
last event per image"; undo appends the events that restore what the action overwrote, so
history is never rewritten. Undo takes back the caller's own actions only: the app records each
browser session as "<name> · session <id>" (`session_user`), so tabs never undo each other.
Readers get one consistent state: `current_labels` reads in one transaction (`read_snapshot`). Actions carry a client-chosen uuid: retrying a write whose reply
was lost records it once.

Merging classes and deleting a class are label actions too: they relabel (or clear) every image
of the class through this log, and hide the class (see classes.py), so one undo gives the
images their labels back and shows the class again. The class list itself (add, rename,
colour, validation) lives in classes.py.
"""
from __future__ import annotations

import sqlite3
import time
import uuid as uuidlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ssl_core.labeling.classes import (
    LabelError,
    hide_classes,
    live_class_ids,
    require_live,
    restore_classes,
)
from ssl_core.project.store import Store

UNDOABLE = ("label", "clear", "merge", "delete_class")
SESSION_MARK = " · session "     # between a name and its browser session in actions.user


def session_user(name: str, session: str | None = None) -> str:
    """Who an action is recorded for, and whose actions undo may take back.

    The app records "<name> · session <id>": the log keeps who did what (the name) and undo
    matches the whole string, so two browser tabs never undo each other's labels even when both
    typed the same name. The command line and scripts pass a plain name (session None)."""
    name = " ".join((name or "").split()) or "guest"
    return f"{name}{SESSION_MARK}{session}" if session else name


def user_name(recorded: str) -> str:
    """The person's name from a recorded user ("ann · session 3f2a9c1e" -> "ann")."""
    return recorded.split(SESSION_MARK, 1)[0]


@dataclass(frozen=True)
class ActionResult:
    action_id: int
    kind: str
    n_images: int        # images the action wrote an event for
    duplicate: bool      # True when this uuid had been recorded before (nothing new written)


def _record_action(conn: sqlite3.Connection, kind: str, user: str, action_uuid: str,
                   undoes: int | None = None) -> tuple[int, bool]:
    """Insert the action row; returns (action_id, duplicate)."""
    row = conn.execute("SELECT id FROM actions WHERE uuid = ?", (action_uuid,)).fetchone()
    if row:
        return row["id"], True
    cur = conn.execute("INSERT INTO actions (uuid, kind, user, ts, undoes) VALUES (?, ?, ?, ?, ?)",
                       (action_uuid, kind, user, time.time(), undoes))
    return cur.lastrowid, False


def _recorded(conn: sqlite3.Connection, action_uuid: str) -> ActionResult | None:
    """What an already-recorded action did, so a retry returns it instead of acting again
    (checked before validation: a retried merge must not fail because its sources are gone)."""
    row = conn.execute("SELECT id, kind, (SELECT COUNT(*) FROM label_events e "
                       "WHERE e.action_id = a.id) AS n FROM actions a WHERE uuid = ?",
                       (action_uuid,)).fetchone()
    return ActionResult(row["id"], row["kind"], row["n"], True) if row else None


def _append_events(conn: sqlite3.Connection, action_id: int, user: str,
                   changes: Iterable[tuple[int, int | None]]) -> int:
    """One label event per (image id, class id or None); returns how many."""
    now = time.time()
    rows = [(action_id, image_id, class_id, user, now) for image_id, class_id in changes]
    conn.executemany("INSERT INTO label_events (action_id, image_id, class_id, user, ts) "
                     "VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def _n_images(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]


def set_labels(store: Store, image_ids: Iterable[int], class_id: int | None, *,
               user: str = "local", action_uuid: str | None = None) -> ActionResult:
    """Label the given images with `class_id` (None clears their labels), as one undoable action.

    Committed before returning. Images that already carry that label get no new event, so the
    undo of this action touches exactly what it changed."""
    ids = sorted({int(i) for i in image_ids})
    if not ids:
        raise LabelError("nothing is selected: select some images first")
    action_uuid = action_uuid or uuidlib.uuid4().hex
    kind = "label" if class_id is not None else "clear"
    with store.write() as conn:
        if (done := _recorded(conn, action_uuid)) is not None:
            return done
        n = _n_images(conn)
        if ids[0] < 0 or ids[-1] >= n:
            raise LabelError(f"image ids must lie in 0..{n - 1}")
        if class_id is not None:
            require_live(conn, class_id)
        action_id, _ = _record_action(conn, kind, user, action_uuid)
        current = _current_for(conn, ids)
        written = _append_events(conn, action_id, user,
                                 [(i, class_id) for i in ids if current.get(i) != class_id])
    return ActionResult(action_id, kind, written, False)


def merge_classes(store: Store, source_ids: Iterable[int], target_id: int, user: str = "local",
                  action_uuid: str | None = None) -> ActionResult:
    """Relabel every image that currently carries a source class with the target, and hide the
    source classes, as ONE undoable action: undo gives those images their source labels back
    (where nobody relabeled them since) and shows the source classes again."""
    sources = sorted({int(c) for c in source_ids})
    if not sources:
        raise LabelError("choose at least one class to merge")
    if int(target_id) in sources:
        raise LabelError("a class cannot be merged into itself")
    action_uuid = action_uuid or uuidlib.uuid4().hex
    with store.write() as conn:
        if (done := _recorded(conn, action_uuid)) is not None:
            return done
        for class_id in [*sources, target_id]:
            require_live(conn, class_id)
        action_id, _ = _record_action(conn, "merge", user, action_uuid)
        images = _images_labeled(conn, sources)
        written = _append_events(conn, action_id, user, [(i, int(target_id)) for i in images])
        hide_classes(conn, sources, action_id)
    return ActionResult(action_id, "merge", written, False)


def delete_class(store: Store, class_id: int, user: str = "local",
                 action_uuid: str | None = None) -> ActionResult:
    """Clear the label of every image of this class and hide the class, as ONE undoable action
    (undo restores both)."""
    action_uuid = action_uuid or uuidlib.uuid4().hex
    with store.write() as conn:
        if (done := _recorded(conn, action_uuid)) is not None:
            return done
        require_live(conn, class_id)
        action_id, _ = _record_action(conn, "delete_class", user, action_uuid)
        images = _images_labeled(conn, [int(class_id)])
        written = _append_events(conn, action_id, user, [(i, None) for i in images])
        hide_classes(conn, [class_id], action_id)
    return ActionResult(action_id, "delete_class", written, False)


def _images_labeled(conn: sqlite3.Connection, class_ids: list[int]) -> list[int]:
    """Images whose current label is one of these classes, ascending."""
    marks = ",".join("?" * len(class_ids))
    # The inner query keeps the last event per image (SQLite's bare columns beside MAX).
    rows = conn.execute(f"SELECT image_id FROM (SELECT image_id, class_id, MAX(seq) "
                        f"FROM label_events GROUP BY image_id) WHERE class_id IN ({marks}) "
                        f"ORDER BY image_id", class_ids).fetchall()
    return [r["image_id"] for r in rows]


def _current_for(conn: sqlite3.Connection, ids: list[int]) -> dict[int, int | None]:
    """Current label of each given image (absent = never labeled). Chunked: SQLite caps the
    number of bound parameters per statement."""
    out: dict[int, int | None] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        marks = ",".join("?" * len(chunk))
        # SQLite returns the bare columns of the row holding MAX(seq): the last event per image.
        for row in conn.execute(
                f"SELECT image_id, class_id, MAX(seq) FROM label_events "
                f"WHERE image_id IN ({marks}) GROUP BY image_id", chunk):
            out[row["image_id"]] = row["class_id"]
    return out


@contextmanager
def read_snapshot(store: Store) -> Iterator[sqlite3.Connection]:
    """A connection inside one read transaction: every SELECT in the block sees the same
    committed state. (Store.read alone is autocommit, a snapshot per statement: a merge that
    commits between two SELECTs would be half-seen.) In WAL mode a deferred BEGIN takes its
    snapshot at the first SELECT and keeps it until the block ends; writers are not blocked."""
    with store.read() as conn:
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")     # nothing was written; ends the snapshot


def labels_snapshot(conn: sqlite3.Connection, n_images: int | None = None
                    ) -> tuple[int, np.ndarray]:
    """(number of images, class id per image with -1 = unlabeled) read on `conn`. Inside
    `read_snapshot` both come from one committed state, e.g. for a training snapshot:

        with read_snapshot(store) as conn:
            n, labels = labels_snapshot(conn)
    """
    if n_images is None:
        n_images = _n_images(conn)
    rows = conn.execute("SELECT image_id, class_id, MAX(seq) FROM label_events "
                        "GROUP BY image_id").fetchall()
    live = live_class_ids(conn)
    labels = np.full(n_images, -1, dtype=np.int64)
    for r in rows:
        # a label of a hidden class cannot normally be current (hiding clears or moves them),
        # but a reader must never see one: it would name a class list_classes does not show
        if r["class_id"] in live and r["image_id"] < n_images:
            labels[r["image_id"]] = r["class_id"]
    return n_images, labels


def labels_version(conn: sqlite3.Connection) -> int:
    """The label log's newest sequence number: any label, clear, merge or delete raises it
    (what a retrain read, and the quality report's cache key)."""
    return conn.execute("SELECT COALESCE(MAX(seq), 0) FROM label_events").fetchone()[0]


def current_labels(store: Store, n_images: int | None = None,
                   conn: sqlite3.Connection | None = None) -> np.ndarray:
    """Class id per image, -1 where unlabeled: the training labels. (N,) int64

    All of it is read in one transaction, so a merge or delete committed meanwhile is seen
    entirely or not at all. Pass `conn` (from `read_snapshot`) to read more in the same one."""
    if conn is not None:
        return labels_snapshot(conn, n_images)[1]
    with read_snapshot(store) as snap:
        return labels_snapshot(snap, n_images)[1]


def undo_last(store: Store, *, user: str = "local", action_uuid: str | None = None
              ) -> ActionResult | None:
    """Undo the most recent label/clear/merge/delete action recorded for exactly `user` (a
    name, or a name with its browser session: `session_user`) that is not undone yet.

    Each image goes back to the label it had before the action, but only where it still carries
    the label the action gave it, so an undo never overwrites someone else's later work. Classes
    the action hid are shown again first; an image whose earlier class has been deleted since
    (by another action) goes back to unlabeled. Returns None when there is nothing to undo."""
    action_uuid = action_uuid or uuidlib.uuid4().hex
    with store.write() as conn:
        prior = conn.execute("SELECT id FROM actions WHERE uuid = ?", (action_uuid,)).fetchone()
        if prior:
            return ActionResult(prior["id"], "undo", 0, True)
        marks = ",".join("?" * len(UNDOABLE))
        target = conn.execute(
            f"SELECT a.id FROM actions a WHERE a.user = ? AND a.kind IN ({marks}) "
            "AND NOT EXISTS (SELECT 1 FROM actions u WHERE u.undoes = a.id) "
            "ORDER BY a.id DESC LIMIT 1", (user, *UNDOABLE)).fetchone()
        if target is None:
            return None
        target_id = target["id"]
        # One statement for every event of the action (not one per event under the write
        # lock): each image's current label and its label just before this event, both from
        # the (image_id, seq) index.
        events = conn.execute(
            "SELECT e.image_id, e.class_id, "
            "(SELECT c.class_id FROM label_events c WHERE c.image_id = e.image_id "
            " ORDER BY c.seq DESC LIMIT 1) AS current, "
            "(SELECT p.class_id FROM label_events p WHERE p.image_id = e.image_id "
            " AND p.seq < e.seq ORDER BY p.seq DESC LIMIT 1) AS previous "
            "FROM label_events e WHERE e.action_id = ? ORDER BY e.seq", (target_id,)).fetchall()
        action_id, _ = _record_action(conn, "undo", user, action_uuid, undoes=target_id)
        restore_classes(conn, target_id)
        live = live_class_ids(conn)
        restore = []
        for e in events:
            if e["current"] != e["class_id"]:
                continue  # relabeled since by someone else: leave their label
            previous = e["previous"] if e["previous"] in live else None
            if previous != e["class_id"]:
                restore.append((e["image_id"], previous))
        written = _append_events(conn, action_id, user, restore)
    return ActionResult(action_id, "undo", written, False)


def label_history(store: Store, limit: int = 50) -> list[dict]:
    """Most recent actions first: id, kind, user (as recorded), name (without the browser
    session), time, number of images, undone or not."""
    with store.read() as conn:
        rows = conn.execute(
            "SELECT a.id, a.kind, a.user, a.ts, a.undoes, "
            "(SELECT COUNT(*) FROM label_events e WHERE e.action_id = a.id) AS n_images, "
            "EXISTS (SELECT 1 FROM actions u WHERE u.undoes = a.id) AS undone "
            "FROM actions a ORDER BY a.id DESC LIMIT ?", (limit,)).fetchall()
    return [{**dict(r), "name": user_name(r["user"])} for r in rows]

