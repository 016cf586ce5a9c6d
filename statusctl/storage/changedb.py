"""The change engine's side of the database: the orders a `ChangeSession` loads and the rows it writes.

The orders a session's commands work on (loaded in chunks, their rows locked on
PostgreSQL), and `Writes`: the rows its commands collected, written inside the
caller's transaction. The database assigns package ids (`RETURNING id`): until
its package is written, a new package has a temporary id below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from statusctl.domain.orderstate import ItemState, OrderState
from statusctl.storage import dialect, stack, stacklocks
from statusctl.storage.rows import columns, insert_returning, unnest

CHUNK = 500  # orders per statement on SQLite (an IN list: it allows 32,766 parameters)
PG_CHUNK = 10_000  # orders per statement on PostgreSQL (one array parameter)
PACKAGE_ROWS = 1000  # packages per INSERT ... RETURNING (four parameters each)


def load_orders(conn: Any, numbers: list[str]) -> list[OrderState]:
    """The orders with these numbers (in chunks), with their items and tracked packages.

    On PostgreSQL (READ COMMITTED) two producers may change one order at once: each
    order's row is locked (FOR UPDATE, in id order so two sessions cannot deadlock)
    before its state is read, and the state read is the one committed last. On SQLite
    BEGIN IMMEDIATE already keeps every other writer out.
    """
    if dialect.of(conn) == "postgresql":
        ids = sorted(int(r[0]) for start in range(0, len(numbers), PG_CHUNK) for r in conn.execute(
            "SELECT id FROM orders WHERE number = ANY(?::text[])", (numbers[start : start + PG_CHUNK],)))
        return [s for start in range(0, len(ids), PG_CHUNK) for s in _chunk(
            conn, "id = ANY(?::bigint[]) ORDER BY id FOR UPDATE", [ids[start : start + PG_CHUNK]], _pg_pick)]
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: sqlite3.Row lookups by name cost ~1 s per 100,000 items
    states = []
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        states += _chunk(cur, _in_list("number", len(chunk)), chunk, _sqlite_pick)
    return states


def _in_list(column: str, count: int) -> str:
    return f"{column} IN ({','.join('?' * count)})"


def _sqlite_pick(ids: list[int]) -> tuple[str, list[Any]]:
    return _in_list("order_id", len(ids)), list(ids)


def _pg_pick(ids: list[int]) -> tuple[str, list[Any]]:
    return "order_id = ANY(?::bigint[])", [ids]


def _chunk(cur: Any, where: str, keys: list[Any], pick: Any) -> list[OrderState]:
    """The orders `where` picks (`keys` its parameters), with their items and tracked packages.

    `pick(ids)` is the condition (and its parameters) that picks the rows of the orders found.
    """
    if not keys:
        return []
    by_id = {
        r[0]: OrderState(r[0], r[1], r[2], r[3], r[4], r[5], r[6], [])
        for r in cur.execute(
            f"SELECT id, number, store, cart_order_id, label, ship_postal_code, order_date FROM orders WHERE {where}",
            keys,
        )
    }
    if not by_id:
        return []
    condition, params = pick(list(by_id))
    for r in cur.execute(
        "SELECT order_id, id, line, sku, name, quantity, shipped, cancelled, label, cart_line_id "
        f"FROM items WHERE {condition} ORDER BY line",
        params,
    ):
        by_id[r[0]].items.append(ItemState(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9]))
    for r in cur.execute(f"SELECT id, order_id, tracking FROM packages WHERE {condition} AND tracking IS NOT NULL",
                         params):
        by_id[r[1]].packages[r[2]] = r[0]
    return list(by_id.values())


# Inside, a long session's flushes go out without waiting for the server (PostgreSQL's pipeline): the
# server writes one flush's rows while the commands of the next run here; a flush waits only for its
# new packages' ids (and so for what was sent before them), the block's end for everything, and an
# error the server met surfaces there at the latest. What it yields goes to `Writes.stream`.
streamed = stacklocks.pipelined


Package = tuple[int, int, "str | None", "str | None", str]  # (temporary id, order id, tracking, carrier, shipped)


def insert_packages(conn: Any, rows: list[Package]) -> dict[int, int]:
    """Insert new packages: temporary id -> the id the database gave.

    A database numbers a statement's new rows in the order it inserts them (SQLite's rowid is one
    more than the largest; PostgreSQL's identity is drawn as the rows come, in order), and a later
    statement's above an earlier one's, so the ids returned, sorted, are the packages' in the order
    given, whatever order RETURNING lists them in (neither backend promises one).
    """
    ids = insert_returning(conn, "INSERT INTO packages (order_id, tracking, carrier, shipped) ",
                           [row[1:] for row in rows], ("bigint", "text", "text", "text"), "RETURNING id",
                           chunk=PACKAGE_ROWS)
    return dict(zip([row[0] for row in rows], sorted(int(r[0]) for r in ids), strict=True))


# PostgreSQL writes a batch as one statement over arrays (storage.rows.unnest). An UPDATE takes its
# ids a second time as ANY: the planner then reads the rows by their key, not the whole table.
_PG = {
    "orders": "UPDATE orders SET label = v.label FROM " + unnest("bigint", "text")
              + " AS v(id, label) WHERE orders.id = v.id AND orders.id = ANY(?::bigint[])",
    "items": "UPDATE items SET label = v.label, shipped = v.shipped, cancelled = v.cancelled FROM "
             + unnest("bigint", "text", "bigint", "bigint") + " AS v(id, label, shipped, cancelled) "
             "WHERE items.id = v.id AND items.id = ANY(?::bigint[])",
    # A package new in this flush has no items yet: its rows need no conflict check.
    "new_package_items": "INSERT INTO package_items (package_id, item_id, quantity) SELECT * FROM "
                         + unnest("bigint", "bigint", "bigint"),
    # One row per (package, item): ON CONFLICT DO UPDATE may not touch a row twice in one statement.
    "package_items": "INSERT INTO package_items (package_id, item_id, quantity) SELECT * FROM "
                     + unnest("bigint", "bigint", "bigint")
                     + " ON CONFLICT (package_id, item_id) DO UPDATE SET quantity = package_items.quantity + excluded.quantity",
    # In the rows' order, so the history's ids keep the order of the changes.
    "history": "INSERT INTO label_history (at, order_id, item_id, event, from_label, to_label) "
               "SELECT at, o, i, e, f, t FROM " + unnest("text", "bigint", "bigint", "text", "text", "text")
               + " WITH ORDINALITY AS v(at, o, i, e, f, t, n) ORDER BY n",
}


@dataclass
class Writes:
    """The rows a session's commands collected and have not written yet."""

    order_labels: dict[int, str | None] = field(default_factory=dict)  # order id -> its new label
    item_updates: dict[int, ItemState] = field(default_factory=dict)
    history: list[tuple[object, ...]] = field(default_factory=list)
    history_written: int = 0
    packages: list[Package] = field(default_factory=list)
    package_items: list[tuple[int, int, int]] = field(default_factory=list)
    package_ids: dict[int, int] = field(default_factory=dict)  # temporary id -> the database's, once written
    last_temporary: int = 0  # the temporary id given last (they count down from -1)
    stack: list[tuple[object, ...]] = field(default_factory=list)
    stream: Any = None  # inside `streamed`: what each flush ends with a sync (the server may then call us idle)

    def new_package(self, order_id: int, tracking: str | None, carrier: str | None, shipped: str) -> int:
        """Collect a new package; its temporary id (below zero) stands for it until it is written."""
        self.last_temporary = temporary = self.last_temporary - 1
        self.packages.append((temporary, order_id, tracking, carrier, shipped))
        return temporary

    def flush(self, c: Any) -> None:
        """Write everything collected so far (inside the caller's transaction)."""
        if self.packages:
            self.package_ids.update(insert_packages(c, self.packages))
        if dialect.of(c) == "postgresql":
            self._write_arrays(c)
        else:
            self._write_rows(c)
        stack.queue(c, self.stack)  # with the order heads and counters that claims and `stack status` read
        if self.stream is not None:
            self.stream.sync()
        self.order_labels.clear()
        self.item_updates.clear()
        self.packages.clear()
        self.package_items.clear()
        self.history_written += len(self.history)
        self.history.clear()
        self.stack.clear()

    def _item_rows(self) -> list[tuple[Any, ...]]:
        return [(i.label, i.shipped, int(i.cancelled), i.id) for i in self.item_updates.values()]

    def _write_rows(self, c: Any) -> None:
        """SQLite: executemany, one prepared statement stepped per row (nothing is faster there)."""
        if self.order_labels:
            c.executemany("UPDATE orders SET label = ? WHERE id = ?", [(v, k) for k, v in self.order_labels.items()])
        if self.item_updates:
            c.executemany("UPDATE items SET label = ?, shipped = ?, cancelled = ? WHERE id = ?", self._item_rows())
        if self.package_items:
            ids = self.package_ids
            c.executemany(
                "INSERT INTO package_items (package_id, item_id, quantity) VALUES (?, ?, ?) "
                "ON CONFLICT(package_id, item_id) DO UPDATE SET quantity = package_items.quantity + excluded.quantity",
                [(ids.get(p, p), item, qty) for p, item, qty in self.package_items],
            )
        if self.history:
            c.executemany(
                "INSERT INTO label_history (at, order_id, item_id, event, from_label, to_label) VALUES (?, ?, ?, ?, ?, ?)",
                self.history,
            )

    def _write_arrays(self, c: Any) -> None:
        """PostgreSQL: each kind of row in one statement over arrays."""
        if self.order_labels:
            ids = list(self.order_labels)
            c.execute(_PG["orders"], [ids, list(self.order_labels.values()), ids])
        if self.item_updates:
            ids = list(self.item_updates)
            c.execute(_PG["items"], [*columns([(i, label, shipped, cancelled)
                                               for label, shipped, cancelled, i in self._item_rows()]), ids])
        if self.package_items:
            self._write_package_items(c)
        if self.history:
            c.execute(_PG["history"], columns(self.history))

    def _write_package_items(self, c: Any) -> None:
        """PostgreSQL: the items of this flush's new packages, then those added to older packages."""
        summed: dict[tuple[int, int], int] = {}
        for p, item, qty in self.package_items:
            key = (self.package_ids.get(p, p), item)
            summed[key] = summed.get(key, 0) + qty
        new = {self.package_ids[package[0]] for package in self.packages}
        for statement, rows in (("new_package_items", [(p, i, q) for (p, i), q in summed.items() if p in new]),
                                ("package_items", [(p, i, q) for (p, i), q in summed.items() if p not in new])):
            if rows:
                c.execute(_PG[statement], columns(rows))
