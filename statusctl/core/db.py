"""Opening the database: file mode, pragmas, migrations and explicit transactions.

Every writing transaction is `BEGIN IMMEDIATE` so that two writers never
deadlock on a lock upgrade; readers use plain autocommit statements (WAL gives
them a consistent snapshot per statement).

A statement waits up to the busy timeout for another process's lock before it
fails with "stayed locked": `BUSY_TIMEOUT_S` (30 s), or the seconds in the
environment variable `STATUSCTL_BUSY_TIMEOUT` (e.g. `5` or `0.5`) where a
script would rather fail fast than wait.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from statusctl.core.errors import ConfigError, DatabaseError, shown
from statusctl.core.migrations import MIGRATIONS

BUSY_TIMEOUT_S = 30.0
BUSY_TIMEOUT_ENV = "STATUSCTL_BUSY_TIMEOUT"
DISK_NEARLY_FULL = 1 << 20  # bytes free below which an I/O error opening the database means a full disk


def busy_timeout() -> float:
    """Seconds to wait for another process's lock: $STATUSCTL_BUSY_TIMEOUT, else BUSY_TIMEOUT_S."""
    raw = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not raw:
        return BUSY_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise ConfigError(f"{BUSY_TIMEOUT_ENV}={shown(raw)} is not a number of seconds from 0 to 86400.")
    return value


def _environmental(exc: BaseException) -> bool:
    """A fault of the file, the disk or another process rather than of a statement.

    (sqlite3 raises corruption as the bare DatabaseError and I/O, locks and a full
    disk as OperationalError; constraint and programming errors are left alone.)
    """
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def _writable(path: Path) -> bool:
    """Can this process write the database and create its -wal and -shm files beside it?"""
    try:
        return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))
    except OSError:
        return False


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < DISK_NEARLY_FULL
    except OSError:
        return False


def _describe(exc: BaseException, path: Path, timeout: float = BUSY_TIMEOUT_S) -> str:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return f"The database {path} stayed locked by another process for more than {timeout:g} s; try again when it is free."
    read_only = (
        f"The database {path} is read-only: statusctl must write it and create its -wal and -shm files "
        f"in {path.parent}; check the permissions, and that the file system is not mounted read-only."
    )
    full = (f"The disk holding {path} is full, so statusctl cannot write its database (the last change was not "
            "saved); free some space and try again.")
    if "readonly" in text or "read-only" in text:
        return read_only
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (f"The database {path} is corrupt or not a statusctl database ({exc}); "
                f"restore it from a backup (`sqlite3 {path} .recover` may save its rows).")
    if "full" in text:
        return full
    if "unable to open" in text or "disk i/o" in text:
        # SQLite does not say why; opening in WAL mode creates the -shm file, which fails
        # the same way in a read-only directory and on a full disk.
        if not _writable(path):
            return read_only
        if _disk_full(path):
            return full
        return f"The database {path} cannot be opened or written ({exc})."
    return f"Database error on {path}: {exc}."


class Database:
    """One SQLite connection with statusctl's pragmas and transaction helpers."""

    def __init__(self, path: Path, conn: sqlite3.Connection, busy_timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.conn = conn
        self.busy_timeout = busy_timeout

    @classmethod
    def open(cls, path: Path, *, migrate: bool = True) -> Database:
        """Open (creating with mode 0600 and migrating) the database at `path`."""
        timeout = busy_timeout()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        except OSError as exc:
            raise DatabaseError(f"Cannot create the database {path}: {exc.strerror or exc}.") from None
        try:
            conn = sqlite3.connect(
                str(path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise DatabaseError(f"The database {path} cannot use WAL mode (got {mode}).")
            # The stack is an outbox: a record must survive a power cut once committed.
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise DatabaseError(_describe(exc, path, timeout)) from None
        db = cls(path, conn, timeout)
        if migrate:
            db.migrate()
        return db

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A writing transaction: BEGIN IMMEDIATE, commit on success, roll back on any error."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise DatabaseError(_describe(exc, self.path, self.busy_timeout)) from None
        try:
            yield self.conn
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if _environmental(exc):
                # A statement of the transaction met the fault (a full disk while the page cache
                # spills, a corrupt page): the same sentence as when BEGIN or COMMIT meets it.
                raise DatabaseError(_describe(exc, self.path, self.busy_timeout)) from None
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise DatabaseError(_describe(exc, self.path, self.busy_timeout)) from None

    def query(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[sqlite3.Row]:
        """Run a read statement and return all rows."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise DatabaseError(_describe(exc, self.path, self.busy_timeout)) from None
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(_describe(exc, self.path, self.busy_timeout)) from None

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads outside `tx` and `query`; a fault becomes a DatabaseError sentence."""
        try:
            yield self.conn
        except sqlite3.Error as exc:
            if not _environmental(exc):
                raise
            raise DatabaseError(_describe(exc, self.path, self.busy_timeout)) from None

    def one(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded, each in its own transaction."""
        try:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)"
            )
            done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
        except sqlite3.Error as exc:
            raise DatabaseError(_describe(exc, self.path, self.busy_timeout)) from None
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with self.tx() as conn:
                # Another process may have migrated between our read and our lock.
                if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                    continue
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO migrations (name, applied) VALUES (?, ?)", (name, time.time()))
            applied.append(name)
        return applied


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (executescript would COMMIT our transaction)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        yield buf.strip()
