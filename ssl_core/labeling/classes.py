"""The user's classes: names, colours, and which of them are live.

Deleting or merging away a class HIDES it (`classes.deleted_at`, with `deleted_by` naming the
merge/delete action) instead of removing the row, because the append-only label log and its
undo still refer to the class: undoing the action that hid it shows it again under the same
id and colour, and its images get their labels back. Hidden classes are left out of
`list_classes`, cannot be given to images, renamed or recoloured, and do not reserve their
name: a new "cat" may be created after the old one was deleted. (The alternative, a separate
class_events log, would make "is this class live" a query over history on every read; classes
are few and their name and colour are already edited in place.)

Names are unique among live classes ignoring case, enforced twice: here with str.casefold
(for clear messages and non-ASCII case), and by a partial unique index in the database (ASCII
NOCASE) so no concurrent writer can slip a duplicate past the check.

The label-changing class actions (merge_classes, delete_class) live in label_log.py, next to the
event log they write; the helpers at the bottom of this module are their building blocks and
run inside the caller's Store.write() transaction.
"""
from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ssl_core.project.store import Store

# Distinct, colour-blind-friendly defaults (Okabe-Ito, then Tableau) for new classes. No mid
# grey: the map draws unlabeled points in light grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000", "#8C564B", "#393B79", "#BCBD22", "#17BECF", "#9467BD", "#FF9896")
MAX_CLASS_NAME = 60
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")


class LabelError(ValueError):
    """A label request that cannot be carried out (unknown class, bad name, empty selection)."""


@dataclass(frozen=True)
class LabelClass:
    id: int
    name: str
    color: str
    deleted: bool = False   # hidden by a merge or delete (only listed with include_deleted)


def clean_name(name: str) -> str:
    """A class name as stored: runs of whitespace collapsed to one space, ends stripped.
    Raises LabelError when empty or longer than MAX_CLASS_NAME."""
    cleaned = " ".join(str(name).split())
    if not cleaned:
        raise LabelError("a class name cannot be empty")
    if len(cleaned) > MAX_CLASS_NAME:
        raise LabelError(f"a class name can have at most {MAX_CLASS_NAME} characters "
                         f"({len(cleaned)} given)")
    return cleaned


def clean_color(color: str) -> str:
    """A colour as '#rrggbb' (hex digits, either case); raises LabelError otherwise."""
    text = str(color).strip()
    if not _COLOR.fullmatch(text):
        raise LabelError(f"a class colour is written #rrggbb, e.g. #0072B2 (got {color!r})")
    return text


def add_class(store: Store, name: str, color: str | None = None) -> LabelClass:
    """Create a class, or return the live class that already has this name (ignoring case)."""
    name = clean_name(name)
    color = clean_color(color) if color is not None else None
    with store.write() as conn:
        existing = _live_named(conn, name)
        if existing is not None:
            return _to_class(existing)
        color = color or _free_color(conn)
        cur = conn.execute("INSERT INTO classes (name, color, created_at) VALUES (?, ?, ?)",
                           (name, color, time.time()))
        return LabelClass(cur.lastrowid, name, color)


def list_classes(store: Store, *, include_deleted: bool = False) -> list[LabelClass]:
    """Live classes in creation order; with include_deleted, the hidden ones too (for history
    views that must name every class a past event used)."""
    where = "" if include_deleted else " WHERE deleted_at IS NULL"
    with store.read() as conn:
        rows = conn.execute(f"SELECT id, name, color, deleted_at FROM classes{where} ORDER BY id"
                            ).fetchall()
    return [_to_class(r) for r in rows]


def rename_class(store: Store, class_id: int, new_name: str) -> None:
    """Give a live class a new name, unique among live classes (a change of case is fine)."""
    new_name = clean_name(new_name)
    with store.write() as conn:
        require_live(conn, class_id)
        other = _live_named(conn, new_name)
        if other is not None and other["id"] != class_id:
            raise LabelError(f"a class named {other['name']!r} already exists")
        try:
            conn.execute("UPDATE classes SET name = ? WHERE id = ?", (new_name, class_id))
        except sqlite3.IntegrityError as err:  # the index disagrees with casefold: be safe
            raise LabelError(f"a class named {new_name!r} already exists") from err


def set_class_color(store: Store, class_id: int, color: str) -> None:
    """Change a live class's colour ('#rrggbb')."""
    color = clean_color(color)
    with store.write() as conn:
        require_live(conn, class_id)
        conn.execute("UPDATE classes SET color = ? WHERE id = ?", (color, class_id))


# Building blocks for label_log.py; each runs inside the caller's write transaction.

def require_live(conn: sqlite3.Connection, class_id: int) -> sqlite3.Row:
    """The live class with this id; LabelError when there is none (or it was deleted)."""
    row = conn.execute("SELECT id, name, color, deleted_at FROM classes "
                       "WHERE id = ? AND deleted_at IS NULL", (int(class_id),)).fetchone()
    if row is None:
        raise LabelError(f"no class with id {class_id}")
    return row


def live_class_ids(conn: sqlite3.Connection) -> set[int]:
    return {r[0] for r in conn.execute("SELECT id FROM classes WHERE deleted_at IS NULL")}


def hide_classes(conn: sqlite3.Connection, class_ids: Iterable[int], action_id: int) -> None:
    """Hide live classes on behalf of a merge/delete action (undo of that action restores)."""
    conn.executemany("UPDATE classes SET deleted_at = ?, deleted_by = ? "
                     "WHERE id = ? AND deleted_at IS NULL",
                     [(time.time(), action_id, int(c)) for c in class_ids])


def restore_classes(conn: sqlite3.Connection, action_id: int) -> list[int]:
    """Show again the classes that `action_id` hid; returns their ids. A restored class whose
    name was taken meanwhile by a new live class is renamed 'name (restored)' (then
    'name (restored 2)', ...) rather than failing the undo."""
    rows = conn.execute("SELECT id, name FROM classes WHERE deleted_by = ? ORDER BY id",
                        (action_id,)).fetchall()
    for row in rows:
        name, k = row["name"], 1
        while _live_named(conn, name) is not None:
            suffix = " (restored)" if k == 1 else f" (restored {k})"
            name = row["name"][:MAX_CLASS_NAME - len(suffix)].rstrip() + suffix
            k += 1
        conn.execute("UPDATE classes SET deleted_at = NULL, deleted_by = NULL, name = ? "
                     "WHERE id = ?", (name, row["id"]))
    return [row["id"] for row in rows]


def _free_color(conn: sqlite3.Connection) -> str:
    """The first palette colour no live class has (deleted classes give theirs back), so the
    first classes always get the most distinct colours; past the palette, it repeats."""
    used = {r[0].upper() for r in conn.execute("SELECT color FROM classes WHERE deleted_at IS NULL")}
    free = [c for c in PALETTE if c not in used]
    return free[0] if free else PALETTE[len(used) % len(PALETTE)]


def _live_named(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    """The live class whose name equals `name` ignoring case, if any."""
    key = name.casefold()
    for row in conn.execute("SELECT id, name, color, deleted_at FROM classes "
                            "WHERE deleted_at IS NULL"):
        if row["name"].casefold() == key:
            return row
    return None


def _to_class(row: sqlite3.Row) -> LabelClass:
    return LabelClass(row["id"], row["name"], row["color"], row["deleted_at"] is not None)
