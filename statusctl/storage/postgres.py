"""The PostgreSQL backend: the interface of SQLite's `Database` on one psycopg connection.

Storage code written for SQLite (`with db.tx() as conn: conn.execute(sql, params)`, `?`
placeholders, rows read as `row[0]` or `row["name"]`) runs here unchanged where its SQL is
portable (statusctl.storage.pgsql translates placeholders and makes the rows).

The URL goes to libpq unchanged (statusctl.storage.pgconnect), so `postgres://`,
`?host=/socket/dir`, the PG* variables and ~/.pgpass all work; only its masked form
(`name`) is ever shown. Every connection
bounds its waits: `lock_timeout` is statusctl's busy timeout (STATUSCTL_BUSY_TIMEOUT), and
a statement or an idle transaction is cut off after STATEMENT_TIMEOUT_S / IDLE_TIMEOUT_S,
so a frozen client never holds a lock for long. A connection found broken (the server
restarted, or closed an idle session) is replaced at the start of the next transaction
(and a read that finds it dead is run once more on the new one).

psycopg is imported inside the functions that connect, never when this module is imported:
a SQLite command must not pay for it.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from statusctl.domain.errors import DatabaseError
from statusctl.domain.urls import mask_db_url as masked
from statusctl.storage import pgerrors
from statusctl.storage.db import busy_timeout
from statusctl.storage.pgconnect import connect, environmental, load_psycopg, ms, quiet_end
from statusctl.storage.pgschema import MIGRATION_LOCK, MIGRATIONS
from statusctl.storage.pgsql import Row, translate

if TYPE_CHECKING:
    import psycopg

STATEMENT_TIMEOUT_S = 120.0  # a statement running longer is cancelled by the server
IDLE_TIMEOUT_S = 60.0  # a transaction left idle longer (a frozen client) is ended by the server
RETRY_TRIES = 8  # whole-transaction tries on a serialization failure or a deadlock
RETRY_BACKOFF_S = 0.02  # first backoff; doubled per try, jittered, at most RETRY_BACKOFF_MAX_S
RETRY_BACKOFF_MAX_S = 0.5
Params = tuple[object, ...] | list[object] | dict[str, object] | None


class _Retry(Exception):
    """A retryable conflict inside `transactions()`: roll back and run the body again."""


class PgConnection:
    """What `tx()` and `reading()` yield: `execute` / `executemany` in SQLite's placeholder style."""

    dialect = "postgresql"  # as PostgresDatabase's: storage code holding only a connection can branch on it

    def now(self) -> float:
        """The server's clock in epoch seconds, inside this transaction (statusctl.storage.dialect.now)."""
        row = self.raw.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        assert row is not None
        return float(row[0])

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Params = None) -> psycopg.Cursor[Row]:
        """Run one statement; without parameters the SQL goes as written (several statements allowed)."""
        if not params:
            return self.raw.execute(sql)
        return self.raw.execute(translate(sql), params)

    def executemany(self, sql: str, rows: Any) -> psycopg.Cursor[Row]:
        """Run one statement for each parameter row (psycopg pipelines them: one round trip, not one each)."""
        cur = self.raw.cursor()
        cur.executemany(translate(sql), rows)
        return cur

    @contextlib.contextmanager
    def stream(self) -> Iterator[Stream]:
        """Inside, statements go out without waiting for their results (psycopg's pipeline mode); a read
        waits for everything sent before it, and the block's end for all of it."""
        with quiet_end(), self.raw.pipeline() as pipeline:
            yield Stream(self.raw, pipeline)


class Stream:
    """A psycopg pipeline a long session's writes go out in (`PgConnection.stream`)."""

    def __init__(self, conn: psycopg.Connection[Row], pipeline: psycopg.Pipeline) -> None:
        self._conn = conn
        self._pipeline = pipeline

    def sync(self) -> None:
        """End what was sent so far with a Sync, without waiting for its results.

        Inside a pipeline the server counts the session idle only after a Sync: without one a
        client frozen between two batches would hold its locks past `idle_in_transaction_session_timeout`
        for ever. psycopg's public `Pipeline.sync()` also waits for every result (the server's work
        and this process's would take turns again), so the Sync goes out through the pipeline's own
        queue; a psycopg without it gets the waiting sync (tests/storage/test_apply_pg.py holds both).
        """
        enqueue = getattr(self._pipeline, "_enqueue_sync", None)
        communicate = getattr(self._pipeline, "_communicate_gen", None)
        if enqueue is None or communicate is None:
            self._pipeline.sync()
            return
        enqueue()
        self._conn.wait(communicate())


