"""Orders: import (all or nothing), list and show."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statusctl.core.changes import ChangeSession, ItemState, OrderState, Result
from statusctl.core.inputs import InputFile, Row, csv_rows, detect_format, json_document, open_input
from statusctl.core.settings import use_status_updates
from statusctl.domain.errors import InputError, NotFound, shown
from statusctl.storage import orders as stored
from statusctl.storage import stores as stored_stores
from statusctl.storage.db import Database
from statusctl.storage.stores import get_store

REQUIRED = ["order_number", "order_date", "customer_name", "customer_email", "ship_postal_code", "sku", "name", "quantity"]
OPTIONAL = ["cart_order_id", "cart_line_id"]
ORDER_FIELDS = ["order_date", "customer_name", "customer_email", "ship_postal_code", "cart_order_id"]


@dataclass
class NewItem:
    line: int
    sku: str
    name: str
    quantity: int
    cart_line_id: str | None


@dataclass
class NewOrder:
    number: str
    row: Row
    fields: dict[str, str | None]
    items: list[NewItem] = field(default_factory=list)


@dataclass
class ImportSummary:
    imported: list[str]
    skipped: list[str]
    items: int
    results: list[Result]
    updates_on: bool


def _date(row: Row) -> str:
    text = row.text("order_date")
    assert text is not None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            when, shown = dt.datetime(day.year, day.month, day.day), day.isoformat()
        else:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            shown = when.isoformat()
    except ValueError:
        raise row.error("order_date", f"must be a date like 2026-11-20, not {text[:30]!r}") from None
    if not _showable(when):
        raise row.error("order_date", f"{text[:40]!r} cannot be shown in every time zone (moved to UTC or to a "
                                      "local time it falls outside the years 1 to 9999)")
    return shown


def _showable(when: dt.datetime) -> bool:
    """Whether the time, and the same moment in every time zone (a day either way at most), exists."""
    try:
        instant = when.astimezone(dt.timezone.utc) if when.tzinfo is not None else when
        instant - dt.timedelta(days=1)
        instant + dt.timedelta(days=1)
    except (OverflowError, ValueError):
        return False
    return True


def _order_fields(row: Row) -> dict[str, str | None]:
    email = row.text("customer_email", required=False, limit=254)
    if email and ("@" not in email or any(c.isspace() for c in email)):
        raise row.error("customer_email", f"is not an e-mail address: {email[:40]!r}")
    return {
        "order_date": _date(row),
        "customer_name": row.text("customer_name", limit=200),
        "customer_email": email or "",
        "ship_postal_code": row.text("ship_postal_code", required=False, limit=20) or "",
        "cart_order_id": row.text("cart_order_id", required=False, limit=100),
    }


def _add_line(orders: dict[str, NewOrder], row: Row, number: str, item_fields: Row) -> None:
    fields = _order_fields(row)
    order = orders.get(number)
    if order is None:
        order = orders[number] = NewOrder(number, row, fields)
    else:
        for name in ORDER_FIELDS:
            if fields[name] != order.fields[name]:
                raise row.error(name, f"differs from line {order.row.line} of the same order {number}")
    sku = item_fields.text("sku", limit=100)
    assert sku is not None
    if any(i.sku == sku for i in order.items):
        raise item_fields.error("sku", f"order {number} lists SKU {sku!r} twice (duplicate line)")
    quantity = item_fields.quantity("quantity")
    assert quantity is not None
    order.items.append(
        NewItem(item_fields.line, sku, item_fields.text("name", limit=300) or "", quantity,
                item_fields.text("cart_line_id", required=False, limit=100))
    )


def parse_orders(path: Path, fmt: str | None) -> dict[str, NewOrder]:
    """Read and validate an orders file completely, without touching the database."""
    with open_input(path) as file:
        return _parse(file, fmt)


def _parse(file: InputFile, fmt: str | None) -> dict[str, NewOrder]:
    path, source = file.path, file.source
    kind = detect_format(path, file.head(), fmt)
    orders: dict[str, NewOrder] = {}
    if kind == "csv":
        for row in csv_rows(file, REQUIRED, OPTIONAL):
            number = row.text("order_number", limit=50)
            assert number is not None
            _add_line(orders, row, number, row)
    elif kind == "json":
        document, lines = json_document(file)
        for index, (value, line) in enumerate(zip(document, lines, strict=True), start=1):
            where = f"order {index}"
            if not isinstance(value, dict):
                raise InputError(f"{source}, line {line} ({where}): expected a JSON object for the order.")
            unknown = set(value) - set(REQUIRED) - set(OPTIONAL) - {"items"}
            if unknown:
                raise InputError(f"{source}, line {line} ({where}): unknown field {shown(sorted(unknown)[0])}.")
            row = Row(source, line, value, where)
            number = row.text("order_number", limit=50)
            assert number is not None
            items = value.get("items")
            if not isinstance(items, list) or not items:
                raise row.error("items", "must be a non-empty list of items")
            if number in orders:
                raise row.error("order_number", f"order {number} appears twice in the file")
            for position, item in enumerate(items, start=1):
                item_where = f"{where}, item {position}"
                if not isinstance(item, dict):
                    raise InputError(f"{source}, line {line} ({item_where}): expected a JSON object for the item.")
                unknown = set(item) - {"sku", "name", "quantity", "cart_line_id"}
                if unknown:
                    raise InputError(f"{source}, line {line} ({item_where}): unknown field {shown(sorted(unknown)[0])}.")
                _add_line(orders, row, number, Row(source, line, item, item_where))
    else:
        raise InputError(f"{source}: unknown format {kind!r}; use csv or json.")
    if not orders:
        raise InputError(f"{source}: holds no orders.")
    return orders


def import_orders(
    db: Database, path: Path, store: str, fmt: str | None = None, *, skip_existing: bool = False
) -> ImportSummary:
    """Import every order of the file or none; fires order-imported for each new order."""
    orders = parse_orders(path, fmt)
    with db.tx() as conn:
        if not stored_stores.exists(conn, store):
            raise NotFound(f"Unknown store {shown(store)}; `statusctl stores list` shows them.")
        numbers = list(orders)
        owner = stored.owners(conn, numbers)  # order number already in the database -> its store
        clash = next((n for n in numbers if n in owner and owner[n] != store), None)
        if clash is not None:
            # Numbers are unique across stores: skipping it would leave `ship N` acting on the other store's order.
            raise orders[clash].row.error(
                "order_number", f"order {clash} already belongs to store {owner[clash]!r}, not {store!r} "
                "(order numbers are unique across stores; --skip-existing skips only the same store's orders)")
        existing = set(owner)
        if existing and not skip_existing:
            first = orders[next(n for n in numbers if n in existing)]
            raise first.row.error("order_number", f"order {first.number} is already in the database (use --skip-existing)")
        updates_on = use_status_updates(db)
        session = ChangeSession(conn) if updates_on else None
        new = [order for order in orders.values() if order.number not in existing]
        results = []
        for state in _insert(conn, new, store):
            if session is not None:
                session.add_order(state)
                results.append(session.imported(state.number))
        if session is not None:
            session.flush()
    imported = [order.number for order in new]
    return ImportSummary(imported, sorted(existing), sum(len(o.items) for o in new), results, updates_on)


def _insert(conn: Any, new: list[NewOrder], store: str) -> list[OrderState]:
    """Insert the new orders and their items (batched); their states as a change session holds them."""
    imported = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    order_ids = stored.insert_orders(conn, store, [(o.number, o.fields) for o in new], imported)
    lines = [(order_ids[o.number], line, i.sku, i.name, i.quantity, i.cart_line_id)
             for o in new for line, i in enumerate(o.items, start=1)]
    item_ids = stored.insert_items(conn, lines)
    states = [OrderState(order_ids[o.number], o.number, store, o.fields["cart_order_id"], None,
                         o.fields["ship_postal_code"] or "", o.fields["order_date"] or "", []) for o in new]
    by_id = {state.id: state for state in states}
    for oid, line, sku, name, qty, cart_line in lines:
        by_id[oid].items.append(ItemState(item_ids[(oid, line)], line, sku, name, qty, 0, False, None, cart_line))
    return states


def list_orders(db: Database, label: str | None = None, store: str | None = None,
                limit: int | None = 1000) -> list[dict[str, Any]]:
    """The orders in import order, the first `limit` (None: all); naming an unknown store is refused."""
    if store:
        get_store(db, store)  # a typo must not look like a store without orders
    return stored.list_orders(db, label, store, limit)


def show_order(db: Database, number: str) -> dict[str, Any]:
    """Everything about one order: items, packages, label history, records on the stack."""
    row = stored.order_row(db, number)
    if row is None:
        raise NotFound(f"Unknown order {shown(number)}.")
    oid = row["id"]
    items = [
        {k: r[k] for k in ("sku", "name", "quantity", "shipped", "label", "cart_line_id")} | {"cancelled": bool(r["cancelled"])}
        for r in stored.items_of(db, oid)
    ]
    packages = [{"tracking": p["tracking"], "carrier": p["carrier"], "shipped": p["shipped"],
                 "items": [{"sku": c["sku"], "quantity": c["quantity"]} for c in contents]}
                for p, contents in stored.packages_of(db, oid)]
    history = [{"at": h["at"], "event": h["event"], "item": h["sku"], "from": h["from_label"], "to": h["to_label"]}
               for h in stored.label_history_of(db, oid)]
    records = [
        {"id": s["uid"], "destination": s["destination"], "state": s["state"], "attempts": s["attempts"],
         "queued": s["queued"], "last_error": s["last_error"], "events": json.loads(s["payload"])["events"]}
        for s in stored.records_of(db, oid)
    ]
    return {
        "number": row["number"], "store": row["store"], "order_date": row["order_date"],
        "customer_name": row["customer_name"], "customer_email": row["customer_email"],
        "ship_postal_code": row["ship_postal_code"], "cart_order_id": row["cart_order_id"],
        "label": row["label"], "items": items, "packages": packages, "history": history, "stack": records,
    }
