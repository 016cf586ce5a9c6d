"""The OSS's storage: applying updates (newest `changed_at` wins) and finding orders for customers.

Writes go through one connection. Concurrent `apply` calls are combined: the
thread that gets the write lock commits every update waiting at that moment in
one transaction (each inside its own savepoint), so one fsync serves a whole
batch. Reads use one connection per thread; WAL lets them run beside a write.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, cast

from statusctl.domain.carriers import carrier_key
from statusctl.domain.errors import DatabaseError
from statusctl.domain.record import (
    ItemPart,
    PackageItem,
    PackagePart,
    Payload,
    changed_items,
    order_changed,
)
from statusctl.oss import schema
from statusctl.oss.links import Token, number_key, postal_key, postal_matches

Outcome = Literal["applied", "late", "duplicate"]
_STAND_IN = (None, "", "00000")  # compared when no order has the number; never shown


@dataclass(frozen=True)
class Package:
    tracking: str | None
    carrier: str | None
    shipped_at: str
    items: list[PackageItem]


@dataclass(frozen=True)
class Entry:
    """One update in an order's history."""

    changed_at: datetime
    order_label: str | None
    previous_label: str | None
    order_changed: bool
    items: list[ItemPart]  # the items whose label this update changed
    packages: list[PackagePart]
    note: str | None


@dataclass(frozen=True)
class OrderView:
    """What a customer may see of one order."""

    store: str
    number: str
    postal_key: str  # for signing links; never shown
    label: str | None
    date: str
    changed_at: datetime
    items: list[ItemPart]
    packages: list[Package]
    history: list[Entry]  # newest first


@dataclass
class _Job:
    payload: Payload
    changed_at: float
    webhook_id: str
    received: float
    done: bool = False
    outcome: Outcome = "applied"
    error: BaseException | None = field(default=None)


def _text(exc: BaseException) -> str:
    return str(exc).rstrip(".")


_EPOCHS = (datetime.min.replace(tzinfo=timezone.utc).timestamp(), datetime(9999, 12, 31, tzinfo=timezone.utc).timestamp())


def _utc(epoch: float) -> datetime:
    # Kept inside the calendar: a time at its very end, accepted before updates were checked
    # for it, rounds past year 9999 as a float.
    return datetime.fromtimestamp(min(max(epoch, _EPOCHS[0]), _EPOCHS[1]), tz=timezone.utc)