class Attempt:
    """One try of `PostgresDatabase.transactions()`: a `with` block that is one transaction."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._tx: contextlib.AbstractContextManager[PgConnection] | None = None
        self.retry = False

    def __enter__(self) -> PgConnection:
        self._tx = self._db._transaction(retrying=True)
        return self._tx.__enter__()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        assert self._tx is not None
        try:
            self._tx.__exit__(kind, exc, tb)
        except _Retry:
            self.retry = True
            return True
        return False


class PostgresDatabase:
    """One PostgreSQL connection with statusctl's session settings and transaction helpers."""

    dialect = "postgresql"

    def __init__(self, url: str, conn: psycopg.Connection[Row], timeout: float) -> None:
        self._url = url  # never shown: `name` is
        self.name = masked(url)
        self._conn = conn
        self.busy_timeout = timeout
        self.statement_timeout = _statement_timeout(timeout)
        self.idle_timeout = IDLE_TIMEOUT_S
        self._lock_wait: float | None = None
        self._lock_timeout_set = timeout  # the session's lock_timeout now
        self._in_tx = 0  # a serial number of the transaction going on, 0 outside one
        self._serial = 0
        self._stop_cancelled = False

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.name!r})"

    @classmethod
    def open(cls, url: str, *, create: bool = False, migrate: bool = True) -> PostgresDatabase:
        """Connect to the database at `url` and migrate it; without `create`, refuse one with no statusctl schema.

        `create` never creates the database itself (that is `createdb`'s or the DBA's job);
        it lets `statusctl init` create statusctl's tables in an empty one.
        """
        timeout = busy_timeout()
        db = cls(url, connect(url, timeout, _statement_timeout(timeout), IDLE_TIMEOUT_S), timeout)
        try:
            if not create and not db._has_schema():
                raise DatabaseError(f"{db.name} holds no statusctl database (no statusctl tables); check --db / "
                                    "STATUSCTL_DB, or create the database with `statusctl init`.")
            if migrate:
                db.migrate()
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    # -- lock waits ---------------------------------------------------------------

    @property
    def lock_wait(self) -> float | None:
        """When set (a controller): lock waits last at most this many seconds (and the busy timeout).

        Lowering it while a transaction waits cuts that wait short after the new bound, as
        SQLite's sliced waits do: a controller that is stopping stops waiting for locks.
        """
        return self._lock_wait

    @lock_wait.setter
    def lock_wait(self, seconds: float | None) -> None:
        lowered = seconds is not None and (self._lock_wait is None or seconds < self._lock_wait)
        self._lock_wait = seconds
        if lowered and self._in_tx and seconds is not None and seconds < self.busy_timeout:
            timer = threading.Timer(seconds, self._cancel_for_stop, args=(self._in_tx,))
            timer.daemon = True
            timer.start()

    def _cancel_for_stop(self, serial: int) -> None:
        if self._in_tx == serial:
            self._stop_cancelled = True
            with contextlib.suppress(Exception):
                self._conn.cancel_safe() if hasattr(self._conn, "cancel_safe") else self._conn.cancel()

    def _lock_timeout(self) -> float:
        return self.busy_timeout if self._lock_wait is None else min(self.busy_timeout, self._lock_wait)

    def _stopping(self) -> bool:
        return self._stop_cancelled or self._lock_timeout() < self.busy_timeout

    # -- connections and faults ---------------------------------------------------

    def _connection(self) -> psycopg.Connection[Row]:
        """The connection, replaced first when broken (nothing of a transaction can be lost then)."""
        if self._conn.closed or self._conn.broken:
            self.close()
            self._conn = connect(self._url, self.busy_timeout, self.statement_timeout, self.idle_timeout)
            self._lock_timeout_set = self.busy_timeout
        wanted = self._lock_timeout()
        if wanted != self._lock_timeout_set:
            self._conn.execute(f"SET lock_timeout = {ms(wanted)}")
            self._lock_timeout_set = wanted
        return self._conn

    def _fault(self, exc: BaseException, *, committing: bool = False) -> DatabaseError:
        error = pgerrors.statement_error(
            exc, self.name, self._url, lock_timeout=self._lock_timeout(), statement_timeout=self.statement_timeout,
            stopping=self._stopping(), lost=self._conn.closed or self._conn.broken, committing=committing,
            idle_timeout=self.idle_timeout)
        if getattr(exc, "sqlstate", None) == pgerrors.READ_ONLY:
            # The session keeps the read-only default it connected with (a standby, or ALTER DATABASE ...
            # SET default_transaction_read_only): the next transaction connects afresh, to see it lifted or
            # the primary back; a watcher kept on this session would wait out the fault for ever.
            self.close()
        return error

    def _begin(self) -> psycopg.Connection[Row]:
        """BEGIN, on a fresh connection if the old one turns out dead at this first statement."""
        psycopg = load_psycopg()
        for fresh in (False, True):
            try:
                conn = self._connection()
                conn.execute("BEGIN")
                return conn
            except psycopg.Error as exc:
                if fresh or not (self._conn.closed or self._conn.broken):
                    raise self._fault(exc) from None
        raise AssertionError("unreachable")

    # -- transactions -------------------------------------------------------------

    def tx(self) -> contextlib.AbstractContextManager[PgConnection]:
        """A writing transaction: BEGIN, commit on success, roll back on any error."""
        return self._transaction(retrying=False)

    @contextlib.contextmanager
    def _transaction(self, *, retrying: bool) -> Iterator[PgConnection]:
        conn = self._begin()
        self._serial += 1
        self._in_tx, self._stop_cancelled = self._serial, False
        try:
            try:
                yield PgConnection(conn)
            except BaseException as exc:
                self._rollback(conn)
                if retrying and getattr(exc, "sqlstate", None) in pgerrors.RETRYABLE:
                    raise _Retry from None
                if environmental(exc):
                    raise self._fault(exc) from None
                raise
            try:
                conn.execute("COMMIT")
            except load_psycopg().Error as exc:
                self._rollback(conn)
                if retrying and exc.sqlstate in pgerrors.RETRYABLE:
                    raise _Retry from None
                raise self._fault(exc, committing=exc.sqlstate is None) from None
        finally:
            self._in_tx = 0

    def _rollback(self, conn: psycopg.Connection[Row]) -> None:
        with contextlib.suppress(Exception):
            if not (conn.closed or conn.broken):
                conn.execute("ROLLBACK")

    def transactions(self, tries: int = RETRY_TRIES, *, sleep: Any = time.sleep,
                     rng: random.Random | None = None) -> Iterator[Attempt]:
        """Tries of one transaction: `for attempt in db.transactions(): with attempt as conn: ...`.

        On a serialization failure or a deadlock the transaction is rolled back and the body
        runs again after a short jittered backoff; after `tries` tries, a DatabaseError.
        """
        rng = rng or random.Random()
        for n in range(tries):
            attempt = Attempt(self)
            yield attempt
            if not attempt.retry:
                return
            if n + 1 < tries:
                sleep(rng.uniform(0, min(RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_S * 2 ** n)))
        raise pgerrors.retries_exhausted(self.name, tries)

    # -- reads --------------------------------------------------------------------

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a read statement (its own transaction) and return all rows."""
        for fresh in (False, True):
            try:
                with self.reading() as conn:
                    cur = conn.execute(sql, params)
                    return cur.fetchall() if cur.description is not None else []
            except DatabaseError:
                if fresh or not (self._conn.closed or self._conn.broken):
                    raise
        raise AssertionError("unreachable")

    def one(self, sql: str, params: Params = ()) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def reading(self) -> Iterator[PgConnection]:
        """The connection for reads outside `tx` (each statement its own snapshot); faults become sentences."""
        try:
            conn = self._connection()
        except load_psycopg().Error as exc:
            raise self._fault(exc) from None
        try:
            yield PgConnection(conn)
        except BaseException as exc:
            if environmental(exc):
                raise self._fault(exc) from None
            raise

    def now(self) -> float:
        """The server's clock in epoch seconds: leases are judged by one clock for every machine."""
        with self.reading() as conn:
            return conn.now()

    def relax_durability(self) -> None:
        """Nothing: a controller's commits stay durable here (the server is shared; SQLite's is a local trade-off)."""

    def check_identity(self) -> None:
        """Nothing to check: a server has no database file that could be deleted or replaced under us."""

    # -- schema -------------------------------------------------------------------

    def _has_schema(self) -> bool:
        return self.one("SELECT to_regclass('migrations') IS NOT NULL")[0] is True  # type: ignore[index]

    def migrate(self, migrations: list[tuple[str, str]] = MIGRATIONS) -> list[str]:
        """Apply the `migrations` not yet recorded (statusctl's, or the OSS's), each in its own transaction under an advisory lock.

        The lock serialises several machines migrating at once (`statusctl init` everywhere):
        the second waits, then finds the migration recorded and skips it.
        """
        done = {r[0] for r in self.query("SELECT name FROM migrations")} if self._has_schema() else set()
        applied = []
        for name, sql in migrations:
            if name in done:
                continue
            with self.tx() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS migrations (name text PRIMARY KEY, "
                             "applied double precision NOT NULL)")
                if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                    continue
                conn.execute(sql)
                conn.execute("INSERT INTO migrations (name, applied) "
                             "VALUES (?, extract(epoch FROM clock_timestamp()))", (name,))
            applied.append(name)
        return applied


def _statement_timeout(lock_timeout: float) -> float:
    """STATEMENT_TIMEOUT_S, or longer where the lock timeout is long: a statement may first wait for a lock."""
    return max(STATEMENT_TIMEOUT_S, 2 * lock_timeout)
