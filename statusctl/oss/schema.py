"""The OSS's own SQLite database: opening it (mode 0600, WAL) and its named migrations.

It follows `statusctl.storage.db`: named migrations recorded in the database,
each in its own BEGIN IMMEDIATE transaction, never edited once shipped.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from statusctl.domain.errors import DatabaseError

BUSY_TIMEOUT_S = 30.0

MIGRATIONS: list[tuple[str, str]] = [
    (
        "oss_0001_initial",
        """
        CREATE TABLE orders (
            store      TEXT NOT NULL,
            number     TEXT NOT NULL,
            number_key TEXT NOT NULL,       -- as customers type it (links.number_key)
            postal_key TEXT NOT NULL,       -- links.postal_key
            label      TEXT,
            order_date TEXT NOT NULL,
            items      TEXT NOT NULL,       -- JSON list of ItemPart, from the newest update
            changed_at REAL NOT NULL,       -- changed_at of the newest update applied
            received   REAL NOT NULL,
            PRIMARY KEY (store, number)
        );
        CREATE INDEX orders_number_key ON orders (number_key);
        CREATE TABLE packages (
            store      TEXT NOT NULL,
            number     TEXT NOT NULL,
            key        TEXT NOT NULL,       -- carrier|tracking, or webhook-id#index without tracking
            tracking   TEXT,
            carrier    TEXT,
            shipped_at TEXT NOT NULL,
            items      TEXT NOT NULL,       -- JSON list of PackageItem
            changed_at REAL NOT NULL,
            PRIMARY KEY (store, number, key)
        );
        CREATE TABLE history (
            id         INTEGER PRIMARY KEY,
            webhook_id TEXT NOT NULL UNIQUE, -- a repeated delivery finds its row here
            store      TEXT NOT NULL,
            number     TEXT NOT NULL,
            changed_at REAL NOT NULL,
            entry      TEXT NOT NULL,        -- JSON: labels, changed items, packages, note, events
            received   REAL NOT NULL
        );
        CREATE INDEX history_order ON history (store, number, changed_at);
        """,
    ),
    (
        # Lookups read only this index, whether the order number is known or not (OssStore.CANDIDATES).
        "oss_0002_lookup_index",
        """
        CREATE INDEX orders_lookup ON orders (number_key, changed_at, store, number, postal_key);
        DROP INDEX orders_number_key;
        """,
    ),
]


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the OSS pragmas; creates the file with mode 0600 first."""
    if path.is_dir():
        raise DatabaseError(f"The OSS database {path} is a directory, not a database file.")
    if not path.parent.is_dir():  # a mistyped path must not become folders
        raise DatabaseError(f"Cannot create the OSS database {path}: the folder {path.parent} does not exist.")
    try:
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        # A 200 tells the stack controller to delete its record: the update must be on disk by then.
        conn.execute("PRAGMA synchronous = FULL")
    except OSError as exc:
        raise DatabaseError(f"Cannot create the OSS database {path}: {exc.strerror or exc}.") from None
    except sqlite3.Error as exc:
        raise DatabaseError(f"Cannot open the OSS database {path}: {exc}.") from None
    if str(mode).lower() != "wal":
        conn.close()
        raise DatabaseError(f"The OSS database {path} cannot use WAL mode (got {mode}).")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE; commit on success, roll back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line.split("--", 1)[0] + ("\n" if line.endswith("\n") else "")
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        yield buf.strip()


def migrate(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction."""
    applied: list[str] = []
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)"
        )
        for name, script in MIGRATIONS:
            with transaction(conn):
                if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                    continue
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute("INSERT INTO migrations (name, applied) VALUES (?, ?)", (name, time.time()))
            applied.append(name)
    except sqlite3.Error as exc:
        raise DatabaseError(f"Cannot prepare the OSS database {path}: {exc}.") from None
    return applied
