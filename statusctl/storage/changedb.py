"""The change engine's side of the database: every SQL statement a `ChangeSession` runs.

What a session reads when it starts (the events, where each store's records
go, the next package id), the orders its commands work on (loaded in chunks),
and `Writes`: the rows its commands collected, written with executemany inside
the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from statusctl.core.events import Event
from statusctl.core.stores import Store, all_stores_in, destination
from statusctl.domain.orderstate import ItemState, OrderState
from statusctl.storage import stack


def read_events(conn: sqlite3.Connection) -> dict[str, Event]:
    return {
        r["name"]: Event(r["name"], r["item_label"], r["order_label"], bool(r["fires"]), bool(r["notify"]))
        for r in conn.execute("SELECT * FROM events")
    }


def read_stores(conn: sqlite3.Connection) -> tuple[dict[str, Store], dict[str, str | None]]:
    """(the stores by name, where each store's records go: a store name or None)."""
    oss_row = conn.execute("SELECT value FROM meta WHERE key = 'oss_store'").fetchone()
    oss = oss_row[0] if oss_row else None
    stores: dict[str, Store] = {s.name: s for s in all_stores_in(conn)}
    return stores, {name: destination(s, oss) for name, s in stores.items()}


def next_package_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM packages").fetchone()[0]) + 1


def load_orders(conn: sqlite3.Connection, numbers: list[str]) -> list[OrderState]:
    """The orders with these numbers (in chunks), with their items and tracked packages."""
    loaded: list[OrderState] = []
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        marks = ",".join("?" * len(chunk))
        # Plain tuples: sqlite3.Row lookups by name cost ~1 s per 100,000 items.
        cur = conn.cursor()
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
        loaded.extend(by_id.values())
    return loaded


@dataclass
class Writes:
    """The rows a session's commands collected and have not written yet."""

    order_labels: dict[int, str | None] = field(default_factory=dict)  # order id -> its new label
    item_updates: dict[int, ItemState] = field(default_factory=dict)
    history: list[tuple[object, ...]] = field(default_factory=list)
    history_written: int = 0
    packages: list[tuple[int, int, str | None, str | None, str]] = field(default_factory=list)
    package_items: list[tuple[int, int, int]] = field(default_factory=list)
    stack: list[tuple[object, ...]] = field(default_factory=list)

    def flush(self, c: sqlite3.Connection) -> None:
        """Write everything collected so far (inside the caller's transaction)."""
        if self.order_labels:
            c.executemany("UPDATE orders SET label = ? WHERE id = ?", [(v, k) for k, v in self.order_labels.items()])
        if self.item_updates:
            c.executemany(
                "UPDATE items SET label = ?, shipped = ?, cancelled = ? WHERE id = ?",
                [(i.label, i.shipped, int(i.cancelled), i.id) for i in self.item_updates.values()],
            )
        if self.packages:
            c.executemany("INSERT INTO packages (id, order_id, tracking, carrier, shipped) VALUES (?, ?, ?, ?, ?)", self.packages)
        if self.package_items:
            c.executemany(
                "INSERT INTO package_items (package_id, item_id, quantity) VALUES (?, ?, ?) "
                "ON CONFLICT(package_id, item_id) DO UPDATE SET quantity = quantity + excluded.quantity",
                self.package_items,
            )
        if self.history:
            c.executemany(
                "INSERT INTO label_history (at, order_id, item_id, event, from_label, to_label) VALUES (?, ?, ?, ?, ?, ?)",
                self.history,
            )
        stack.queue(c, self.stack)  # with the order heads and counters that claims and `stack status` read
        self.order_labels.clear()
        self.item_updates.clear()
        self.packages.clear()
        self.package_items.clear()
        self.history_written += len(self.history)
        self.history.clear()
        self.stack.clear()
