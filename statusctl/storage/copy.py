"""`statusctl db copy`: a whole SQLite database into an empty PostgreSQL one, in one transaction.

What an "empty" target is: a database with no statusctl tables (the copy creates the schema),
or one where only `statusctl init` ran — its settings, meta, labels, mappings and events are
then replaced by the source's. A target holding anything else (a store, an order, a record, a
history row, a registered controller) is refused: a copy never merges two shops' data.

Everything happens in one target transaction (PostgreSQL's DDL is transactional too), so a
failure midway (kill -9, the server gone, a row PostgreSQL refuses) leaves the target as it was.
The source is read in one snapshot and never written: a source behind the latest migration
is refused (any statusctl command migrates it), rather than migrated by a copy.

The stack is copied with its state: seqs, uids, attempts, claims, due times and leases, and
the tables derived from it (stack_heads, stack_counts, store_health), so the new database
sends what is left in the same order. A record under a live lease, or a controller with a
recent heartbeat, is refused: a controller still sending on the old machine would settle its
record there and the new database would send it again. The controllers table is never copied
(the controllers on the new machines register themselves). Afterwards every identity is set
past the copied ids (and past the highest seq SQLite's AUTOINCREMENT ever gave), so new
records, orders and packages get new numbers.

Rows go through PostgreSQL's COPY, read from SQLite in batches (never all in memory).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from statusctl.domain.errors import DatabaseError
from statusctl.storage import health, pgschema
from statusctl.storage import migrations as sqlite_schema
from statusctl.storage.pgconnect import quiet_end

if TYPE_CHECKING:
    import sqlite3

    from statusctl.storage.db import Database
    from statusctl.storage.postgres import PgConnection, PostgresDatabase

BATCH = 5000  # SQLite rows read per fetch
# Copied in this order (a table after those its foreign keys name); meta last, after the
# stores and label_maps triggers that bump its config_version have run on an empty meta.
TABLES: tuple[tuple[str, str], ...] = (
    ("settings", "name"), ("labels", "name"), ("label_maps", "label, cart"), ("events", "name"),
    ("stores", "name"), ("orders", "id"), ("items", "id"), ("packages", "id"),
    ("package_items", "package_id, item_id"), ("label_history", "id"), ("stack", "seq"),
    ("stack_heads", "order_id"), ("stack_counts", "destination"), ("store_health", "destination"),
    ("stack_history", "id"), ("meta", "key"),
)
DEFAULTS = ("label_maps", "events", "labels", "settings", "meta")  # what `init` writes: replaced (in this order)
IDENTITIES = {"labels": "rowid", "orders": "id", "items": "id", "packages": "id", "label_history": "id",
              "stack": "seq", "stack_history": "id"}
ROWID_TABLES = ("labels",)  # SQLite's implicit rowid is a column of that name on PostgreSQL (pgschema 0006)
NOT_COPIED = ("controllers", "migrations")


@dataclass
class CopyReport:
    """What a copy wrote: rows per table (in copy order), and the next id each identity gives."""

    source: str
    target: str
    tables: dict[str, int] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)
    created_schema: bool = False
    seconds: float = 0.0


class Progress:
    """What the copy tells while it runs (the CLI draws a bar); this one tells nothing."""

    def begin(self, counts: dict[str, int]) -> None:
        """The rows each table will copy, before the first row."""

    def advance(self, table: str, rows: int) -> None:
        """`rows` more rows of `table` were written."""


def copy_database(source: Database, target: PostgresDatabase, *, progress: Progress | None = None) -> CopyReport:
    """Copy every statusctl table of `source` into `target` in one transaction (see the module docstring)."""
    progress = progress or Progress()
    report = CopyReport(source=str(source.path), target=target.name)
    start = time.monotonic()
    with source.reading() as src:
        src.execute("BEGIN")  # one snapshot of every table; nothing is written
        try:
            _check_source(src, source)
            counts = {t: int(src.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t, _ in TABLES}
            progress.begin(counts)
            with target.tx() as conn:
                report.created_schema = _prepare_target(conn, target.name)
                _check_columns(src, conn, target.name)
                for table, order in TABLES:
                    report.tables[table] = _copy_table(src, conn, table, order, progress)
                report.next_ids = _set_identities(src, conn)
        finally:
            src.execute("ROLLBACK")
    report.seconds = time.monotonic() - start
    return report


# -- the source -------------------------------------------------------------------


def _check_source(src: sqlite3.Connection, source: Database) -> None:
    """Refuse a source that is behind (or ahead of) this statusctl's schema, or still in use by a controller."""
    known = [name for name, _ in sqlite_schema.MIGRATIONS]
    if known != [name for name, _ in pgschema.MIGRATIONS]:
        raise DatabaseError("This statusctl's SQLite and PostgreSQL schemas differ, so it cannot copy a database; "
                            "install a released version.")
    done = {r[0] for r in src.execute("SELECT name FROM migrations")}
    newer = sorted(done - set(known))
    if newer:
        raise DatabaseError(f"The database {source.path} was written by a newer statusctl (migration {newer[0]}); "
                            "copy it with that version.")
    missing = [n for n in known if n not in done]
    if missing:
        raise DatabaseError(f"The database {source.path} is not at the latest migration ({missing[0]} is missing): "
                            f"run `statusctl init --db {source.path}` to migrate it, then copy it.")
    _refuse_live_senders(src, source, time.time())