class OssStore:
    """The OSS database behind the web app; safe to call from many threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = schema.connect(path)
        schema.migrate(self._writer, path)
        self._write_lock = threading.Lock()
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False

    def close(self) -> None:
        with self._write_lock, self._pending_lock:
            self._closed = True
            for conn in [self._writer, *self._readers]:
                conn.close()
            self._readers.clear()

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise DatabaseError(f"The OSS database {self.path} is closed.")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = schema.connect(self.path)
            self._local.conn = conn
            with self._pending_lock:
                self._readers.append(conn)
        return cast(sqlite3.Connection, conn)

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise DatabaseError(f"Cannot read the OSS database {self.path}: {_text(exc)}.") from None

    # -- writing -----------------------------------------------------------

    def apply(self, payload: Payload, changed_at: datetime, webhook_id: str, received: float) -> Outcome:
        """Record one update once per webhook-id; never let an older update overwrite a newer one.

        "applied": the order now shows this update; "late": an update with a
        later `changed_at` was applied before, so only its history row and
        packages were added; "duplicate": this webhook-id was seen already.
        """
        job = _Job(payload, changed_at.timestamp(), webhook_id, received)
        with self._pending_lock:
            self._pending.append(job)
        with self._write_lock:
            if not job.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._commit(batch)
        if job.error is not None:
            if isinstance(job.error, sqlite3.Error):
                raise DatabaseError(f"Cannot write the OSS database {self.path}: {_text(job.error)}.")
            raise job.error
        return job.outcome

    def _commit(self, batch: list[_Job]) -> None:
        conn = self._writer
        try:
            with schema.transaction(conn):
                for job in batch:
                    conn.execute("SAVEPOINT job")
                    try:
                        job.outcome = self._apply_one(conn, job)
                    except Exception as exc:  # one bad update must not sink the batch
                        conn.execute("ROLLBACK TO job")
                        job.error = exc
                    conn.execute("RELEASE job")
        except Exception as exc:
            for job in batch:
                job.error = job.error or exc
        finally:
            for job in batch:
                job.done = True

    def _apply_one(self, conn: sqlite3.Connection, job: _Job) -> Outcome:
        p, order = job.payload, job.payload["order"]
        store, number = p["store"], order["number"]
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
            (job.webhook_id, store, number, job.changed_at, json.dumps(entry), job.received),
        )
        if cur.rowcount == 0:
            return "duplicate"
        for i, pkg in enumerate(p["packages"]):
            key = (
                f"{carrier_key(pkg['carrier']) or (pkg['carrier'] or '').lower()}|{pkg['tracking']}"
                if pkg["tracking"]
                else f"{job.webhook_id}#{i}"
            )
            conn.execute(
                "INSERT INTO packages (store, number, key, tracking, carrier, shipped_at, items, changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, number, key) DO UPDATE SET"
                " carrier = excluded.carrier, shipped_at = excluded.shipped_at, items = excluded.items,"
                " changed_at = excluded.changed_at WHERE excluded.changed_at >= packages.changed_at",
                (store, number, key, pkg["tracking"], pkg["carrier"], pkg["shipped_at"],
                 json.dumps(pkg["items"]), job.changed_at),
            )
        cur = conn.execute(
            "INSERT INTO orders (store, number, number_key, postal_key, label, order_date, items,"
            " changed_at, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (store, number) DO UPDATE SET postal_key = excluded.postal_key,"
            " label = excluded.label, order_date = excluded.order_date, items = excluded.items,"
            " changed_at = excluded.changed_at, received = excluded.received"
            " WHERE excluded.changed_at >= orders.changed_at",
            (store, number, number_key(number), postal_key(order["postal_code"]), order["label"],
             order["date"], json.dumps(p["items"]), job.changed_at, job.received),
        )
        return "applied" if cur.rowcount else "late"

    # -- reading -----------------------------------------------------------

    # The orders a lookup may show, newest first. The index holds every column read, so a known
    # number and an unknown one each cost one index search (no table read, no sort).
    CANDIDATES = (
        "SELECT store, number, postal_key FROM orders WHERE number_key = ?1 AND (?2 IS NULL OR store = ?2)"
        " ORDER BY changed_at DESC"
    )

    def _candidates(self, number: str, store: str | None) -> list[tuple[str | None, str, str]]:
        """(store, number, postal_key) of the orders with this number; a stand-in when there is none.

        A lookup then compares a postal code (or a link's tag) the same number of
        times whether the number is known or not: a wrong postal code for a known
        order and an unknown order do the same work and get the same answer.
        """
        rows = self._read(self.CANDIDATES, (number_key(number), store or None))
        found: list[tuple[str | None, str, str]] = [
            (str(r["store"]), str(r["number"]), str(r["postal_key"])) for r in rows
        ]
        return found or [_STAND_IN]

    def _first_match(self, rows: list[tuple[str | None, str, str]], matches: list[bool]) -> OrderView | None:
        for (store, number, _postal), matched in zip(rows, matches, strict=True):
            if matched and store is not None:
                return self.load(store, number)
        return None

    def find(self, number: str, postal: str, *, store: str | None = None) -> OrderView | None:
        """The order with this number whose postal code matches, else None (same for both causes).

        When several stores hold the number and the postal code matches more
        than one, the most recently changed order is shown.
        """
        rows = self._candidates(number, store)
        return self._first_match(rows, [postal_matches(key, postal) for _store, _number, key in rows])

    def by_token(self, token: Token, keys: list[bytes]) -> OrderView | None:
        """The order a signed link names, when its tag checks out for the order's postal code."""
        rows = self._candidates(token.number, token.store)
        return self._first_match(rows, [token.matches(key, keys) for _store, _number, key in rows])

    def load(self, store: str, number: str) -> OrderView | None:
        """Everything shown for one order (store, number)."""
        rows = self._read(
            "SELECT postal_key, label, order_date, items, changed_at FROM orders WHERE store = ? AND number = ?",
            (store, number),
        )
        if not rows:
            return None
        row = rows[0]
        packages = [
            Package(r["tracking"], r["carrier"], r["shipped_at"], json.loads(r["items"]))
            for r in self._read(
                "SELECT tracking, carrier, shipped_at, items FROM packages"
                " WHERE store = ? AND number = ? ORDER BY shipped_at, rowid",
                (store, number),
            )
        ]
        history = []
        for r in self._read(
            "SELECT changed_at, entry FROM history WHERE store = ? AND number = ?"
            " ORDER BY changed_at DESC, id DESC",
            (store, number),
        ):
            e = json.loads(r["entry"])
            history.append(
                Entry(_utc(r["changed_at"]), e["order_label"], e["previous_label"],
                      e["order_changed"], e["items"], e["packages"], e["note"])
            )
        return OrderView(store, number, row["postal_key"], row["label"], row["order_date"], _utc(row["changed_at"]),
                         json.loads(row["items"]), packages, history)

    def ping(self) -> None:
        """Raise DatabaseError when the database cannot be read."""
        self._read("SELECT 1", ())
