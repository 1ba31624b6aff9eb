"""Classes and labels: an append-only event log from which current labels are derived.

Every user action (label a selection, clear it, undo) is one row in `actions` plus one event per
image in `label_events`, all written in one transaction before the caller returns — so when the
UI confirms a label it is already on disk. Current labels are "the last event per image"; undo
appends the events that restore what the action overwrote, so history is never rewritten.
Actions carry a client-chosen uuid: retrying a write whose reply was lost records it once.
"""
from __future__ import annotations

import sqlite3
import time
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .store import Store

# Distinct, colour-blind-friendly defaults (Okabe-Ito, then Tableau) for new classes.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD", "#FF9896")
MAX_CLASS_NAME = 80


class LabelError(ValueError):
    """A label request that cannot be carried out (unknown class, bad name, empty selection)."""


@dataclass(frozen=True)
class LabelClass:
    id: int
    name: str
    color: str


@dataclass(frozen=True)
class ActionResult:
    action_id: int
    kind: str
    n_images: int        # images the action wrote an event for
    duplicate: bool      # True when this uuid had been recorded before (nothing new written)


def _clean_name(name: str) -> str:
    cleaned = " ".join(str(name).split())
    if not cleaned:
        raise LabelError("a class name cannot be empty")
    if len(cleaned) > MAX_CLASS_NAME:
        raise LabelError(f"a class name can have at most {MAX_CLASS_NAME} characters")
    return cleaned


def add_class(store: Store, name: str, color: str | None = None) -> LabelClass:
    """Create a class, or return the existing one with that name."""
    name = _clean_name(name)
    with store.write() as conn:
        row = conn.execute("SELECT id, name, color FROM classes WHERE name = ?", (name,)).fetchone()
        if row:
            return LabelClass(row["id"], row["name"], row["color"])
        n = conn.execute("SELECT COUNT(*) FROM classes").fetchone()[0]
        color = color or PALETTE[n % len(PALETTE)]
        cur = conn.execute("INSERT INTO classes (name, color, created_at) VALUES (?, ?, ?)",
                           (name, color, time.time()))
        return LabelClass(cur.lastrowid, name, color)


def list_classes(store: Store) -> list[LabelClass]:
    with store.read() as conn:
        rows = conn.execute("SELECT id, name, color FROM classes ORDER BY id").fetchall()
    return [LabelClass(r["id"], r["name"], r["color"]) for r in rows]


def rename_class(store: Store, class_id: int, new_name: str) -> None:
    new_name = _clean_name(new_name)
    try:
        with store.write() as conn:
            if conn.execute("UPDATE classes SET name = ? WHERE id = ?",
                            (new_name, class_id)).rowcount != 1:
                raise LabelError(f"no class with id {class_id}")
    except sqlite3.IntegrityError as err:
        raise LabelError(f"a class named {new_name!r} already exists") from err


def _record_action(conn: sqlite3.Connection, kind: str, user: str, action_uuid: str,
                   undoes: int | None = None) -> tuple[int, bool]:
    """Insert the action row; returns (action_id, duplicate)."""
    row = conn.execute("SELECT id FROM actions WHERE uuid = ?", (action_uuid,)).fetchone()
    if row:
        return row["id"], True
    cur = conn.execute("INSERT INTO actions (uuid, kind, user, ts, undoes) VALUES (?, ?, ?, ?, ?)",
                       (action_uuid, kind, user, time.time(), undoes))
    return cur.lastrowid, False


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
    with store.write() as conn:
        n = _n_images(conn)
        if ids[0] < 0 or ids[-1] >= n:
            raise LabelError(f"image ids must lie in 0..{n - 1}")
        if class_id is not None and conn.execute(
                "SELECT 1 FROM classes WHERE id = ?", (class_id,)).fetchone() is None:
            raise LabelError(f"no class with id {class_id}")
        action_id, duplicate = _record_action(
            conn, "label" if class_id is not None else "clear", user, action_uuid)
        if duplicate:
            count = conn.execute("SELECT COUNT(*) FROM label_events WHERE action_id = ?",
                                 (action_id,)).fetchone()[0]
            return ActionResult(action_id, "label", count, True)
        current = _current_for(conn, ids)
        changed = [i for i in ids if current.get(i) != class_id]
        now = time.time()
        conn.executemany(
            "INSERT INTO label_events (action_id, image_id, class_id, user, ts) VALUES (?, ?, ?, ?, ?)",
            [(action_id, i, class_id, user, now) for i in changed])
    return ActionResult(action_id, "label" if class_id is not None else "clear", len(changed), False)


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