def _refuse_live_senders(src: sqlite3.Connection, source: Database, now: float) -> None:
    """A controller alive, or a record leased, on the old machine could be settled there and sent again here."""
    alive = src.execute("SELECT host, pid FROM controllers WHERE heartbeat >= ? ORDER BY started",
                        (now - health.STALE_AFTER_S,)).fetchall()
    if alive:
        who = ", ".join(f"pid {pid} on {host}" for host, pid in alive)
        raise DatabaseError(f"A controller is running on {source.path} ({who}): stop every `statusctl stack run` "
                            "and watcher first, so that no record is sent from both databases.")
    row = src.execute("SELECT COUNT(*), MAX(lease_until) FROM stack WHERE lease_until >= ?", (now,)).fetchone()
    if row[0]:
        wait = max(1, int(row[1] - now) + 1)
        raise DatabaseError(f"{row[0]} record(s) on {source.path} are still leased by a controller that stopped "
                            f"without settling them; try again in {wait} s, when the leases have run out.")


# -- the target -------------------------------------------------------------------


def _prepare_target(conn: PgConnection, name: str) -> bool:
    """Lock the target, create the schema if it has none, refuse it if it holds data; True if created here.

    The advisory lock is the one migrations take: an `init` or another copy started at the
    same time waits for this transaction, then sees what it wrote.
    """
    conn.execute("SET LOCAL statement_timeout = 0")  # one COPY of a big stack may outlast the usual limit
    conn.execute("SELECT pg_advisory_xact_lock(?)", (pgschema.MIGRATION_LOCK,))
    created = not _exists(conn, "migrations")
    if created:
        foreign = [t for t, _ in TABLES if _exists(conn, t)] + [t for t in NOT_COPIED if _exists(conn, t)]
        if foreign:
            raise DatabaseError(f"{name} already holds a table named {foreign[0]} that is not statusctl's: "
                                "give the URL of an empty database (createdb a new one).")
        _create_schema(conn)
    else:
        _check_target_schema(conn, name)
    tables = ", ".join([t for t, _ in TABLES] + ["controllers"])
    conn.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")  # no statusctl command writes meanwhile
    _refuse_data(conn, name)
    for table in DEFAULTS:
        conn.execute(f"DELETE FROM {table}")
    return created


