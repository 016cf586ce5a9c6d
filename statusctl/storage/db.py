"""Opening the database: file mode, pragmas, migrations and explicit transactions.

Every writing transaction is `BEGIN IMMEDIATE` so that two writers never
deadlock on a lock upgrade; readers use plain autocommit statements (WAL gives
them a consistent snapshot per statement).

A statement waits up to the busy timeout for another process's lock before it
fails with "stayed locked": `BUSY_TIMEOUT_S` (30 s), or the seconds in the
environment variable `STATUSCTL_BUSY_TIMEOUT` (e.g. `5` or `0.5`) where a
script would rather fail fast than wait. A controller asks for interruptible
waits (`Database.wait_until`): it waits for the lock in short slices, so that a
stop signal is seen within a fraction of a second.

Only `init`, `setup` and `demo` create a database (`create=True`); every other
command opens an existing statusctl database or refuses. No command creates a
database beside a `-wal` or `-shm` file left by a database that was deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from statusctl.domain.errors import ConfigError, DatabaseError, DatabaseReplaced, DiskFull, shown
from statusctl.storage.migrations import MIGRATIONS

BUSY_TIMEOUT_S = 30.0
BUSY_TIMEOUT_ENV = "STATUSCTL_BUSY_TIMEOUT"
DISK_NEARLY_FULL = 1 << 20  # bytes free below which an I/O error opening the database means a full disk
LOCK_SLICE_S = 0.1  # an interruptible lock wait checks for a stop this often
WAL_SIZE_LIMIT = 8 << 20  # bytes of write-ahead log kept after a checkpoint (a big apply's WAL is given back)


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
    full = _full(path)
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


def _error(exc: BaseException, path: Path, timeout: float = BUSY_TIMEOUT_S) -> DatabaseError:
    """The DatabaseError (DiskFull for a full disk) with `_describe`'s sentence."""
    text = _describe(exc, path, timeout)
    return DiskFull(text) if text == _full(path) else DatabaseError(text)


def _full(path: Path) -> str:
    return (f"The disk holding {path} is full, so statusctl cannot write its database (the last change was not "
            "saved); free some space and try again.")


