"""The OSS's own database on the storage layer: its migrations per backend, and every statement it runs.

The OSS keeps a database of its own, never the statusctl database: the orders as customers
see them, their packages, and the history of the updates received. The main database's
migration runner applies `migrations(db.dialect)` to it; the SQLite names and scripts are
the ones that shipped (`oss_0001_initial`, `oss_0002_lookup_index`) and are never edited.

Several OSS processes may write one PostgreSQL database at once. Every write is an upsert
that keeps the newest `changed_at` (`ON CONFLICT ... DO UPDATE ... WHERE`), which PostgreSQL
judges against the committed row under its row lock, and a repeated webhook-id waits for
the first insert's outcome on the unique index. What SQLite's single writer gave for free
is a lock per order: an update takes its order's advisory lock before writing, and a batch
takes them in sorted order, so two processes applying updates of the same orders (whose
packages may be listed in different orders) never deadlock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from statusctl.domain.carriers import carrier_key
from statusctl.domain.errors import DatabaseError, shown
from statusctl.domain.record import Payload, changed_items, order_changed
from statusctl.domain.urls import mask_url
from statusctl.storage.backends import Target, is_postgres, open_database
from statusctl.storage.pgerrors import RETRYABLE

Outcome = Literal["applied", "late", "duplicate"]

SQLITE_MIGRATIONS: list[tuple[str, str]] = [
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
        # Lookups read only this index, whether the order number is known or not (CANDIDATES).
        "oss_0002_lookup_index",
        """
        CREATE INDEX orders_lookup ON orders (number_key, changed_at, store, number, postal_key);
        DROP INDEX orders_number_key;
        """,
    ),
]

# The same tables on PostgreSQL, under the same names. REAL is double precision; keys and
# the texts sorted on compare byte by byte (COLLATE "C"), as SQLite compares them; SQLite's
# implicit rowid of `packages` (the order packages arrived in) is an identity column of that
# name, so the statements read the same on both.
POSTGRES_MIGRATIONS: list[tuple[str, str]] = [
    (
        "oss_0001_initial",
        """
        CREATE TABLE orders (
            store      text COLLATE "C" NOT NULL,
            number     text COLLATE "C" NOT NULL,
            number_key text COLLATE "C" NOT NULL,
            postal_key text NOT NULL,
            label      text,
            order_date text NOT NULL,
            items      text NOT NULL,
            changed_at double precision NOT NULL,
            received   double precision NOT NULL,
            PRIMARY KEY (store, number)
        );
        CREATE INDEX orders_number_key ON orders (number_key);
        CREATE TABLE packages (
            rowid      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            store      text COLLATE "C" NOT NULL,
            number     text COLLATE "C" NOT NULL,
            key        text COLLATE "C" NOT NULL,
            tracking   text,
            carrier    text,
            shipped_at text COLLATE "C" NOT NULL,
            items      text NOT NULL,
            changed_at double precision NOT NULL,
            PRIMARY KEY (store, number, key)
        );
        CREATE TABLE history (
            id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            webhook_id text COLLATE "C" NOT NULL UNIQUE,
            store      text COLLATE "C" NOT NULL,
            number     text COLLATE "C" NOT NULL,
            changed_at double precision NOT NULL,
            entry      text NOT NULL,
            received   double precision NOT NULL
        );
        CREATE INDEX history_order ON history (store, number, changed_at);
        """,
    ),
    (
        "oss_0002_lookup_index",
        """
        CREATE INDEX orders_lookup ON orders (number_key, changed_at, store, number, postal_key);
        DROP INDEX orders_number_key;
        """,
    ),
]

ORDER_LOCK = 0x4F5353  # pg_advisory_xact_lock's first key ("OSS"); the second is the order's hash


def migrations(dialect: str) -> list[tuple[str, str]]:
    """The OSS's migrations for a database of this dialect ("sqlite" or "postgresql")."""
    return POSTGRES_MIGRATIONS if dialect == "postgresql" else SQLITE_MIGRATIONS