def _exists(conn: PgConnection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(?) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _create_schema(conn: PgConnection) -> None:
    """PostgreSQL's migrations, run inside this transaction (a failed copy leaves no tables behind)."""
    conn.execute("CREATE TABLE migrations (name text PRIMARY KEY, applied double precision NOT NULL)")
    for name, sql in pgschema.MIGRATIONS:
        conn.execute(sql)
        conn.execute("INSERT INTO migrations (name, applied) VALUES (?, extract(epoch FROM clock_timestamp()))",
                     (name,))


def _check_target_schema(conn: PgConnection, name: str) -> None:
    done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    known = [n for n, _ in pgschema.MIGRATIONS]
    if set(known) != done:
        raise DatabaseError(f"{name} is not at this statusctl's schema version: give the URL of an empty database "
                            "(createdb a new one), or one where this version's `statusctl init` ran.")


def _refuse_data(conn: PgConnection, name: str) -> None:
    """A target with anything beyond `init`'s defaults is refused, naming what it holds."""
    held = [t for t, _ in TABLES if t not in DEFAULTS] + ["controllers"]
    found = [t for t in held if conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]
    if found:
        raise DatabaseError(f"{name} already holds statusctl data (rows in {', '.join(found)}): a copy goes only into "
                            "an empty database; give the URL of a new one (createdb).")


def _columns_sqlite(src: sqlite3.Connection, table: str) -> list[str]:
    """The table's columns as PostgreSQL has them: SQLite's declared ones, and the rowid where it is one there."""
    declared = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
    return ["rowid", *declared] if table in ROWID_TABLES else declared


def _check_columns(src: sqlite3.Connection, conn: PgConnection, name: str) -> None:
    """The same columns on both sides (both are at the same migration; this catches a schema edited by hand)."""
    for table, _ in TABLES:
        theirs = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ?", (table,))}
        ours = set(_columns_sqlite(src, table))
        if ours != theirs:
            odd = sorted(ours ^ theirs)
            raise DatabaseError(f"The table {table} has different columns in the source and in {name} "
                                f"({', '.join(odd)}): the copy needs two unaltered statusctl schemas.")


# -- the rows ---------------------------------------------------------------------


def _batches(src: sqlite3.Connection, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    cur = src.cursor()
    cur.row_factory = None  # plain tuples: what COPY's write_row takes, and cheaper than sqlite3.Row
    cur.execute(sql)
    while batch := cur.fetchmany(BATCH):
        yield batch


def _copy_table(src: sqlite3.Connection, conn: PgConnection, table: str, order: str, progress: Progress) -> int:
    """Every row of `table`, in key order, through one COPY; the number of rows written."""
    import psycopg

    cols = ", ".join(_columns_sqlite(src, table))
    written = 0
    try:
        with quiet_end(), conn.raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for batch in _batches(src, f"SELECT {cols} FROM {table} ORDER BY {order}"):
                write: Callable[[tuple[Any, ...]], None] = copy.write_row
                for row in batch:
                    write(row)
                written += len(batch)
                progress.advance(table, len(batch))
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        detail = str(exc).strip().splitlines()[0].rstrip(".")
        raise DatabaseError(f"PostgreSQL refused a row of {table} ({detail}), so nothing was copied.") from None
    return written


def _set_identities(src: sqlite3.Connection, conn: PgConnection) -> dict[str, int]:
    """Each identity past the copied ids (the stack's past every seq SQLite ever gave); the next id of each."""
    used = {r[0]: int(r[1]) for r in src.execute("SELECT name, seq FROM sqlite_sequence")}
    next_ids = {}
    for table, col in IDENTITIES.items():
        top = int(src.execute(f"SELECT COALESCE(MAX({col}), 0) FROM {table}").fetchone()[0])
        top = max(top, used.get(table, 0))
        seq = f"pg_get_serial_sequence('{table}', '{col}')"
        if top:
            conn.execute(f"SELECT setval({seq}, ?, true)", (top,))
        else:
            conn.execute(f"SELECT setval({seq}, 1, false)")
        next_ids[f"{table}.{col}"] = top + 1
    return next_ids
