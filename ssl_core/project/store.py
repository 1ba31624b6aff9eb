"""The project store: one SQLite database per project, opened the same way by every process.

Why SQLite in WAL mode: the Streamlit app (one thread per browser session), background workers
and command-line tools all read and write the same project at once. WAL lets readers go on
while one writer commits; `BEGIN IMMEDIATE` takes the write lock up front so two writers queue
(busy_timeout) instead of failing half-way; `synchronous=FULL` makes a committed label survive
a killed process and a power cut. Every SQL statement in the project is parameterised.
A write to a read-only folder or a full disk raises StoreError saying so (and nothing is
written); a read-only project can still be read.

This module owns the connection settings and runs the schema's upgrades (schema.py: a
database written by an older version is migrated in one transaction on first use). What lives
in the tables is read and written by labeling/classes.py (the class list),
labeling/label_log.py (the label event log), jobs/records.py (background jobs),
data/collection.py (image metadata), results/runs.py (training runs and metrics) and
data/importer.py (import reports).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ssl_core.project.errors import ProjectError
from ssl_core.project.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, schema_version

BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another writer's lock before failing


class StoreError(ProjectError):
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
            conn.executescript(SCHEMA)  # every statement is idempotent (IF NOT EXISTS)
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
            if (schema_version(conn) or SCHEMA_VERSION) >= SCHEMA_VERSION:
                self._upgraded = True
                return
            conn.execute("PRAGMA foreign_keys = OFF")  # only outside a transaction
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = schema_version(conn)
                while version < SCHEMA_VERSION:
                    MIGRATIONS[version](conn)
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