def open_oss_database(target: Target, *, migrate: bool = True) -> Any:
    """The OSS database at `target`: a file path (SQLite) or a PostgreSQL URL.

    With `migrate` (the first connection of a server) it is created when missing and
    brought up to date; without it (a server's further connections) it must exist.
    A mistyped path must not become folders: the file's folder must exist already.
    """
    if not is_postgres(target):
        if isinstance(target, str) and "://" in target:  # the CLI refuses these first (core.paths.db_target)
            raise DatabaseError(f"The OSS database {shown(mask_url(target))} is neither a file path nor a "
                                "postgresql:// URL.")
        target = Path(target)
        if target.is_dir():
            raise DatabaseError(f"The OSS database {target} is a directory, not a database file.")
        if not target.parent.is_dir():
            raise DatabaseError(f"Cannot create the OSS database {target}: the folder {target.parent} does not exist.")
    db = open_database(target, create=migrate, migrate=False)
    try:
        if db.one(_MAIN_TABLE[db.dialect]) is not None:
            raise DatabaseError(f"{db.name} is the statusctl database, not the OSS's: give the OSS a database "
                                "of its own (a SQLite file, or a PostgreSQL database, with --db).")
        if migrate:
            db.migrate(migrations(db.dialect))
    except BaseException:
        db.close()
        raise
    return db


# Found only in the main statusctl database (its stack): the OSS must never write its tables into it.
_MAIN_TABLE = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stack'",
    "postgresql": "SELECT 1 WHERE to_regclass('stack') IS NOT NULL",
}


@dataclass(frozen=True)
class Update:
    """One signed update to record: the payload, when it changed, and the keys lookups search by."""

    payload: Payload
    changed_at: float
    webhook_id: str
    received: float
    number_key: str  # links.number_key of the order number
    postal_key: str  # links.postal_key of its postal code

    @property
    def order(self) -> tuple[str, str]:
        return self.payload["store"], self.payload["order"]["number"]


def apply_batch(db: Any, updates: Sequence[Update]) -> list[Outcome | Exception]:
    """Apply `updates` in one transaction, each in its own savepoint: each one's outcome, or what it raised.

    One commit (one fsync on SQLite) serves the whole batch, and one bad update sinks
    none of the others. The orders are visited in sorted order (arrival order within one
    order), so their locks are taken in one order by every process. A deadlock or a
    serialization failure is not rescued by the savepoint: the whole batch runs again.
    """
    postgres = db.dialect == "postgresql"
    results: dict[int, Outcome | Exception] = {}
    try:
        for attempt in db.transactions():
            with attempt as conn:
                for i in sorted(range(len(updates)), key=lambda i: updates[i].order):
                    results[i] = _apply_saved(conn, updates[i], postgres, db.name)
    except _driver_errors(postgres) as exc:
        raise _cannot_write(db.name, exc) from None
    return [results[i] for i in range(len(updates))]


def _driver_errors(postgres: bool) -> tuple[type[Exception], ...]:
    """The exceptions of the database driver (psycopg is imported only for a PostgreSQL database)."""
    if not postgres:
        return (sqlite3.Error,)
    import psycopg

    return (sqlite3.Error, psycopg.Error)


def _cannot_write(name: str, exc: Exception) -> DatabaseError:
    return DatabaseError(f"Cannot write the OSS database {name}: {' '.join(str(exc).split()).rstrip('.')}.")


def _apply_saved(conn: Any, update: Update, postgres: bool, name: str) -> Outcome | Exception:
    if postgres:
        store, number = update.order
        conn.execute(f"SELECT pg_advisory_xact_lock({ORDER_LOCK}, hashtext(?))", (f"{len(store)}:{store}{number}",))
    conn.execute("SAVEPOINT job")
    try:
        outcome: Outcome | Exception = _apply_one(conn, update)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) in RETRYABLE:
            raise
        conn.execute("ROLLBACK TO job")
        outcome = _cannot_write(name, exc) if isinstance(exc, _driver_errors(postgres)) else exc
    conn.execute("RELEASE job")
    return outcome


