"""The test's database on either backend, and the helpers that fill and read it.

A test that takes the `target` fixture (tests/conftest.py imports it for every
module) runs once on SQLite (the test's file) and once on PostgreSQL (a database
of the test module on the session's cluster, emptied to what `statusctl init`
leaves before each test); STATUSCTL_DB names it, and every helper below takes
either. `pg_target` is the PostgreSQL one alone. tests/stackhelpers.py
re-exports all of it.
"""

from __future__ import annotations

import base64
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statusctl.core.changes import ChangeSession
from statusctl.core.events import set_event
from statusctl.core.init import initialize
from statusctl.core.orders import import_orders
from statusctl.core.settings import set_value
from statusctl.core.stores import add_store
from statusctl.storage.backends import Target, open_database
from statusctl.storage.db import Database

SECRET = "whsec_" + base64.b64encode(b"stack-tests-signing-key-0123456789").decode()
STORE = "hook"
# Milliseconds, never real waits (see the issue): every retry of a test is due almost at once.
FAST_SCHEDULE = "0.01,0.01"

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="module")
def pg_initialized(pg_url: str) -> Iterator[tuple[str, dict[str, tuple[list[str], list[tuple[Any, ...]]]]]]:
    """The module's PostgreSQL database, migrated and initialised once: (its URL, every table's rows then)."""
    db = open_database(pg_url, create=True)
    try:
        initialize(db)
        tables = [r[0] for r in db.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'migrations' "
            "ORDER BY tablename")]
        rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for table in tables:
            got = db.query(f"SELECT * FROM {table}")
            rows[table] = (list(got[0].keys()) if got else [], [tuple(r) for r in got])
    finally:
        db.close()
    yield pg_url, rows


def _reset_pg(url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
    """Empty every table (identities restarted) and put back what `statusctl init` left (triggers off meanwhile)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '10s'")  # a connection a test left open must not hang the next
        conn.execute(f"TRUNCATE {', '.join(rows)} RESTART IDENTITY CASCADE")  # type: ignore[arg-type]
        conn.execute("SET LOCAL session_replication_role = replica")
        for table, (columns, values) in rows.items():
            if values:
                marks = ", ".join(["%s"] * len(columns))
                conn.cursor().executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, db_file: Path) -> Target:
    """The test's database on each backend: its SQLite file, or a PostgreSQL URL (see the module docstring)."""
    if request.param == "sqlite":
        return db_file
    return str(request.getfixturevalue("pg_target"))


@pytest.fixture
def pg_target(pg_initialized: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's PostgreSQL database only (a test of what only PostgreSQL does): its URL, as `target` gives it."""
    url, rows = pg_initialized
    _reset_pg(url, rows)
    monkeypatch.setenv("STATUSCTL_DB", url)
    return url


def db_errors() -> tuple[type[BaseException], ...]:
    """The driver errors a failing statement raises, on either backend (psycopg's only when installed)."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


def integrity_errors() -> tuple[type[BaseException], ...]:
    """What a refused constraint (or a trigger's refusal) raises, on either backend."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, psycopg.IntegrityError)


def setup_db(
    path: Target,
    stores: dict[str, str],
    *,
    settings: dict[str, str] | None = None,
    options: dict[str, list[str]] | None = None,
    secret: str = SECRET,
) -> None:
    """Init, UseStatusUpdates true, a fast retry schedule, and a webhook store per (name, url).

    order-on-hold is made to fire and notify, so that toggling an order between
    order-approved and order-on-hold queues one record per toggle (see `fill`).
    """
    db = open_database(path, create=True)
    try:
        initialize(db)
        set_value(db, "UseStatusUpdates", "true")
        set_value(db, "StackRetrySchedule", FAST_SCHEDULE)
        for name, value in (settings or {}).items():
            set_value(db, name, value)
        set_event(db, "order-on-hold", fires=True, notify=True)
        for name, url in stores.items():
            add_store(db, name, "webhook", url, [f"secret={secret}"], [], (options or {}).get(name, []))
    finally:
        db.close()


def opened(path: Target, stores: dict[str, str]) -> Iterator[Database]:
    """`setup_db` with these stores, then the database open until the generator ends (a fixture's body)."""
    setup_db(path, stores)
    db = open_database(path)
    try:
        yield db
    finally:
        db.close()


def set_param(path: Target, name: str, value: str) -> None:
    db = open_database(path)
    try:
        set_value(db, name, value)
    finally:
        db.close()


def fill(path: Target, *, records: int, orders: int, store: str = STORE, prefix: str = "O") -> dict[str, list[str]]:
    """Queue `records` records over `orders` new orders of `store`, round robin; returns order -> uids in queue order.

    The orders are imported from a CSV (order-imported does not notify), then
    each record is one `fire` toggling the order between Processing and On Hold,
    all in one transaction through the change engine.
    """
    assert records >= orders > 0
    numbers = [f"{prefix}{i:05d}" for i in range(orders)]
    lines = ["order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity"]
    lines += [f"{n},2026-11-20,Customer {n},c{n}@example.com,90210,SKU-1,Mug,1" for n in numbers]
    db = open_database(path)
    out: dict[str, list[str]] = {n: [] for n in numbers}
    try:
        with tempfile.TemporaryDirectory() as folder:
            csv = Path(folder) / f"orders-{store}-{prefix}.csv"
            csv.write_text("\n".join(lines) + "\n")
            import_orders(db, csv, store)
        with db.tx() as conn:
            session = ChangeSession(conn)
            session.load(numbers)
            for k in range(records):
                number = numbers[k % orders]
                event = "order-approved" if (k // orders) % 2 == 0 else "order-on-hold"
                result = session.fire(number, event, [])
                assert result.record, f"firing {event} on {number} queued nothing"
                out[number].append(result.record)
            session.flush()
    finally:
        db.close()
    return out


def query(path: Target, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    """Rows of a read (or a write, committed) on the test's database, as dicts."""
    db = open_database(path)
    try:
        if sql.lstrip().upper().startswith("SELECT"):
            return [dict(r) for r in db.query(sql, params)]
        with db.tx() as conn:
            conn.execute(sql, params)
        return []
    finally:
        db.close()


def stack_rows(path: Target) -> list[dict[str, Any]]:
    return query(path, "SELECT * FROM stack ORDER BY seq")


def history_rows(path: Target, uid: str | None = None) -> list[dict[str, Any]]:
    if uid is None:
        return query(path, "SELECT * FROM stack_history ORDER BY id")
    return query(path, "SELECT * FROM stack_history WHERE uid = ? ORDER BY id", (uid,))


