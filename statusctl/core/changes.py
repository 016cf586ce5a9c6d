"""Status changes: fire, ship and cancel on in-memory order state, written in batches.

A `ChangeSession` runs inside one writing transaction. Commands change the
loaded `OrderState`s; the session collects label updates, history rows,
packages and stack records, and `flush` writes them with executemany. One
command on one order makes at most one stack record carrying the whole change
(the change-only rule: only a real label change counts). A grouping session
(`apply`) keeps one such command per order across all its commands and queues
the records only when `queue_grouped` is called: one record per order carrying
the whole change of every row (the label history still keeps every step).

Here are the commands and the rules they follow; the state they work on is in
`domain/orderstate.py`; the orders it loads and the rows it writes are `storage/changedb.py`'s,
the events and stores it reads `storage/events.py`'s and `storage/stores.py`'s.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from statusctl.domain.errors import InputError, NotFound, shown
from statusctl.domain.events import Event, check_event
from statusctl.domain.orderstate import Command, ItemState, OrderState, Result
from statusctl.domain.payload import payload_text
from statusctl.storage import events as stored_events
from statusctl.storage import stores as stored_stores
from statusctl.storage.changedb import Writes, load_orders, streamed

__all__ = ["ChangeSession", "ItemState", "OrderState", "Result", "utc_now"]


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ChangeSession:
    """Runs commands on orders inside one transaction of `conn` and writes their effects."""

    def __init__(self, conn: Any, *, now: str | None = None, group: bool = False) -> None:
        self.conn = conn
        self._group = group
        self._grouped: dict[int, Command] = {}  # order id -> the order's command so far (group mode)
        self.now = now or utc_now()
        self.events: dict[str, Event] = stored_events.read_all(conn)
        self.stores, self.destinations = stored_stores.destinations(conn)
        self._orders: dict[str, OrderState] = {}
        self._writes = Writes()

    # -- loading -------------------------------------------------------------

    def load(self, numbers: Iterable[str]) -> None:
        """Load the orders with these numbers (in chunks) into the session."""
        wanted = [n for n in dict.fromkeys(numbers) if n not in self._orders]
        for state in load_orders(self.conn, wanted):
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
        name = check_event(event_name)
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
                if left == 0:
                    raise InputError(f"Item {sku} of order {number} is already fully shipped.")
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
            self._writes.item_updates[item.id] = item
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
                self._writes.item_updates[item.id] = item
            if not targets:  # every named item is cancelled already: nothing changes (like a second cancel)
                return self._finish(cmd, note)
            self._fire(cmd, "item-cancelled", targets)
            if all(i.cancelled for i in order.items):
                self._fire(cmd, "order-cancelled", [])
            elif not self._was_cancelled(order):  # a cancelled order is never relabelled shipped by a cancel
                self._fire_shipping_state(cmd)
        else:
            targets = [i for i in order.items if not i.fully_shipped and not i.cancelled]
            if not targets and not self._was_cancelled(order) and any(not i.cancelled for i in order.items):
                raise InputError(f"Order {number} is already fully shipped and cannot be cancelled.")
            for item in targets:
                item.cancelled = True
                self._writes.item_updates[item.id] = item
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

    def _command(self, order: OrderState) -> Command:
        """A new command on `order`; in group mode the order's command so far, with a fresh Result."""
        if not self._group:
            return Command(order)
        cmd = self._grouped.get(order.id)
        if cmd is None:
            cmd = self._grouped[order.id] = Command(order)
        elif cmd.result.skipped:  # the Result is the last step's: what it skipped was read
            cmd.result.skipped = []
        return cmd

    def _event(self, name: str) -> Event:
        if name not in self.events:
            raise NotFound(f"Event {name!r} is missing; run `statusctl init`.")
        return self.events[name]

    def _fire(self, cmd: Command, name: str, items: list[ItemState]) -> None:
        event = self._event(name)
        if not event.fires:
            cmd.result.skipped.append(name)
            return
        changed = False
        if event.item_label:
            for item in items:
                if item.label != event.item_label:
                    cmd.item_from.setdefault(item.id, item.label)
                    self._writes.history.append((self.now, cmd.order.id, item.id, name, item.label, event.item_label))
                    if not self._group:  # an apply only counts them (labels_changed)
                        cmd.result.changes.append(f"item {item.sku}: {item.label or '–'} → {event.item_label}")
                    item.label = event.item_label
                    self._writes.item_updates[item.id] = item
                    changed = True
        order = cmd.order
        if event.order_label and order.label != event.order_label:
            self._writes.history.append((self.now, order.id, None, name, order.label, event.order_label))
            if not self._group:
                cmd.result.changes.append(f"order: {order.label or '–'} → {event.order_label}")
            order.label = event.order_label
            self._writes.order_labels[order.id] = order.label
            changed = True
        if changed:
            if name not in cmd.events:
                cmd.events.append(name)
            cmd.notify = cmd.notify or event.notify

    def _fire_shipping_state(self, cmd: Command) -> None:
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
        self, cmd: Command, wanted: list[tuple[ItemState, int]], tracking: str | None, carrier: str | None
    ) -> None:
        order = cmd.order
        package_id = order.packages.get(tracking) if tracking else None
        known = package_id is not None  # only a package known before can already be a part of this command
        if package_id is None:
            package_id = self._writes.new_package(order.id, tracking, carrier, self.now)
            if tracking:
                order.packages[tracking] = package_id
                cmd.new_tracking = True
        for item, amount in wanted:
            self._writes.package_items.append((package_id, item.id, amount))
        cmd.add_part(wanted, tracking, carrier, self.now, known)

    def _shipping_notifies(self, cmd: Command) -> bool:
        """A new tracking number is news for the cart when the order's shipping event notifies."""
        if not cmd.new_tracking:
            return False
        active = [i for i in cmd.order.items if not i.cancelled]
        name = "order-shipped" if active and all(i.fully_shipped for i in active) else "order-partially-shipped"
        event = self.events.get(name)
        return bool(event and event.fires and event.notify)

    def _finish(self, cmd: Command, note: str | None) -> Result:
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
        return self._writes.history_written + len(self._writes.history)

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

    def _queue(self, cmd: Command, dest: str) -> str:
        order = cmd.order
        uid = "su_" + os.urandom(10).hex()
        now = time.time()
        payload = payload_text(order, cmd.order_from, cmd.item_from, cmd.packages, cmd.notes, cmd.events, self.now)
        self._writes.stack.append((uid, order.id, order.number, order.store, dest, payload, now, now))
        return uid

    # -- writing -------------------------------------------------------------

    def flush(self) -> None:
        """Write everything collected so far (inside the caller's transaction)."""
        self._writes.flush(self.conn)

    @contextlib.contextmanager
    def streaming(self) -> Iterator[None]:
        """A block whose flushes are written while the commands go on (a long session: apply)."""
        with streamed(self.conn) as stream:
            self._writes.stream = stream
            try:
                yield
            finally:
                self._writes.stream = None