def _locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _sidecars(path: Path) -> list[Path]:
    """The -wal and -shm files of a database that is not there (a deleted database's leftovers)."""
    return [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


class Database:
    """One SQLite connection with statusctl's pragmas and transaction helpers."""

    dialect = "sqlite"

    def __init__(self, path: Path, conn: sqlite3.Connection, busy_timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.conn = conn
        self.busy_timeout = busy_timeout
        # When set (a controller): lock waits go in LOCK_SLICE_S slices and last at most this
        # many seconds (and the busy timeout); lowering it shortens a wait already going on.
        self.lock_wait: float | None = None
        self.identity = _identity(path)

    @classmethod
    def open(cls, path: Path, *, create: bool = True, migrate: bool = True) -> Database:
        """Open and migrate the database at `path`; with `create`, create it first (mode 0600) if missing.

        Without `create` a missing file, or one holding no statusctl database,
        is refused with a sentence naming `statusctl init`.
        """
        timeout = busy_timeout()
        if path.is_dir():
            raise DatabaseError(f"{path} is a directory, not a database file; give the path of the file "
                                "(check --db / STATUSCTL_DB).")
        if not path.exists():
            _create(path) if create else _refuse_missing(path)
        try:
            conn = sqlite3.connect(_uri(path), timeout=timeout, isolation_level=None, check_same_thread=False,
                                   uri=True)
            conn.row_factory = sqlite3.Row
            if not create and not _has_schema(conn):
                conn.close()
                what = "an empty file" if path.stat().st_size == 0 else "no statusctl tables"
                raise DatabaseError(f"{path} holds no statusctl database ({what}); check --db / STATUSCTL_DB, "
                                    "or create the database with `statusctl init`.")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise DatabaseError(f"The database {path} cannot use WAL mode (got {mode}).")
            # The stack is an outbox: a record must survive a power cut once committed.
            conn.execute("PRAGMA synchronous = FULL")
            # A big transaction's write-ahead log is given back after the next checkpoint.
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        except sqlite3.Error as exc:
            raise _error(exc, path, timeout) from None
        db = cls(path, conn, timeout)
        if migrate:
            db.migrate()
        return db

    @property
    def name(self) -> str:
        """How messages name this database: its path."""
        return str(self.path)

    def now(self) -> float:
        """Epoch seconds by the database's clock: this machine's, which holds the file."""
        return time.time()

    def relax_durability(self) -> None:
        """Commit without waiting for fsync (a controller's writes: a lost acknowledgement after a power cut
        only means a resend, which receivers drop by webhook-id); WAL keeps the file consistent."""
        self.conn.execute("PRAGMA synchronous = NORMAL")

    def check_identity(self) -> None:
        """DatabaseReplaced when the file at `path` is gone or is no longer the file this connection opened.

        Nothing more may be written then: the caller closes the connection.
        """
        try:
            now = _identity(self.path)
        except OSError:
            now = None
        if now != self.identity:
            # The -wal and -shm files are found by name: a database put at this path would read
            # this file's frames as its own. Move them into this file and empty the log first.
            self.give_back_space()
            raise DatabaseReplaced(
                f"The database file {self.path} was deleted or replaced by another file while statusctl was "
                "using it, so it stopped; put the database back (restore it from a backup) and start again.")

    def give_back_space(self) -> int | None:
        """Checkpoint the write-ahead log into the database and truncate it (after a full disk).

        Returns the bytes of log given back, or None when the log could not be
        emptied (the checkpoint itself found no room, or another process is
        still reading an old snapshot or writing).
        """
        wal = Path(f"{self.path}-wal")
        try:
            before = wal.stat().st_size if wal.exists() else 0
            with self._short_waits():
                busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            after = wal.stat().st_size if wal.exists() else 0
        except (sqlite3.Error, OSError):
            return None
        return max(0, before - after) if int(busy) == 0 else None

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A writing transaction: BEGIN IMMEDIATE, commit on success, roll back on any error."""
        self._begin()
        try:
            yield self.conn
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if _environmental(exc):
                # A statement of the transaction met the fault (a full disk while the page cache
                # spills, a corrupt page): the same sentence as when BEGIN or COMMIT meets it.
                raise _error(exc, self.path, self.busy_timeout) from None
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise _error(exc, self.path, self.busy_timeout) from None

    def transactions(self) -> Iterator[contextlib.AbstractContextManager[sqlite3.Connection]]:
        """Tries of one transaction, as on PostgreSQL: `for attempt in db.transactions(): with attempt as conn:`.

        One try here: BEGIN IMMEDIATE takes the single writer's lock first, so a SQLite
        transaction never meets the deadlock or serialization failure PostgreSQL retries.
        """
        yield self.tx()

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting for another process's lock (in slices when `lock_wait` is set)."""
        if self.lock_wait is None:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _error(exc, self.path, self.busy_timeout) from None
            return
        start = time.monotonic()
        with self._short_waits():
            while True:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.Error as exc:
                    waited = time.monotonic() - start
                    if not _locked(exc) or waited >= self.busy_timeout:
                        raise _error(exc, self.path, self.busy_timeout) from None
                    if self.lock_wait is not None and waited >= self.lock_wait:
                        raise DatabaseError(f"The database {self.path} is locked by another process, "
                                            "and statusctl stopped waiting for it because it is stopping.") from None

    @contextlib.contextmanager
    def _short_waits(self) -> Iterator[None]:
        """SQLite's own lock wait cut to one slice for the duration (the caller loops, or gives up)."""
        self.conn.execute(f"PRAGMA busy_timeout = {int(min(LOCK_SLICE_S, self.busy_timeout) * 1000)}")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

    def query(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[sqlite3.Row]:
        """Run a read statement and return all rows."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise _error(exc, self.path, self.busy_timeout) from None
        except sqlite3.DatabaseError as exc:
            raise _error(exc, self.path, self.busy_timeout) from None

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads outside `tx` and `query`; a fault becomes a DatabaseError sentence."""
        try:
            yield self.conn
        except sqlite3.Error as exc:
            if not _environmental(exc):
                raise
            raise _error(exc, self.path, self.busy_timeout) from None

    def one(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def migrate(self, migrations: list[tuple[str, str]] = MIGRATIONS) -> list[str]:
        """Apply the `migrations` not yet recorded (statusctl's, or the OSS's), each in its own transaction."""
        try:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)"
            )
            done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
        except sqlite3.Error as exc:
            raise _error(exc, self.path, self.busy_timeout) from None
        applied = []
        for name, sql in migrations:
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


def _has_schema(conn: sqlite3.Connection) -> bool:
    """Is this a statusctl database (migrated at least once)? Read before anything writes to the file."""
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    return conn.execute(sql).fetchone() is not None


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _uri(path: Path) -> str:
    """A `file:` URI opening `path` read-write without ever creating it (SQLite would, given a plain name)."""
    from urllib.parse import quote

    return f"file:{quote(os.fspath(path.absolute()))}?mode=rw"


def _create(path: Path) -> None:
    """An empty database file, mode 0600, and its missing folders (for `init`, `setup`, `demo`)."""
    _refuse_orphans(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    except FileExistsError:
        pass  # another process created it meanwhile
    except OSError as exc:
        raise DatabaseError(f"Cannot create the database {path}: {exc.strerror or exc}.") from None


def _refuse_missing(path: Path) -> None:
    _refuse_orphans(path)
    raise DatabaseError(f"There is no database at {path}; check --db / STATUSCTL_DB, "
                        "or create it with `statusctl init`.")


def _refuse_orphans(path: Path) -> None:
    """A deleted database's -wal/-shm must not become part of a new database (SQLite would read them)."""
    left = _sidecars(path)
    if left:
        names = " and ".join(p.name for p in left)
        raise DatabaseError(
            f"The database {path} is missing but its {names} {'is' if len(left) == 1 else 'are'} still there: "
            "it was deleted or moved while in use; put it back, or remove those files to start a new database.")


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
