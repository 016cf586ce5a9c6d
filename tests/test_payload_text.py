"""The stored payload text: assembled from pieces by the change engine, it must read as json.dumps writes it.

ChangeSession builds each record's payload text itself (json.dumps of whole
payloads was the largest cost of a bulk apply). These tests hold it to
`json.dumps(payload, separators=(",", ":"))` byte for byte, and to the keys of
the record.Payload TypedDicts, over awkward text and every command.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from statusctl.core import actions
from statusctl.core.orders import import_orders
from statusctl.domain.record import ItemPart, OrderPart, PackageItem, PackagePart, Payload, js

from .helpers import add_webhook_store, cli, open_db, updates_on, write

AWKWARD = ['Café "quoted" \\ back', "emoji \U0001f600 tab\tx", "ctl \x01\x1f", "line\u2028sep", "<&>'"]


def test_js_matches_json_dumps() -> None:
    for value in [*AWKWARD, "", None, True, False, 0, 7, -3, 1.5, [1, "a"], {"k": None}]:
        assert js(value) == json.dumps(value, separators=(",", ":")), value


def _q(text: str) -> str:
    """A CSV cell, quoted."""
    return '"' + text.replace('"', '""') + '"'


def _payloads(db_file: Path) -> list[str]:
    conn = sqlite3.connect(db_file)
    try:
        return [row[0] for row in conn.execute("SELECT payload FROM stack ORDER BY seq")]
    finally:
        conn.close()


def test_payload_text_is_json_dumps_text(db_file: Path, tmp_path: Path) -> None:
    cli("init")
    updates_on()
    add_webhook_store()
    lines = ["order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity,"
             "cart_order_id,cart_line_id"]
    for n, text in enumerate(AWKWARD):
        cart = "" if n % 2 else f"co-{text}"
        for i in range(3):
            cells = [f"A{n}", "2026-11-20", "C", "c@example.com", f"9{n}\u00e9", f"S{i}-{text}", text, str(1 + i),
                     cart, "" if i % 2 else f"l{i}-{text}"]
            lines.append(",".join(_q(c) for c in cells))
    orders = write(tmp_path / "orders.csv", "\n".join(lines) + "\n")
    db = open_db()
    import_orders(db, orders, "web")
    rows = ["action,event,order,sku,quantity,tracking,carrier,note"]
    for n, text in enumerate(AWKWARD):
        rows += [
            f"ship,,A{n},{_q(f'S0-{text}')},1,T{n},UPS,{_q(text)}",  # item-shipped, partially shipped, a package
            f"fire,item-backordered,A{n},{_q(f'S1-{text}')},,,,",
            f"cancel,,A{n},{_q(f'S2-{text}')},,,,",
            f"ship,,A{n},,,T{n},UPS,",  # the rest, into the same package: order shipped
            f"fire,order-approved,A{n},,,,,{_q(text)}",
        ]
    actions.apply_file(db, write(tmp_path / "apply.csv", "\n".join(rows) + "\n"))
    payloads = _payloads(db_file)
    assert len(payloads) == len(AWKWARD)  # one record per order: the whole change of its five rows
    for text in payloads:
        data = json.loads(text)
        assert text == json.dumps(data, separators=(",", ":"))  # same keys in the same order, same escapes
        assert list(data) == list(Payload.__annotations__)
        assert list(data["order"]) == list(OrderPart.__annotations__)
        for item in data["items"]:
            assert list(item) == list(ItemPart.__annotations__)
        for package in data["packages"]:
            assert list(package) == list(PackagePart.__annotations__)
            for part in package["items"]:
                assert list(part) == list(PackageItem.__annotations__)
