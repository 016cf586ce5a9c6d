"""Status changes: fire, ship and cancel on in-memory order state, written in batches.

A `ChangeSession` runs inside one writing transaction. Commands change the
loaded `OrderState`s; the session collects label updates, history rows,
packages and stack records, and `flush` writes them with executemany. One
command on one order makes at most one stack record carrying the whole change
(the change-only rule: only a real label change counts). A grouping session
(`apply`) keeps one such command per order across all its commands and queues
the records only when `queue_grouped` is called: one record per order carrying
the whole change of every row (the label history still keeps every step).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from statusctl.core import events as events_mod
from statusctl.core.errors import InputError, NotFound, shown
from statusctl.core.events import Event
from statusctl.core.payload import payload_text
from statusctl.core.record import PackagePart
from statusctl.core.stores import Store, all_stores_in, destination


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(slots=True)
class ItemState:
    id: int
    line: int
    sku: str
    name: str
    quantity: int
    shipped: int
    cancelled: bool
    label: str | None
    cart_line_id: str | None

    @property
    def remaining(self) -> int:
        return 0 if self.cancelled else max(0, self.quantity - self.shipped)

    @property
    def fully_shipped(self) -> bool:
        return not self.cancelled and self.shipped >= self.quantity


@dataclass
class OrderState:
    id: int
    number: str
    store: str
    cart_order_id: str | None
    label: str | None
    postal_code: str
    date: str
    items: list[ItemState]
    packages: dict[str, int] = field(default_factory=dict)  # tracking -> package id

    def item(self, sku: str) -> ItemState:
        for item in self.items:
            if item.sku == sku:
                return item
        raise NotFound(f"Order {self.number} has no item with SKU {shown(sku)}.")


@dataclass
class Result:
    """What one command did to one order, for the user to read."""

    order: str
    changes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # events whose "fires" is off
    record: str | None = None  # uid of the queued record
    destination: str | None = None
    internal_only: bool = False  # labels changed with notify on, but nowhere to send

    def as_dict(self) -> dict[str, object]:
        return {
            "order": self.order,
            "changes": self.changes,
            "skipped_events": self.skipped,
            "record": self.record,
            "destination": self.destination,
            "internal_only": self.internal_only,
        }


class _Command:
    """The label changes one command makes to one order, before they are written."""

    def __init__(self, order: OrderState) -> None:
        self.order = order
        self.order_from: str | None = order.label
        self.order_changed = False
        self.item_from: dict[int, str | None] = {}
        self.events: list[str] = []
        self.notify = False
        self.new_tracking = False
        self.packages: list[PackagePart] = []
        self.notes: list[str] = []
        self.wanted = False  # a grouped command: some step asked for a record
        self.result = Result(order.number)


class ChangeSession:
    """Runs commands on orders inside one transaction of `conn` and writes their effects."""

    def __init__(self, conn: sqlite3.Connection, *, now: str | None = None, group: bool = False) -> None:
        self.conn = conn
        self._group = group
        self._grouped: dict[int, _Command] = {}  # order id -> the order's command so far (group mode)
        self.now = now or utc_now()
        self.events: dict[str, Event] = {
            r["name"]: Event(r["name"], r["item_label"], r["order_label"], bool(r["fires"]), bool(r["notify"]))
            for r in conn.execute("SELECT * FROM events")
        }
        oss_row = conn.execute("SELECT value FROM meta WHERE key = 'oss_store'").fetchone()
        oss = oss_row[0] if oss_row else None
        self.stores: dict[str, Store] = {s.name: s for s in all_stores_in(conn)}
        self.destinations = {name: destination(s, oss) for name, s in self.stores.items()}
        self._orders: dict[str, OrderState] = {}
        self._order_labels: dict[int, str | None] = {}
        self._item_updates: dict[int, ItemState] = {}
        self._history: list[tuple[object, ...]] = []
        self._history_written = 0
        self._packages: list[tuple[int, int, str | None, str | None, str]] = []
        self._package_items: list[tuple[int, int, int]] = []
        self._stack: list[tuple[object, ...]] = []
        next_pkg = conn.execute("SELECT COALESCE(MAX(id), 0) FROM packages").fetchone()[0]
        self._next_package = int(next_pkg) + 1

    # -- loading -------------------------------------------------------------

    def load(self, numbers: Iterable[str]) -> None:
        """Load the orders with these numbers (in chunks) into the session."""
        wanted = [n for n in dict.fromkeys(numbers) if n not in self._orders]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            # Plain tuples: sqlite3.Row lookups by name cost ~1 s per 100,000 items.
            cur = self.conn.cursor()
            cur.row_factory = None
            by_id = {
                r[0]: OrderState(r[0], r[1], r[2], r[3], r[4], r[5], r[6], [])
                for r in cur.execute(
                    "SELECT id, number, store, cart_order_id, label, ship_postal_code, order_date "
                    f"FROM orders WHERE number IN ({marks})",
                    chunk,
                )
            }
            if not by_id:
                continue
            ids = list(by_id)
            id_marks = ",".join("?" * len(ids))
            for r in cur.execute(
                "SELECT order_id, id, line, sku, name, quantity, shipped, cancelled, label, cart_line_id "
                f"FROM items WHERE order_id IN ({id_marks}) ORDER BY line",
                ids,
            ):
                by_id[r[0]].items.append(ItemState(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9]))
            for r in cur.execute(
                f"SELECT id, order_id, tracking FROM packages WHERE order_id IN ({id_marks}) AND tracking IS NOT NULL", ids
            ):
                by_id[r[1]].packages[r[2]] = r[0]
            for state in by_id.values():
                self._orders[state.number] = state

    def order(self, number: str) -> OrderState:
        state = self._orders.get(number)
        if state is None:
            self.load([number])
            state = self._orders.get(number)
        if state is None:
            raise NotFound(f"Unknown order {shown(number)}.")
        return state

    def add_order(self, state: OrderState) -> None:
        """Register an order inserted in this transaction (by import)."""
        self._orders[state.number] = state

    # -- the commands --------------------------------------------------------

    def fire(self, number: str, event_name: str, skus: list[str], note: str | None = None) -> Result:
        """Fire one event by hand on an order (and, for item events, on the given items)."""
        name = events_mod.check_event(event_name)
        order = self.order(number)
        cmd = self._command(order)
        event = self._event(name)
        targets: list[ItemState] = []
        if skus:
            if not event.item_label:
                raise InputError(f"Event {name} assigns no item label, so --item does not apply.")
            targets = [order.item(sku) for sku in skus]
        elif event.item_label and not event.order_label:
            raise InputError(f"Event {name} changes item labels: name the items with --item SKU.")
        elif event.item_label:
            targets = [i for i in order.items if not i.cancelled]
        self._fire(cmd, name, targets)
        return self._finish(cmd, note)

    def ship(
        self,
        number: str,
        items: list[tuple[str, int | None]],
        tracking: str | None = None,
        carrier: str | None = None,
        note: str | None = None,
    ) -> Result:
        """Ship items (all that is left by default) in one package; fire the shipping events."""
        order = self.order(number)
        cmd = self._command(order)
        wanted: list[tuple[ItemState, int]] = []
        if items:
            for sku, qty in items:
                item = order.item(sku)
                if item.cancelled:
                    raise InputError(f"Item {sku} of order {number} is cancelled and cannot be shipped.")
                left = item.remaining
                amount = left if qty is None else qty
                if amount > left or amount <= 0:
                    raise InputError(
                        f"Item {sku} of order {number} has {left} left to ship, not {qty if qty is not None else amount}."
                    )
                wanted.append((item, amount))
        else:
            wanted = [(i, i.remaining) for i in order.items if i.remaining > 0]
        if not wanted:
            raise InputError(f"Order {number} has nothing left to ship.")
        now_full = []  # every wanted item had some left to ship, so "now full" is "newly full"
        for item, amount in wanted:
            item.shipped += amount
            self._item_updates[item.id] = item
            if item.shipped >= item.quantity:
                now_full.append(item)
        self._add_package(cmd, wanted, tracking, carrier)
        if now_full:
            self._fire(cmd, "item-shipped", now_full)
        self._fire_shipping_state(cmd)
        return self._finish(cmd, note)

    def cancel(self, number: str, skus: list[str], note: str | None = None) -> Result:
        """Cancel items (item-cancelled) or the whole order (order-cancelled)."""
        order = self.order(number)
        cmd = self._command(order)
        if skus:
            targets = []
            for sku in skus:
                item = order.item(sku)
                if item.fully_shipped:
                    raise InputError(f"Item {sku} of order {number} is already shipped and cannot be cancelled.")
                if not item.cancelled:
                    targets.append(item)
            for item in targets:
                item.cancelled = True
                self._item_updates[item.id] = item
            if targets:
                self._fire(cmd, "item-cancelled", targets)
            if all(i.cancelled for i in order.items):
                self._fire(cmd, "order-cancelled", [])
            else:
                self._fire_shipping_state(cmd)
        else:
            targets = [i for i in order.items if not i.fully_shipped and not i.cancelled]
            if not targets and not self._was_cancelled(order) and any(not i.cancelled for i in order.items):
                raise InputError(f"Order {number} is already fully shipped and cannot be cancelled.")
            for item in targets:
                item.cancelled = True
                self._item_updates[item.id] = item
            self._fire(cmd, "order-cancelled", targets)
        return self._finish(cmd, note)

    def _was_cancelled(self, order: OrderState) -> bool:
        """Cancelled as a whole before (its shipped items stay shipped): cancelling again changes nothing."""
        event = self.events.get("order-cancelled")
        cancelled_label = event.order_label if event else None
        return bool(cancelled_label) and order.label == cancelled_label and any(i.cancelled for i in order.items)

    def imported(self, number: str) -> Result:
        """Fire order-imported for a new order."""
        cmd = self._command(self.order(number))
        self._fire(cmd, "order-imported", [])
        return self._finish(cmd, None)

    # -- the rules -----------------------------------------------------------

    def _command(self, order: OrderState) -> _Command:
        """A new command on `order`; in group mode the order's command so far, with a fresh Result."""
        if not self._group:
            return _Command(order)
        cmd = self._grouped.get(order.id)
        if cmd is None:
            cmd = self._grouped[order.id] = _Command(order)
        elif cmd.result.skipped:  # the Result is the last step's: what it skipped was read
            cmd.result.skipped = []
        return cmd

    def _event(self, name: str) -> Event:
        if name not in self.events:
            raise NotFound(f"Event {name!r} is missing; run `statusctl init`.")
        return self.events[name]

    def _fire(self, cmd: _Command, name: str, items: list[ItemState]) -> None:
        event = self._event(name)
        if not event.fires:
            cmd.result.skipped.append(name)
            return
        changed = False
        if event.item_label:
            for item in items:
                if item.label != event.item_label:
                    cmd.item_from.setdefault(item.id, item.label)
                    self._history.append((self.now, cmd.order.id, item.id, name, item.label, event.item_label))
                    if not self._group:  # an apply only counts them (labels_changed)
                        cmd.result.changes.append(f"item {item.sku}: {item.label or '–'} → {event.item_label}")
                    item.label = event.item_label
                    self._item_updates[item.id] = item
                    changed = True
        order = cmd.order
        if event.order_label and order.label != event.order_label:
            self._history.append((self.now, order.id, None, name, order.label, event.order_label))
            if not self._group:
                cmd.result.changes.append(f"order: {order.label or '–'} → {event.order_label}")
            order.label = event.order_label
            cmd.order_changed = True
            self._order_labels[order.id] = order.label
            changed = True
        if changed:
            if name not in cmd.events:
                cmd.events.append(name)
            cmd.notify = cmd.notify or event.notify

    def _fire_shipping_state(self, cmd: _Command) -> None:
        active = full = some = False  # one pass: a bulk apply asks this once per row
        for i in cmd.order.items:
            if not i.cancelled:
                if not active:
                    active = full = True
                if i.shipped < i.quantity:
                    full = False
                if i.shipped > 0:
                    some = True
        if active and full:
            self._fire(cmd, "order-shipped", [])
        elif some:
            self._fire(cmd, "order-partially-shipped", [])

    def _add_package(
        self, cmd: _Command, wanted: list[tuple[ItemState, int]], tracking: str | None, carrier: str | None
    ) -> None:
        order = cmd.order
        package_id = order.packages.get(tracking) if tracking else None
        known = package_id is not None  # only a package known before can already be a part of this command
        if package_id is None:
            package_id = self._next_package
            self._next_package += 1
            self._packages.append((package_id, order.id, tracking, carrier, self.now))
            if tracking:
                order.packages[tracking] = package_id
                cmd.new_tracking = True
        for item, amount in wanted:
            self._package_items.append((package_id, item.id, amount))
        parts = [i for i in cmd.packages if i["tracking"] == tracking] if known else None
        if not parts:
            cmd.packages.append({"tracking": tracking, "carrier": carrier, "shipped_at": self.now, "items": [
                {"sku": i.sku, "cart_line_id": i.cart_line_id, "quantity": q} for i, q in wanted]})
            return
        for item, amount in wanted:  # rows of one apply adding to one package: one part, summed per item
            same = next((p for p in parts[0]["items"] if p["sku"] == item.sku), None)
            if same is None:
                parts[0]["items"].append({"sku": item.sku, "cart_line_id": item.cart_line_id, "quantity": amount})
            else:
                same["quantity"] += amount

    def _shipping_notifies(self, cmd: _Command) -> bool:
        """A new tracking number is news for the cart when the order's shipping event notifies."""
        if not cmd.new_tracking:
            return False
        active = [i for i in cmd.order.items if not i.cancelled]
        name = "order-shipped" if active and all(i.fully_shipped for i in active) else "order-partially-shipped"
        event = self.events.get(name)
        return bool(event and event.fires and event.notify)

    def _finish(self, cmd: _Command, note: str | None) -> Result:
        result = cmd.result
        if note and note not in cmd.notes:
            cmd.notes.append(note)
        if cmd.wanted:  # grouped: an earlier row of this order already asked for its record
            return result
        notify = (cmd.notify and bool(cmd.events)) or self._shipping_notifies(cmd)
        if not notify:
            return result
        dest = self.destinations.get(cmd.order.store)
        result.destination = dest
        result.internal_only = dest is None
        if self._group:
            cmd.wanted = True  # queued by queue_grouped, once the order's last row is done
        elif dest is not None:
            result.record = self._queue(cmd, dest)
        return result

    @property
    def labels_changed(self) -> int:
        """Label changes made so far (written or not): one label history row each."""
        return self._history_written + len(self._history)

    def queue_grouped(self) -> tuple[int, int]:
        """Queue one record per grouped order that asked for one: (records queued, orders internal only)."""
        queued = internal = 0
        for cmd in self._grouped.values():
            if not cmd.wanted:
                continue
            dest = self.destinations.get(cmd.order.store)
            if dest is None:
                internal += 1
            else:
                self._queue(cmd, dest)
                queued += 1
        self._grouped.clear()
        return queued, internal

    def _queue(self, cmd: _Command, dest: str) -> str:
        order = cmd.order
        uid = "su_" + os.urandom(10).hex()
        now = time.time()
        payload = payload_text(order, cmd.order_from, cmd.item_from, cmd.packages, cmd.notes, cmd.events, self.now)
        self._stack.append((uid, order.id, order.number, order.store, dest, payload, now, now))
        return uid

    # -- writing -------------------------------------------------------------

    def flush(self) -> None:
        """Write everything collected so far (inside the caller's transaction)."""
        c = self.conn
        if self._order_labels:
            c.executemany("UPDATE orders SET label = ? WHERE id = ?", [(v, k) for k, v in self._order_labels.items()])
        if self._item_updates:
            c.executemany(
                "UPDATE items SET label = ?, shipped = ?, cancelled = ? WHERE id = ?",
                [(i.label, i.shipped, int(i.cancelled), i.id) for i in self._item_updates.values()],
            )
        if self._packages:
            c.executemany("INSERT INTO packages (id, order_id, tracking, carrier, shipped) VALUES (?, ?, ?, ?, ?)", self._packages)
        if self._package_items:
            c.executemany(
                "INSERT INTO package_items (package_id, item_id, quantity) VALUES (?, ?, ?) "
                "ON CONFLICT(package_id, item_id) DO UPDATE SET quantity = quantity + excluded.quantity",
                self._package_items,
            )
        if self._history:
            c.executemany(
                "INSERT INTO label_history (at, order_id, item_id, event, from_label, to_label) VALUES (?, ?, ?, ?, ?, ?)",
                self._history,
            )
        if self._stack:
            c.executemany(
                "INSERT INTO stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._stack,
            )
        self._order_labels.clear()
        self._item_updates.clear()
        self._packages.clear()
        self._package_items.clear()
        self._history_written += len(self._history)
        self._history.clear()
        self._stack.clear()

