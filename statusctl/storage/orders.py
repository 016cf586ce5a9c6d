"""The stored orders (tables `orders`, `items`, `packages`, `package_items`, `label_history`):
import, list and show. What a status change reads and writes is statusctl.storage.changedb."""

from __future__ import annotations

from typing import Any

from statusctl.storage.rows import insert_returning

CHUNK = 500  # order numbers, orders or items per statement (at most 8 parameters each)


def owners(conn: Any, numbers: list[str]) -> dict[str, str]:
    """The order numbers among `numbers` already in the database -> the store each belongs to."""
    out: dict[str, str] = {}
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        out.update((r[0], r[1]) for r in conn.execute(
            f"SELECT number, store FROM orders WHERE number IN ({','.join('?' * len(chunk))})", chunk))
    return out


def insert_orders(conn: Any, store: str, orders: list[tuple[str, dict[str, str | None]]], imported: str) -> dict[str, int]:
    """Insert orders given as (number, fields), a few hundred per statement: number -> the id the database gave.

    Neither backend promises the order of the rows RETURNING gives back: they are matched by number.
    """
    rows = [(number, store, f["order_date"], f["customer_name"], f["customer_email"], f["ship_postal_code"],
             f["cart_order_id"], imported) for number, f in orders]
    into = "INSERT INTO orders (number, store, order_date, customer_name, customer_email, ship_postal_code, " \
           "cart_order_id, imported) "
    return {str(r[1]): int(r[0]) for r in insert_returning(conn, into, rows, ("text",) * 8, "RETURNING id, number",
                                                            chunk=CHUNK)}


def insert_items(conn: Any, items: list[tuple[int, int, str, str, int, str | None]]) -> dict[tuple[int, int], int]:
    """Insert items given as (order id, line, sku, name, quantity, cart line id): (order id, line) -> item id.

    Matched by (order id, line) like the orders by number.
    """
    into = "INSERT INTO items (order_id, line, sku, name, quantity, cart_line_id) "
    types = ("bigint", "bigint", "text", "text", "bigint", "text")
    return {(int(r[1]), int(r[2])): int(r[0])
            for r in insert_returning(conn, into, items, types, "RETURNING id, order_id, line", chunk=CHUNK)}


def _filters(label: str | None, store: str | None, prefix: str = "") -> tuple[str, list[object]]:
    sql, params = "", list[object]()
    for column, value in (("label", label), ("store", store)):
        if value:
            sql += f" AND {prefix}{column} = ?"
            params.append(value)
    return sql, params


def list_orders(db: Any, label: str | None, store: str | None, limit: int | None) -> list[dict[str, Any]]:
    """The orders (with their item and stack record counts) in id order, the first `limit` (None: all)."""
    where, params = _filters(label, store, "o.")
    sql = (
        "SELECT o.number, o.store, o.order_date, o.customer_name, o.label, "
        "(SELECT COUNT(*) FROM items i WHERE i.order_id = o.id) AS items, "
        "(SELECT COUNT(*) FROM stack s WHERE s.order_id = o.id) AS queued "
        f"FROM orders o WHERE 1 = 1{where} ORDER BY o.id"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [dict(r) for r in db.query(sql, tuple(params))]


def count_orders(db: Any, label: str | None, store: str | None) -> int:
    """How many orders `list_orders` gives without a limit (the label and store indexes answer the filters)."""
    where, params = _filters(label, store)
    row = db.one(f"SELECT COUNT(*) FROM orders WHERE 1 = 1{where}", tuple(params))
    return int(row[0]) if row is not None else 0


def order_row(db: Any, number: str) -> Any:
    """The order's row, or None."""
    return db.one("SELECT * FROM orders WHERE number = ?", (number,))


def items_of(db: Any, order_id: int) -> list[Any]:
    return list(db.query("SELECT * FROM items WHERE order_id = ? ORDER BY line", (order_id,)))


def packages_of(db: Any, order_id: int) -> list[tuple[Any, list[Any]]]:
    """The order's packages in the order they were made, each with its (sku, quantity) rows."""
    return [
        (p, db.query("SELECT i.sku, pi.quantity FROM package_items pi JOIN items i ON i.id = pi.item_id "
                     "WHERE pi.package_id = ?", (p["id"],)))
        for p in db.query("SELECT * FROM packages WHERE order_id = ? ORDER BY id", (order_id,))
    ]


def label_history_of(db: Any, order_id: int) -> list[Any]:
    """The order's label changes, oldest first, each with its item's sku (None: the order's own label)."""
    return list(db.query(
        "SELECT h.*, i.sku FROM label_history h LEFT JOIN items i ON i.id = h.item_id WHERE h.order_id = ? ORDER BY h.id",
        (order_id,),
    ))


def records_of(db: Any, order_id: int) -> list[Any]:
    """The order's records on the stack, in queue order."""
    return list(db.query("SELECT * FROM stack WHERE order_id = ? ORDER BY seq", (order_id,)))