def current_labels(store: Store, n_images: int | None = None) -> np.ndarray:
    """Class id per image, -1 where unlabeled: the training labels. (N,) int64"""
    with store.read() as conn:
        if n_images is None:
            n_images = _n_images(conn)
        rows = conn.execute("SELECT image_id, class_id, MAX(seq) FROM label_events "
                            "GROUP BY image_id").fetchall()
    labels = np.full(n_images, -1, dtype=np.int64)
    for r in rows:
        if r["class_id"] is not None and r["image_id"] < n_images:
            labels[r["image_id"]] = r["class_id"]
    return labels


def undo_last(store: Store, *, user: str = "local", action_uuid: str | None = None
              ) -> ActionResult | None:
    """Undo this user's most recent label/clear action that is not undone yet.

    Each image goes back to the label it had before the action, but only where it still carries
    the label the action gave it, so an undo never overwrites someone else's later work.
    Returns None when there is nothing to undo."""
    action_uuid = action_uuid or uuidlib.uuid4().hex
    with store.write() as conn:
        prior = conn.execute("SELECT id FROM actions WHERE uuid = ?", (action_uuid,)).fetchone()
        if prior:
            return ActionResult(prior["id"], "undo", 0, True)
        target = conn.execute(
            "SELECT a.id FROM actions a WHERE a.user = ? AND a.kind IN ('label', 'clear') "
            "AND NOT EXISTS (SELECT 1 FROM actions u WHERE u.undoes = a.id) "
            "ORDER BY a.id DESC LIMIT 1", (user,)).fetchone()
        if target is None:
            return None
        target_id = target["id"]
        events = conn.execute("SELECT seq, image_id, class_id FROM label_events WHERE action_id = ?",
                              (target_id,)).fetchall()
        action_id, _ = _record_action(conn, "undo", user, action_uuid, undoes=target_id)
        current = _current_for(conn, [e["image_id"] for e in events])
        restore = []
        for e in events:
            if current.get(e["image_id"]) != e["class_id"]:
                continue  # relabeled since by someone else: leave their label
            before = conn.execute("SELECT class_id FROM label_events WHERE image_id = ? AND seq < ? "
                                  "ORDER BY seq DESC LIMIT 1", (e["image_id"], e["seq"])).fetchone()
            restore.append((action_id, e["image_id"], before["class_id"] if before else None,
                            user, time.time()))
        conn.executemany("INSERT INTO label_events (action_id, image_id, class_id, user, ts) "
                         "VALUES (?, ?, ?, ?, ?)", restore)
    return ActionResult(action_id, "undo", len(restore), False)


def label_history(store: Store, limit: int = 50) -> list[dict]:
    """Most recent actions first: id, kind, user, time, number of images, undone or not."""
    with store.read() as conn:
        rows = conn.execute(
            "SELECT a.id, a.kind, a.user, a.ts, a.undoes, "
            "(SELECT COUNT(*) FROM label_events e WHERE e.action_id = a.id) AS n_images, "
            "EXISTS (SELECT 1 FROM actions u WHERE u.undoes = a.id) AS undone "
            "FROM actions a ORDER BY a.id DESC LIMIT ?", (limit,)).fetchall()
    return [dict(r) for r in rows]

