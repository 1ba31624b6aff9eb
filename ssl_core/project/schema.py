"""The project database's tables, and the migrations that bring an older database up to date.

Every table is created with IF NOT EXISTS, so creating the schema is idempotent; a database of
version k is upgraded by MIGRATIONS[k], k+1, ... inside one transaction (store.Store.upgrade).
"""
from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3  # 2: classes can be hidden (merged/deleted); merge and delete_class actions
                    # 3: quality_marks (data-quality decisions: excluded copies, labels kept)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One row per imported image; id is the row index in images.npy and never changes.
CREATE TABLE IF NOT EXISTS images (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,               -- file name / dataset index the image came from
    source TEXT NOT NULL,               -- which import brought it (e.g. 'mnist', 'zip:photos.zip')
    gt     INTEGER,                     -- ground truth (gt_classes.id) for evaluation only, NULL = none
    split  TEXT NOT NULL CHECK (split IN ('train', 'test'))  -- fixed evaluation split
);
CREATE TABLE IF NOT EXISTS gt_classes (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS {classes}
{live_name_index}
CREATE TABLE IF NOT EXISTS {actions}
-- Append-only label log; current labels are derived from it (last event per image wins).
CREATE TABLE IF NOT EXISTS label_events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id INTEGER NOT NULL REFERENCES actions(id),
    image_id  INTEGER NOT NULL,
    class_id  INTEGER REFERENCES classes(id),   -- NULL = label cleared
    user      TEXT NOT NULL,
    ts        REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS label_events_by_image ON label_events (image_id, seq);
CREATE INDEX IF NOT EXISTS label_events_by_action ON label_events (action_id);
CREATE TABLE IF NOT EXISTS jobs (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    params           TEXT NOT NULL,      -- JSON
    status           TEXT NOT NULL,      -- jobs.JobStatus
    progress         REAL NOT NULL DEFAULT 0,
    message          TEXT NOT NULL DEFAULT '',
    error            TEXT,
    result           TEXT,               -- JSON
    pid              INTEGER,            -- informational only: liveness comes from heartbeat_at
    created_at       REAL NOT NULL,
    started_at       REAL,
    heartbeat_at     REAL,
    finished_at      REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);
CREATE TABLE IF NOT EXISTS runs (
    id         INTEGER PRIMARY KEY,
    job_id     INTEGER REFERENCES jobs(id),
    method     TEXT NOT NULL,
    config     TEXT NOT NULL,            -- JSON
    n_labels   INTEGER NOT NULL,
    created_at REAL NOT NULL,
    summary    TEXT                      -- JSON: accuracies, intervals, model path
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    step   INTEGER NOT NULL,
    name   TEXT NOT NULL,
    value  REAL NOT NULL,
    ts     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id, name, step);
{quality_marks}
CREATE TABLE IF NOT EXISTS imports (
    id     INTEGER PRIMARY KEY,
    ts     REAL NOT NULL,
    source TEXT NOT NULL,
    report TEXT NOT NULL                 -- JSON ImportReport
);
"""

# The user's classes (distinct from ground truth: the user names and orders them). A merged or
# deleted class is hidden, not removed: label events and undo still refer to it, and undoing
# the merge/delete action (deleted_by) shows it again.
_CLASSES = """{name} (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    color      TEXT NOT NULL,              -- '#rrggbb'
    created_at REAL NOT NULL,
    deleted_at REAL,                       -- NULL = live
    deleted_by INTEGER REFERENCES actions(id)  -- the merge/delete action that hid it
);"""
# One row per user action (label a selection, clear, undo, merge or delete classes); the
# client-chosen uuid makes retries idempotent.
_ACTIONS = """{name} (
    id     INTEGER PRIMARY KEY,
    uuid   TEXT NOT NULL UNIQUE,
    kind   TEXT NOT NULL CHECK (kind IN ('label', 'clear', 'undo', 'merge', 'delete_class')),
    user   TEXT NOT NULL,
    ts     REAL NOT NULL,
    undoes INTEGER REFERENCES actions(id)
);"""
# Class names are unique, ignoring (ASCII) case, among live classes only: a deleted "cat"
# does not block a new one. classes.py also compares with str.casefold (beyond ASCII).
_LIVE_NAME_INDEX = """CREATE UNIQUE INDEX IF NOT EXISTS classes_live_name
    ON classes (name COLLATE NOCASE) WHERE deleted_at IS NULL;"""
# Data-quality decisions (ssl_core/quality/marks.py), append-only like the label log: the last row
# per (image, mark) wins. 'excluded': a duplicate copy the user chose not to keep (its label
# never trains). 'kept': a suspected label error the user reviewed and kept, for that class.
_QUALITY_MARKS = """CREATE TABLE IF NOT EXISTS quality_marks (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL,
    mark     TEXT NOT NULL CHECK (mark IN ('excluded', 'kept')),
    active   INTEGER NOT NULL CHECK (active IN (0, 1)),  -- 0 = withdrawn (restore, undo)
    class_id INTEGER,                                     -- 'kept': the label confirmed
    user     TEXT NOT NULL,
    ts       REAL NOT NULL
);"""
SCHEMA = _SCHEMA.format(classes=_CLASSES.format(name="classes"), live_name_index=_LIVE_NAME_INDEX,
                         actions=_ACTIONS.format(name="actions"), quality_marks=_QUALITY_MARKS)


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Version 1 had UNIQUE(name) over all classes, case-sensitive, and no hidden classes; its
    actions allowed only label/clear/undo. SQLite cannot alter constraints, so both tables are
    rebuilt (the documented create-copy-drop-rename procedure, foreign keys off meanwhile).
    Names equal but for case get their id appended so the new live-name index can be built."""
    conn.execute("CREATE TABLE classes_v2 " + _CLASSES.format(name=""))
    seen: set[str] = set()
    rows = conn.execute("SELECT id, name, color, created_at FROM classes ORDER BY id").fetchall()
    for row in rows:
        name = row["name"] if row["name"].lower() not in seen else f"{row['name']} ({row['id']})"
        seen.add(name.lower())
        conn.execute("INSERT INTO classes_v2 (id, name, color, created_at) VALUES (?, ?, ?, ?)",
                     (row["id"], name, row["color"], row["created_at"]))
    conn.execute("DROP TABLE classes")
    conn.execute("ALTER TABLE classes_v2 RENAME TO classes")
    conn.execute(_LIVE_NAME_INDEX)
    conn.execute("CREATE TABLE actions_v2 " + _ACTIONS.format(name=""))
    conn.execute("INSERT INTO actions_v2 (id, uuid, kind, user, ts, undoes) "
                 "SELECT id, uuid, kind, user, ts, undoes FROM actions")
    conn.execute("DROP TABLE actions")
    conn.execute("ALTER TABLE actions_v2 RENAME TO actions")


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """Version 3 adds the quality_marks table; nothing else changes."""
    conn.execute(_QUALITY_MARKS)


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3}  # from version k to k + 1


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The schema version recorded in the database; None before it is initialised."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                    ).fetchone() is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row["value"]) if row else None
