"""`statusctl orders`: import CSV/JSON (all or nothing), list, show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statusctl.core.orders import import_orders, parse_orders
from statusctl.domain.errors import InputError, NotFound

from .helpers import (
    CSV_ORDERS,
    EXAMPLES,
    JSON_ORDERS,
    add_webhook_store,
    cli,
    cli_json,
    count,
    dump,
    error_of,
    open_db,
    setup_shop,
    show,
    updates_on,
    write,
)

HEADER = "order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity\n"


@pytest.fixture
def shop() -> None:
    cli("init")
    add_webhook_store()


# -- the examples ------------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_examples_import_cleanly():
    out = cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web").stdout
    assert "Imported 6 orders (10 items) into store 'web'" in out
    out = cli("orders", "import", EXAMPLES / "orders.json", "--store", "web").stdout
    assert "Imported 2 orders (3 items)" in out
    rows = cli_json("orders", "list")
    assert [r["number"] for r in rows] == [*CSV_ORDERS, *JSON_ORDERS]
    for number, skus in {**CSV_ORDERS, **JSON_ORDERS}.items():
        assert [i["sku"] for i in show(number)["items"]] == skus


@pytest.mark.usefixtures("shop")
def test_imported_fields():
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "web")
    o = show("1003")
    assert (o["number"], o["store"], o["order_date"], o["customer_name"], o["customer_email"],
            o["ship_postal_code"], o["cart_order_id"]) == (
        "1003", "web", "2026-11-21", "Alan Turing", "alan@example.com", "SW1A 1AA", "503")
    assert o["items"][1] == {"sku": "POSTER", "name": "Poster A2", "quantity": 3, "shipped": 0, "label": None,
                             "cart_line_id": "9005", "cancelled": False}
    j = show("2002")
    assert j["order_date"] == "2026-11-24T15:30:00+00:00"
    assert j["cart_order_id"] is None
    assert j["items"] == [{"sku": "CAP-BLK", "name": "Cap (black)", "quantity": 2, "shipped": 0, "label": None,
                           "cart_line_id": None, "cancelled": False}]


@pytest.mark.usefixtures("shop")
def test_import_json_output():
    data = cli_json("orders", "import", EXAMPLES / "orders.json", "--store", "web")
    assert data == {"imported": ["2001", "2002"], "skipped": [], "items": 3, "records_queued": 0,
                    "status_updates": False}


# -- order-imported ----------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_with_updates_off_order_imported_does_not_fire():
    out = cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web").stdout
    assert "Status updates are off" in out
    assert {r["label"] for r in cli_json("orders", "list")} == {None}
    assert count("label_history") == 0
    assert count("stack") == 0


@pytest.mark.usefixtures("shop")
def test_with_updates_on_order_imported_fires_once_per_new_order():
    updates_on()
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
    assert {r["label"] for r in cli_json("orders", "list")} == {"Order Received"}
    assert count("label_history") == 6
    h = show("1001")["history"]
    assert [(x["event"], x["item"], x["from"], x["to"]) for x in h] == [
        ("order-imported", None, None, "Order Received")]
    # notify cart is off for order-imported by default: nothing queued.
    assert count("stack") == 0
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web", "--skip-existing")
    assert count("label_history") == 6


@pytest.mark.usefixtures("shop")
def test_order_imported_with_notify_queues_one_record_per_order():
    updates_on()
    cli("events", "set", "order-imported", "--notify-cart")
    data = cli_json("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
    assert data["records_queued"] == 6
    rows = cli_json("stack", "list")
    assert sorted(r["order"] for r in rows) == sorted(CSV_ORDERS)
    assert all(r["events"] == ["order-imported"] and r["destination"] == "web" for r in rows)


@pytest.mark.usefixtures("shop")
def test_order_imported_that_does_not_fire_leaves_labels_empty():
    updates_on()
    cli("events", "set", "order-imported", "--no-fire")
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "web")
    assert {r["label"] for r in cli_json("orders", "list")} == {None}
    assert count("label_history") == 0


# -- all or nothing, re-import -----------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_import_is_all_or_nothing(tmp_path: Path):
    updates_on()
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "web")
    before = dump()
    bad = write(tmp_path / "o.csv", HEADER
                + "3001,2026-12-01,A,a@example.com,1,SKU-1,One,1\n"
                + "3002,2026-12-01,B,b@example.com,2,SKU-2,Two,1\n"
                + "3003,2026-12-01,C,c@example.com,3,SKU-3,Three,many\n")
    message = error_of("orders", "import", bad, "--store", "web")
    assert f"{bad}, line 4, field 'quantity'" in message
    assert dump() == before


@pytest.mark.usefixtures("shop")
def test_reimport_is_refused_naming_line_and_field():
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
    before = dump()
    message = error_of("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
    assert "line 2, field 'order_number'" in message
    assert "1001" in message and "--skip-existing" in message
    assert dump() == before


@pytest.mark.usefixtures("shop")
def test_skip_existing(tmp_path: Path):
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
    more = write(tmp_path / "more.csv", HEADER
                 + "1001,2026-11-20,Someone Else,x@example.com,1,OTHER,Other,5\n"
                 + "3001,2026-12-01,New Person,n@example.com,1,SKU-1,One,1\n")
    data = cli_json("orders", "import", more, "--store", "web", "--skip-existing")
    assert data["imported"] == ["3001"] and data["skipped"] == ["1001"] and data["items"] == 1
    # The existing order is untouched.
    assert show("1001")["customer_name"] == "Ada Lovelace"
    assert [i["sku"] for i in show("1001")["items"]] == ["MUG-1", "TEE-L"]
    out = cli("orders", "import", more, "--store", "web", "--skip-existing").stdout
    assert "Imported 0 orders" in out and "skipped 2 already present" in out


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize("skip", [[], ["--skip-existing"]])
def test_another_stores_order_with_the_same_number_is_an_error_naming_that_store(tmp_path: Path, skip: list[str]):
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
    cli("stores", "add", "outlet", "--cart", "none", "--url", "https://outlet.example")
    more = write(tmp_path / "outlet.csv", HEADER
                 + "3001,2026-12-01,New Person,n@example.com,1,SKU-1,One,1\n"
                 + "1001,2026-11-20,Someone Else,x@example.com,1,OTHER,Other,5\n")
    before = dump()
    message = error_of("orders", "import", more, "--store", "outlet", *skip)
    assert "line 3, field 'order_number'" in message
    assert "order 1001 already belongs to store 'web', not 'outlet'" in message
    assert dump() == before
    assert show("1001")["store"] == "web"


@pytest.mark.usefixtures("shop")
def test_one_order_is_said_in_the_singular(tmp_path: Path):
    one = write(tmp_path / "one.csv", HEADER + "3001,2026-12-01,New Person,n@example.com,1,SKU-1,One,1\n")
    assert "Imported 1 order (1 item) into store 'web'." in cli("orders", "import", one, "--store", "web").stdout


@pytest.mark.usefixtures("shop")
def test_unknown_store():
    before = dump()
    assert "Unknown store 'nope'" in error_of("orders", "import", EXAMPLES / "orders.csv", "--store", "nope")
    assert dump() == before


# -- formats -----------------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_format_option_and_detection(tmp_path: Path):
    as_txt = write(tmp_path / "orders.txt", (EXAMPLES / "orders.csv").read_text())
    cli("orders", "import", as_txt, "--store", "web")
    no_suffix = write(tmp_path / "orders-export", (EXAMPLES / "orders.json").read_text())
    cli("orders", "import", no_suffix, "--store", "web")
    assert len(cli_json("orders", "list")) == 8
    assert "must be csv or json" in error_of("orders", "import", as_txt, "--store", "web", "--format", "xml")


@pytest.mark.usefixtures("shop")
def test_forced_format_that_does_not_fit_is_an_error():
    before = dump()
    message = error_of("orders", "import", EXAMPLES / "orders.csv", "--store", "web", "--format", "json")
    assert "line 1" in message
    assert dump() == before


@pytest.mark.usefixtures("shop")
def test_csv_niceties(tmp_path: Path):
    text = ("\ufeffOrder_Number, ORDER_DATE ,customer_name,customer_email,ship_postal_code,sku,name,quantity\r\n"
            '3001,2026-12-01,"Doe, Jane",jane@example.com,12345,SKU-1,"Mug ""large""",2\r\n'
            "\r\n"
            "3001,2026-12-01,\"Doe, Jane\",jane@example.com,12345,SKU-2,Pen, 3 \r\n")
    path = tmp_path / "o.csv"
    path.write_bytes(text.encode("utf-8"))
    cli("orders", "import", path, "--store", "web")
    o = show("3001")
    assert o["customer_name"] == "Doe, Jane"
    assert [(i["sku"], i["name"], i["quantity"]) for i in o["items"]] == [
        ("SKU-1", 'Mug "large"', 2), ("SKU-2", "Pen", 3)]


