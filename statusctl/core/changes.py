"""Status changes: fire, ship and cancel on in-memory order state, written in batches.

A `ChangeSession` runs inside one writing transaction. Commands change the
loaded `OrderState`s; the session collects label updates, history rows,
packages and stack records, and `flush` writes them with executemany. One
command on one order makes at most one stack record carrying the whole change
(the change-only rule: only a real label change counts).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from statusctl.core import events as events_mod
from statusctl.core import stack
from statusctl.core.errors import InputError, NotFound, shown
from statusctl.core.events import Event
from statusctl.core.record import PackagePart, js
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
        self.result = Result(order.number)


class ChangeSession:
    """Runs commands on orders inside one transaction of `conn` and writes their effects."""

    def __init__(self, conn: sqlite3.Connection, *, now: str | None = None) -> None:
        self.conn = conn
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
        self._packages: list[tuple[int, int, str | None, str | None, str]] = []
        self._package_items: list[tuple[int, int, int]] = []
        self._stack: list[tuple[object, ...]] = []
        # Payload fragments of the last order's items: item id -> (head, state, fragment).
        self._parts_order: int | None = None
        self._item_parts: dict[int, tuple[str, tuple[object, ...], str]] = {}
        self._order_ends = ("", "")
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
        if number not in self._orders:
            self.load([number])
        if number not in self._orders:
            raise NotFound(f"Unknown order {shown(number)}.")
        return self._orders[number]

    def add_order(self, state: OrderState) -> None:
        """Register an order inserted in this transaction (by import)."""
        self._orders[state.number] = state

    # -- the commands --------------------------------------------------------

    def fire(self, number: str, event_name: str, skus: list[str], note: str | None = None) -> Result:
        """Fire one event by hand on an order (and, for item events, on the given items)."""
        name = events_mod.check_event(event_name)
        order = self.order(number)
        cmd = _Command(order)
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
        cmd = _Command(order)
        wanted: list[tuple[ItemState, int]] = []
        if items:
            for sku, qty in items:
                item = order.item(sku)
                if item.cancelled:
                    raise InputError(f"Item {sku} of order {number} is cancelled and cannot be shipped.")
                amount = item.remaining if qty is None else qty
                if amount > item.remaining or amount <= 0:
                    raise InputError(
                        f"Item {sku} of order {number} has {item.remaining} left to ship, not {qty if qty is not None else amount}."
                    )
                wanted.append((item, amount))
        else:
            wanted = [(i, i.remaining) for i in order.items if i.remaining > 0]
        if not wanted:
            raise InputError(f"Order {number} has nothing left to ship.")
        was_full = [item.fully_shipped for item, _ in wanted]
        for item, amount in wanted:
            item.shipped += amount
            self._item_updates[item.id] = item
        self._add_package(cmd, wanted, tracking, carrier)
        now_full = [i for (i, _), was in zip(wanted, was_full, strict=True) if not was and i.fully_shipped]
        if now_full:
            self._fire(cmd, "item-shipped", now_full)
        self._fire_shipping_state(cmd)
        return self._finish(cmd, note)

    def cancel(self, number: str, skus: list[str], note: str | None = None) -> Result:
        """Cancel items (item-cancelled) or the whole order (order-cancelled)."""
        order = self.order(number)
        cmd = _Command(order)
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
            if not targets and all(i.fully_shipped for i in order.items if not i.cancelled) and any(
                not i.cancelled for i in order.items
            ):
                raise InputError(f"Order {number} is already fully shipped and cannot be cancelled.")
            for item in targets:
                item.cancelled = True
                self._item_updates[item.id] = item
            self._fire(cmd, "order-cancelled", targets)
        return self._finish(cmd, note)

    def imported(self, number: str) -> Result:
        """Fire order-imported for a new order."""
        cmd = _Command(self.order(number))
        self._fire(cmd, "order-imported", [])
        return self._finish(cmd, None)

    # -- the rules -----------------------------------------------------------

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
                    cmd.result.changes.append(f"item {item.sku}: {item.label or '–'} → {event.item_label}")
                    item.label = event.item_label
                    self._item_updates[item.id] = item
                    changed = True
        order = cmd.order
        if event.order_label and order.label != event.order_label:
            self._history.append((self.now, order.id, None, name, order.label, event.order_label))
            cmd.result.changes.append(f"order: {order.label or '–'} → {event.order_label}")
            order.label = event.order_label
            cmd.order_changed = True
            self._order_labels[order.id] = order.label
            changed = True
        if changed:
            cmd.events.append(name)
            cmd.notify = cmd.notify or event.notify

    def _fire_shipping_state(self, cmd: _Command) -> None:
        active = [i for i in cmd.order.items if not i.cancelled]
        if active and all(i.fully_shipped for i in active):
            self._fire(cmd, "order-shipped", [])
        elif any(i.shipped > 0 for i in active):
            self._fire(cmd, "order-partially-shipped", [])

    def _add_package(
        self, cmd: _Command, wanted: list[tuple[ItemState, int]], tracking: str | None, carrier: str | None
    ) -> None:
        order = cmd.order
        package_id = order.packages.get(tracking) if tracking else None
        if package_id is None:
            package_id = self._next_package
            self._next_package += 1
            self._packages.append((package_id, order.id, tracking, carrier, self.now))
            if tracking:
                order.packages[tracking] = package_id
                cmd.new_tracking = True
        for item, amount in wanted:
            self._package_items.append((package_id, item.id, amount))
        cmd.packages.append(
            {
                "tracking": tracking,
                "carrier": carrier,
                "shipped_at": self.now,
                "items": [{"sku": i.sku, "cart_line_id": i.cart_line_id, "quantity": q} for i, q in wanted],
            }
        )

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
        notify = (cmd.notify and bool(cmd.events)) or self._shipping_notifies(cmd)
        if not notify:
            return result
        order = cmd.order
        dest = self.destinations.get(order.store)
        if dest is None:
            result.internal_only = True
            return result
        uid = "su_" + os.urandom(10).hex()
        now = time.time()
        self._stack.append((uid, order.id, order.number, order.store, dest, self._payload(cmd, note), now, now))
        result.record = uid
        result.destination = dest
        return result

    def _payload(self, cmd: _Command, note: str | None) -> str:
        """The record's payload (record.Payload) as `json.dumps(payload, separators=(",", ":"))` writes it.

        Assembled from pieces rather than dumped from dicts: a bulk apply
        spent most of its time in json.dumps. Same keys, same order, same text.
        """
        order = cmd.order
        if self._parts_order != order.id:  # rows of one order usually come one after another
            self._parts_order = order.id
            self._item_parts = {}
            self._order_ends = (  # the order's fields around its labels, which never change
                f'{{"store":{js(order.store)},"order":{{"number":{js(order.number)},'
                f'"cart_order_id":{js(order.cart_order_id)},',
                f'"postal_code":{js(order.postal_code)},"date":{js(order.date)}}}',
            )
        head, tail = self._order_ends
        items = ",".join([self._item_json(cmd, i) for i in order.items])
        packages = ",".join([_package_json(p) for p in cmd.packages])
        events = ",".join([js(e) for e in cmd.events])
        return (
            f'{head}"label":{js(order.label)},"previous_label":{js(cmd.order_from)},{tail},'
            f'"items":[{items}],"packages":[{packages}],"note":{js(note)},"events":[{events}],'
            f'"changed_at":{js(self.now)}}}'
        )

    def _item_json(self, cmd: _Command, item: ItemState) -> str:
        """One record.ItemPart, reused while the item's state is the same (the next row often
        touches another item of the same order); the part that never changes is encoded once."""
        if item.id in cmd.item_from:
            previous, changed = cmd.item_from[item.id], "true"
        else:
            previous, changed = item.label, "false"
        state = (item.label, previous, item.shipped, item.cancelled, changed)
        cached = self._item_parts.get(item.id)
        if cached is None:
            head = f'{{"sku":{js(item.sku)},"cart_line_id":{js(item.cart_line_id)},"name":{js(item.name)},'
        elif cached[1] == state:
            return cached[2]
        else:
            head = cached[0]
        part = (
            f'{head}"label":{js(item.label)},"previous_label":{js(previous)},"quantity":{item.quantity:d},'
            f'"shipped":{item.shipped:d},"cancelled":{"true" if item.cancelled else "false"},"changed":{changed}}}'
        )
        self._item_parts[item.id] = (head, state, part)
        return part

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
        stack.queue(c, self._stack)  # with the order heads and counters claims and `stack status` read
        self._order_labels.clear()
        self._item_updates.clear()
        self._packages.clear()
        self._package_items.clear()
        self._history.clear()
        self._stack.clear()


def _package_json(package: PackagePart) -> str:
    """One record.PackagePart as json.dumps writes it (see ChangeSession._payload)."""
    items = ",".join(
        [f'{{"sku":{js(i["sku"])},"cart_line_id":{js(i["cart_line_id"])},"quantity":{js(i["quantity"])}}}'
         for i in package["items"]]
    )
    return (
        f'{{"tracking":{js(package["tracking"])},"carrier":{js(package["carrier"])},'
        f'"shipped_at":{js(package["shipped_at"])},"items":[{items}]}}'
    )