def _package_key(update: Update, index: int, pkg: Any) -> str:
    if not pkg["tracking"]:
        return f"{update.webhook_id}#{index}"
    return f"{carrier_key(pkg['carrier']) or (pkg['carrier'] or '').lower()}|{pkg['tracking']}"


def _apply_one(conn: Any, u: Update) -> Outcome:
    p, order = u.payload, u.payload["order"]
    store, number = u.order
    entry = {
        "order_label": order["label"],
        "previous_label": order["previous_label"],
        "order_changed": order_changed(p),
        "items": changed_items(p),
        "packages": p["packages"],
        "note": p["note"],
        "events": p["events"],
    }
    cur = conn.execute(
        "INSERT INTO history (webhook_id, store, number, changed_at, entry, received)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (webhook_id) DO NOTHING",
        (u.webhook_id, store, number, u.changed_at, json.dumps(entry), u.received),
    )
    if cur.rowcount == 0:
        return "duplicate"
    for i, pkg in enumerate(p["packages"]):
        conn.execute(
            "INSERT INTO packages (store, number, key, tracking, carrier, shipped_at, items, changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, number, key) DO UPDATE SET"
            " carrier = excluded.carrier, shipped_at = excluded.shipped_at, items = excluded.items,"
            " changed_at = excluded.changed_at WHERE excluded.changed_at >= packages.changed_at",
            (store, number, _package_key(u, i, pkg), pkg["tracking"], pkg["carrier"], pkg["shipped_at"],
             json.dumps(pkg["items"]), u.changed_at),
        )
    cur = conn.execute(
        "INSERT INTO orders (store, number, number_key, postal_key, label, order_date, items,"
        " changed_at, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (store, number) DO UPDATE SET postal_key = excluded.postal_key,"
        " label = excluded.label, order_date = excluded.order_date, items = excluded.items,"
        " changed_at = excluded.changed_at, received = excluded.received"
        " WHERE excluded.changed_at >= orders.changed_at",
        (store, number, u.number_key, u.postal_key, order["label"], order["date"], json.dumps(p["items"]),
         u.changed_at, u.received),
    )
    return "applied" if cur.rowcount else "late"


# The orders a lookup may show, newest first. The index holds every column read, so a known
# number and an unknown one each cost one index search (no table read, no sort). Two
# statements rather than `? IS NULL OR store = ?`: PostgreSQL cannot type a lone NULL.
CANDIDATES = "SELECT store, number, postal_key FROM orders WHERE number_key = ? ORDER BY changed_at DESC"
CANDIDATES_IN_STORE = (
    "SELECT store, number, postal_key FROM orders WHERE number_key = ? AND store = ? ORDER BY changed_at DESC"
)


def candidates(db: Any, number_key: str, store: str | None) -> list[Any]:
    """(store, number, postal_key) rows of the orders whose number reads as `number_key`, newest first."""
    if store:
        return list(db.query(CANDIDATES_IN_STORE, (number_key, store)))
    return list(db.query(CANDIDATES, (number_key,)))


def order_rows(db: Any, store: str, number: str) -> tuple[Any, list[Any], list[Any]] | None:
    """The order's row, its packages (in the order they arrived) and its history (newest first); None if unknown."""
    found = db.one(
        "SELECT postal_key, label, order_date, items, changed_at FROM orders WHERE store = ? AND number = ?",
        (store, number),
    )
    if found is None:
        return None
    packages = db.query(
        "SELECT tracking, carrier, shipped_at, items FROM packages WHERE store = ? AND number = ?"
        " ORDER BY shipped_at, rowid",
        (store, number),
    )
    history = db.query(
        "SELECT changed_at, entry FROM history WHERE store = ? AND number = ? ORDER BY changed_at DESC, id DESC",
        (store, number),
    )
    return found, list(packages), list(history)


def ping(db: Any) -> None:
    """Raise DatabaseError when the database cannot be read."""
    db.query("SELECT 1")