@pytest.mark.usefixtures("shop")
def test_empty_and_missing_files(tmp_path: Path):
    empty = write(tmp_path / "empty.csv", "")
    assert "empty" in error_of("orders", "import", empty, "--store", "web")
    header_only = write(tmp_path / "header.csv", HEADER)
    assert "no orders" in error_of("orders", "import", header_only, "--store", "web")
    assert "no such file" in error_of("orders", "import", tmp_path / "nope.csv", "--store", "web")
    assert "holds no orders" in error_of("orders", "import", write(tmp_path / "e.json", "[]"), "--store", "web")


def test_core_parse_and_import(tmp_path: Path):
    parsed = parse_orders(EXAMPLES / "orders.csv", None)
    assert list(parsed) == list(CSV_ORDERS)
    assert [i.quantity for i in parsed["1003"].items] == [1, 3, 2]
    db = open_db()
    try:
        with pytest.raises(NotFound):
            import_orders(db, EXAMPLES / "orders.csv", "web")
        add_webhook_store()
        summary = import_orders(db, EXAMPLES / "orders.csv", "web")
        assert (summary.imported, summary.items, summary.updates_on) == (list(CSV_ORDERS), 10, False)
        with pytest.raises(InputError, match="already in the database"):
            import_orders(db, EXAMPLES / "orders.csv", "web")
    finally:
        db.close()


