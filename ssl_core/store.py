"""The project store: one SQLite database per project, opened the same way by every process.

Why SQLite in WAL mode: the Streamlit app (one thread per browser session), background workers
and command-line tools all read and write the same project at once. WAL lets readers go on
while one writer commits; `BEGIN IMMEDIATE` takes the write lock up front so two writers queue
(busy_timeout) instead of failing half-way; `synchronous=FULL` makes a committed label survive
a killed process and a power cut. Every SQL statement in the project is parameterised.
A write to a read-only folder or a full disk raises StoreError saying so (and nothing is
written); a read-only project can still be read.

This module owns the connection settings, the schema and its upgrades (a database written by
an older version is migrated in one transaction on first use). What lives in the tables is read
and written by `classes.py` (the class list), `labels.py` (the label event log), `jobs.py`
(background jobs), `imagestore.py` (image metadata), `runs.py` (training runs and metrics)
and `importer.py` (import reports).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 2  # 2: classes can be hidden (merged/deleted); merge and delete_class actions
BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another writer's lock before failing

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
_SCHEMA = _SCHEMA.format(classes=_CLASSES.format(name="classes"), live_name_index=_LIVE_NAME_INDEX,
                         actions=_ACTIONS.format(name="actions"))


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


_MIGRATIONS = {1: _v1_to_v2}  # from version k to k + 1


class StoreError(RuntimeError):
    """The project database cannot be opened or written (read-only folder, disk full, ...)."""


class Store:
    """Connections to one project database. Cheap to create; safe to share between threads
    because every operation opens its own short-lived connection."""

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self._upgraded = False  # checked once per Store: projects opened without initialise()

    def _connect(self) -> sqlite3.Connection:
        conn = None
        try:
            conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None)  # autocommit: we issue BEGIN ourselves
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as err:
            if conn is not None:
                conn.close()
            raise StoreError(_explain(err, self.db_path, "cannot open the project database")) from err
        conn.row_factory = sqlite3.Row
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """Reads in a read-only folder, where SQLite cannot create the WAL's side files: with
        no -wal file every committed row is in the main file, and nobody can write it there,
        so it is opened as immutable; with one, read-only through the existing files."""
        wal = self.db_path.with_name(self.db_path.name + "-wal").exists()
        uri = self.db_path.resolve().as_uri() + ("?mode=ro" if wal else "?mode=ro&immutable=1")
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(_explain(err, self.db_path, "cannot open the project database")) from err
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (WAL gives a consistent snapshot per statement)."""
        if not self._upgraded:
            try:
                self.upgrade()
            except StoreError:
                pass  # e.g. a read-only folder: reads of what version 1 had still work
        try:
            conn = self._connect()
        except StoreError:
            if not (_read_only(self.db_path.parent) and self.db_path.is_file()):
                raise
            conn = self._connect_read_only()   # a read-only project can still be looked at
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from the start; committed on normal exit,
        rolled back on any exception, so a killed or failing writer leaves nothing half-done."""
        if not self._upgraded:
            self.upgrade()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as err:
            raise StoreError(_explain(err, self.db_path)) from err
        finally:
            conn.close()

    def initialise(self) -> None:
        """Create the schema, or bring an older one up to date (idempotent)."""
        self.upgrade()
        conn = self._connect()
        try:
            conn.executescript(_SCHEMA)  # every statement is idempotent (IF NOT EXISTS)
        except sqlite3.OperationalError as err:
            raise StoreError(_explain(err, self.db_path)) from err
        finally:
            conn.close()
        with self.write() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))

    def upgrade(self) -> None:
        """Migrate a database written by an older version to SCHEMA_VERSION, in one transaction
        (a crash leaves the old version intact; two processes upgrading at once queue on the
        write lock and the second finds nothing to do). No-op for a new, empty database."""
        conn = self._connect()
        try:
            if (_version(conn) or SCHEMA_VERSION) >= SCHEMA_VERSION:
                self._upgraded = True
                return
            conn.execute("PRAGMA foreign_keys = OFF")  # only outside a transaction
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = _version(conn)
                while version < SCHEMA_VERSION:
                    _MIGRATIONS[version](conn)
                    version += 1
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                 (str(version),))
                if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise StoreError(f"upgrading {self.db_path} broke a reference: not applied")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._upgraded = True
        except sqlite3.OperationalError as err:
            raise StoreError(_explain(err, self.db_path)) from err
        finally:
            conn.close()

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def _version(conn: sqlite3.Connection) -> int | None:
    """The schema version recorded in the database; None before it is initialised."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                    ).fetchone() is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row["value"]) if row else None


def _read_only(folder: Path) -> bool:
    return folder.is_dir() and not os.access(folder, os.W_OK)   # a read-only mount: even for root


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 1 << 20   # less than 1 MiB left
    except OSError:
        return False


def _explain(err: sqlite3.Error, path: Path, doing: str = "") -> str:
    """A message that says what went wrong in the user's terms (read-only, full, busy)."""
    text = str(err)
    if "readonly" in text or "read-only" in text or _read_only(path.parent):
        return f"the project folder {path.parent} is read-only: nothing was written ({text})"
    if "locked" in text:
        return f"the project database is busy (another writer held it for too long): {text}"
    if ("disk" in text and "full" in text) or _disk_full(path.parent):   # e.g. "disk I/O error"
        return f"the disk holding {path.parent} is full: nothing was written ({text})"
    return f"{doing or 'project database error'} ({path}): {text}"

