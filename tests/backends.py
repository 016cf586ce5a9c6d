"""The database a backend-parametrised test runs on: a SQLite file or a PostgreSQL database, one way to use it.

The reliability suites run once per backend (issue 14): the same steps and the same
assertions, with only the database under them changed. A test gets a `Place` from the
`backend` fixture (tests/reliability/conftest.py) and hands its `ref` (the path or
the URL) to the stack helpers (tests/stackhelpers.py). The few things a
test does to the database from outside statusctl (copy it, hold its write lock, see
whether another process is inside a writing transaction) differ per backend, so they
live here and nowhere in the suites.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from statusctl.storage.backends import open_database
from statusctl.storage.db import Database

if TYPE_CHECKING:
    from .pgcluster import Cluster

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class Place:
    """One test database: its backend, what `--db` takes for it, and the test's own folder."""

    kind: str  # SQLITE or POSTGRESQL
    ref: Path | str  # the SQLite file, or the PostgreSQL URL (TCP to 127.0.0.1): what the controller takes
    dir: Path  # the test's folder: input files, the working directory of the processes it starts
    cluster: Cluster | None = None  # PostgreSQL: the session's cluster (to copy and drop databases)

    @property
    def arg(self) -> str:
        """The value of `--db` / STATUSCTL_DB."""
        return str(self.ref)

    @property
    def dbname(self) -> str:
        """PostgreSQL: the database's name (the URL's path)."""
        return urlsplit(str(self.ref)).path.lstrip("/")

    def open(self) -> Database:
        """The database open (SQLite's `Database` or `PostgresDatabase`), its schema created if it has none."""
        return open_database(self.ref, create=True)

    def clone(self, folder: Path) -> Place:
        """A copy of this database as it is now (closed everywhere): a file in `folder`, or `CREATE DATABASE … TEMPLATE`.

        The PostgreSQL copy is reached through the cluster's Unix socket: it is for in-process checks,
        where a round trip through the socket costs less than through TCP.
        """
        if self.kind == SQLITE:
            path = folder / f"copy-{uuid.uuid4().hex[:8]}.db"
            src, dst = sqlite3.connect(str(self.ref)), sqlite3.connect(path)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            return Place(SQLITE, path, folder)
        assert self.cluster is not None
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.cluster.sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.dbname}" STRATEGY FILE_COPY')  # faster when small
        return Place(POSTGRESQL, self.cluster.socket_url(name), folder, self.cluster)

    def drop(self) -> None:
        """Throw the database away (the test is over with it)."""
        if self.kind == SQLITE:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.ref}{suffix}").unlink(missing_ok=True)
            return
        assert self.cluster is not None
        with contextlib.suppress(Exception):
            self.cluster.sql(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


def sqlite_place(path: Path) -> Place:
    """The test's SQLite file (tests/conftest.py's `db_file`) as a Place."""
    return Place(SQLITE, path, path.parent)


def writing(place: Place) -> bool:
    """Is another process inside a transaction that has written (SQLite: holds the write lock) right now?"""
    if place.kind == SQLITE:
        conn = sqlite3.connect(str(place.ref), timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()
    return bool(_pg_one(place, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"))


def idle_in_transaction(place: Place) -> int:
    """PostgreSQL: how many other sessions sit inside a transaction doing nothing (a frozen client's)."""
    return int(_pg_one(place, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"))


def _pg_one(place: Place, sql: str) -> Any:
    import psycopg

    with psycopg.connect(str(place.ref), autocommit=True) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]  # test-built statements
    assert row is not None
    return row[0]


@contextlib.contextmanager
def _locked(place: Place) -> Iterator[None]:
    """Inside: another connection holds what every statusctl writer of the stack must wait for."""
    if place.kind == SQLITE:
        conn = sqlite3.connect(str(place.ref), isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    from statusctl.storage.stacklocks import lock_destinations

    # What another writer's turn holds (statusctl.storage.stacklocks): every destination's bookkeeping
    # lock, and the heads of every order on the stack (as a producer queuing to them, or a settle, does).
    db = place.open()
    try:
        with db.tx() as conn:
            lock_destinations(conn, [r[0] for r in conn.execute("SELECT destination FROM stack_counts")])
            conn.execute("SELECT 1 FROM stack_heads ORDER BY order_id FOR UPDATE")
            yield
    finally:
        db.close()


def hold_write_lock(place: Place, seconds: float, guard: float = 60.0) -> None:
    """Hold the stack's write lock for `seconds` from another connection (in a thread); returns once it is held."""
    holding = threading.Event()

    def hold() -> None:
        with _locked(place):
            holding.set()
            time.sleep(seconds)

    threading.Thread(target=hold, daemon=True).start()
    assert holding.wait(guard), "could not take the write lock"