# -- list and show -----------------------------------------------------------------------


def test_list_filters_and_json_shape():
    setup_shop()
    add_webhook_store("other")
    cli("fire", "order-approved", "1002")
    rows = cli_json("orders", "list")
    assert set(rows[0]) == {"number", "store", "order_date", "customer_name", "label", "items", "queued"}
    assert {r["number"]: r["queued"] for r in rows}["1002"] == 1
    assert [r["number"] for r in cli_json("orders", "list", "--label", "Processing")] == ["1002"]
    assert len(cli_json("orders", "list", "--label", "Order Received")) == 7
    assert cli_json("orders", "list", "--store", "other") == []
    out = cli("orders", "list").stdout
    assert "Ada Lovelace" in out and "Processing" in out


def test_show_json_shape():
    setup_shop()
    cli("ship", "1001", "--item", "MUG-1:1", "--tracking", "1Z1", "--carrier", "UPS")
    data = show("1001")
    assert set(data) == {"number", "store", "order_date", "customer_name", "customer_email", "ship_postal_code",
                         "cart_order_id", "label", "items", "packages", "history", "stack"}
    assert set(data["items"][0]) == {"sku", "name", "quantity", "shipped", "label", "cart_line_id", "cancelled"}
    assert data["packages"] == [{"tracking": "1Z1", "carrier": "UPS", "shipped": data["packages"][0]["shipped"],
                                 "items": [{"sku": "MUG-1", "quantity": 1}]}]
    assert set(data["history"][0]) == {"at", "event", "item", "from", "to"}
    assert len(data["stack"]) == 1
    record = data["stack"][0]
    assert set(record) == {"id", "destination", "state", "attempts", "queued", "last_error", "events"}
    assert (record["destination"], record["state"], record["attempts"]) == ("web", "queued", 0)
    assert record["events"] == ["order-partially-shipped"]
    json.dumps(data)


def test_show_table():
    setup_shop()
    cli("ship", "1001", "--tracking", "1Z1", "--carrier", "UPS")
    out = cli("orders", "show", "1001").stdout
    for text in ("Ada Lovelace", "MUG-1", "1Z1", "Label history", "order-shipped", "On the stack"):
        assert text in out


def test_show_unknown_order():
    cli("init")
    assert "Unknown order '9999'" in error_of("orders", "show", "9999")
