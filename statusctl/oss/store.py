"""The OSS's storage: applying updates (newest `changed_at` wins) and finding orders for customers.

The SQL lives in statusctl.storage.oss; this module keeps the threads apart. Writes go
through one connection. Concurrent `apply` calls are combined: the thread that gets the
write lock commits every update waiting at that moment in one transaction (each inside
its own savepoint), so one fsync serves a whole batch. Reads borrow one of a few
reading connections; on SQLite, WAL lets them run beside a write, and on PostgreSQL
every statement reads what was committed.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from statusctl.domain.errors import DatabaseError
from statusctl.domain.record import ItemPart, PackageItem, PackagePart, Payload
from statusctl.oss.links import Token, number_key, postal_key, postal_matches
from statusctl.storage import oss as storage
from statusctl.storage.backends import Target
from statusctl.storage.oss import Outcome, Update, open_oss_database

READERS = 8  # reading connections per OSS process at most
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


_EPOCHS = (datetime.min.replace(tzinfo=timezone.utc).timestamp(), datetime(9999, 12, 31, tzinfo=timezone.utc).timestamp())


def _utc(epoch: float) -> datetime:
    # Kept inside the calendar: a time at its very end, accepted before updates were checked
    # for it, rounds past year 9999 as a float.
    return datetime.fromtimestamp(min(max(epoch, _EPOCHS[0]), _EPOCHS[1]), tz=timezone.utc)


@dataclass
class _Job:
    update: Update
    done: bool = False
    outcome: Outcome = "applied"
    error: BaseException | None = field(default=None)


class _Readers:
    """Reading connections, lent one at a time: at most `size` open however many threads read.

    (A connection per thread would open one per worker of the thread pool: too many for a
    PostgreSQL server shared by several OSS processes.)
    """

    def __init__(self, open_one: Callable[[], Any], size: int) -> None:
        self._open = open_one
        self._size = size
        self._idle: list[Any] = []
        self._count = 0
        self._closed = False
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def lend(self, name: str) -> Iterator[Any]:
        """An idle connection, a new one while fewer than `size` are open, else the next one given back."""
        with self._cond:
            while not self._closed and not self._idle and self._count >= self._size:
                self._cond.wait()
            if self._closed:
                raise DatabaseError(f"The OSS database {name} is closed.")
            db = self._idle.pop() if self._idle else None
            if db is None:
                self._count += 1  # opened below, outside the lock
        if db is None:
            try:
                db = self._open()
            except BaseException:
                with self._cond:
                    self._count -= 1
                    self._cond.notify()
                raise
        try:
            yield db
        finally:
            with self._cond:
                if self._closed:
                    db.close()
                else:
                    self._idle.append(db)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for db in self._idle:
                db.close()
            self._idle.clear()
            self._cond.notify_all()


class OssStore:
    """The OSS database behind the web app; safe to call from many threads."""

    def __init__(self, target: Target) -> None:
        self._writer = open_oss_database(target)
        self.name: str = self._writer.name
        # SQLite reads take ~0.2 ms and never wait for the writer: the event loop runs them
        # itself. A PostgreSQL read is a round trip to the server: it goes to the thread pool.
        self.reads_inline = self._writer.dialect == "sqlite"
        self._readers = _Readers(lambda: open_oss_database(target, migrate=False), READERS)
        self._write_lock = threading.Lock()
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close every connection; from now on each call raises DatabaseError (PostgreSQL's would reconnect)."""
        with self._write_lock, self._pending_lock:
            self._closed = True
            self._readers.close()
            self._writer.close()

    # -- writing -----------------------------------------------------------

    def apply(self, payload: Payload, changed_at: datetime, webhook_id: str, received: float) -> Outcome:
        """Record one update once per webhook-id; never let an older update overwrite a newer one.

        "applied": the order now shows this update; "late": an update with a
        later `changed_at` was applied before, so only its history row and
        packages were added; "duplicate": this webhook-id was seen already.
        Concurrent calls are combined: the thread that gets the write lock commits
        every update waiting at that moment in one transaction.
        """
        order = payload["order"]
        update = Update(payload, changed_at.timestamp(), webhook_id, received,
                        number_key(order["number"]), postal_key(order["postal_code"]))
        job = _Job(update)
        with self._pending_lock:
            self._pending.append(job)
        with self._write_lock:
            if not job.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._commit(batch)
        if job.error is not None:
            raise job.error
        return job.outcome

    def _commit(self, batch: list[_Job]) -> None:
        try:
            if self._closed:
                raise DatabaseError(f"The OSS database {self.name} is closed.")
            results = storage.apply_batch(self._writer, [job.update for job in batch])
        except Exception as exc:
            results = [exc] * len(batch)
        for job, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                job.error = result
            else:
                job.outcome = result
            job.done = True

    # -- reading -----------------------------------------------------------

    def _candidates(self, number: str, store: str | None) -> list[tuple[str | None, str, str]]:
        """(store, number, postal_key) of the orders with this number; a stand-in when there is none.

        A lookup then compares a postal code (or a link's tag) the same number of
        times whether the number is known or not: a wrong postal code for a known
        order and an unknown order do the same work and get the same answer.
        """
        with self._readers.lend(self.name) as db:
            rows = storage.candidates(db, number_key(number), store or None)
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
        with self._readers.lend(self.name) as db:
            found = storage.order_rows(db, store, number)
        if found is None:
            return None
        row, package_rows, history_rows = found
        packages = [Package(r["tracking"], r["carrier"], r["shipped_at"], json.loads(r["items"])) for r in package_rows]
        history = []
        for r in history_rows:
            e = json.loads(r["entry"])
            history.append(
                Entry(_utc(r["changed_at"]), e["order_label"], e["previous_label"],
                      e["order_changed"], e["items"], e["packages"], e["note"])
            )
        return OrderView(store, number, row["postal_key"], row["label"], row["order_date"], _utc(row["changed_at"]),
                         json.loads(row["items"]), packages, history)

    def ping(self) -> None:
        """Raise DatabaseError when the database cannot be read."""
        with self._readers.lend(self.name) as db:
            storage.ping(db)
