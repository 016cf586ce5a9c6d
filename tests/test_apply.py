"""`statusctl apply`: bulk fire/ship/cancel from CSV or JSON Lines, all rows or none."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from statusctl.core import actions
from statusctl.domain.errors import InputError

from .helpers import (
    EXAMPLES,
    cli,
    cli_json,
    count,
    dump,
    error_of,
    open_db,
    payload_of,
    setup_shop,
    show,
    stack,
    write,
)

HEADER = "action,event,order,sku,quantity,tracking,carrier,note\n"


@pytest.fixture
def shop() -> None:
    setup_shop()


def state() -> dict[str, tuple[str | None, list[tuple[str, str | None, int, bool]]]]:
    out = {}
    for row in cli_json("orders", "list"):
        data = show(row["number"])
        out[row["number"]] = (data["label"], [(i["sku"], i["label"], i["shipped"], i["cancelled"])
                                              for i in data["items"]])
    return out


@pytest.mark.usefixtures("shop")
def test_the_example_applies():
    out = cli("apply", EXAMPLES / "apply.csv").stdout
    # 1001's two rows make one record; every label change of the label history is counted.
    assert count("label_history", "event != 'order-imported'") == 11
    assert "Applied 6 rows to 5 orders: 11 labels changed, 5 records queued." in out
    assert show("1001")["label"] == "Order Shipped"
    assert show("1003")["label"] == "Partially Shipped"
    assert show("1004")["label"] == "Processing"
    assert show("1005")["label"] == "Partially Shipped"
    assert show("1006")["label"] == "Cancelled"
    # Two rows with one tracking number make one package.
    packages = show("1001")["packages"]
    assert [(p["tracking"], p["carrier"], p["items"]) for p in packages] == [
        ("1Z999AA10123456784", "UPS", [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEE-L", "quantity": 1}])]
    records = stack(order="1001")
    assert [r["events"] for r in records] == [["item-shipped", "order-partially-shipped", "order-shipped"]]
    p = payload_of(records[0]["id"])
    assert p["note"] == "Thanks for your order!"
    assert (p["order"]["previous_label"], p["order"]["label"]) == ("Order Received", "Order Shipped")
    assert [(i["sku"], i["changed"], i["previous_label"], i["label"]) for i in p["items"]] == [
        ("MUG-1", True, None, "Item Shipped"), ("TEE-L", True, None, "Item Shipped")]
    assert [(pk["tracking"], pk["items"]) for pk in p["packages"]] == [("1Z999AA10123456784", [
        {"sku": "MUG-1", "cart_line_id": "9001", "quantity": 2}, {"sku": "TEE-L", "cart_line_id": "9002", "quantity": 1}])]
    # The label history still keeps every step.
    steps = [(h["event"], h["from"], h["to"]) for h in show("1001")["history"] if h["item"] is None]
    assert steps[-2:] == [("order-partially-shipped", "Order Received", "Partially Shipped"),
                          ("order-shipped", "Partially Shipped", "Order Shipped")]
    assert payload_of(stack(order="1006")[0]["id"])["note"] == "Sorry: out of stock"


@pytest.mark.usefixtures("shop")
def test_apply_json_summary():
    data = cli_json("apply", EXAMPLES / "apply.csv")
    assert data == {"rows": 6, "orders": 5, "labels_changed": 11, "records": 5, "internal_only": 0,
                    "skipped_events": {}}


def test_json_lines_does_the_same_as_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    setup_shop()
    cli("apply", EXAMPLES / "apply.csv")
    via_csv = state()
    records_csv = [(r["order"], r["events"]) for r in stack()]

    with open(EXAMPLES / "apply.csv", newline="") as f:
        rows = [{k: (int(v) if k == "quantity" else v) for k, v in row.items() if v} for row in csv.DictReader(f)]
    jsonl = write(tmp_path / "apply.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    # The same shop on a second database, then the JSON Lines form of the same file.
    monkeypatch.setenv("STATUSCTL_DB", str(tmp_path / "other.db"))
    setup_shop()
    cli("apply", jsonl)
    assert state() == via_csv
    assert [(r["order"], r["events"]) for r in stack()] == records_csv


@pytest.mark.usefixtures("shop")
def test_rows_of_one_order_build_on_each_other(tmp_path: Path):
    f = write(tmp_path / "a.csv", HEADER
              + "ship,,1003,POSTER,1,,,\n"
              + "ship,,1003,POSTER,2,,,\n"
              + "cancel,,1003,TEE-M,,,,\n"
              + "ship,,1003,MUG-1,,,,\n")
    data = cli_json("apply", f)
    assert (data["rows"], data["orders"], data["records"]) == (4, 1, 1)
    [record] = stack(order="1003")
    assert record["events"] == ["order-partially-shipped", "item-shipped", "item-cancelled", "order-shipped"]
    p = payload_of(record["id"])
    assert [(i["sku"], i["changed"], i["shipped"], i["cancelled"], i["label"]) for i in p["items"]] == [
        ("MUG-1", True, 1, False, "Item Shipped"), ("POSTER", True, 3, False, "Item Shipped"),
        ("TEE-M", True, 0, True, "Item Cancelled")]
    # Two packages without tracking: one per ship row.
    assert [[(i["sku"], i["quantity"]) for i in pk["items"]] for pk in p["packages"]] == [
        [("POSTER", 1)], [("POSTER", 2)], [("MUG-1", 1)]]
    assert show("1003")["label"] == "Order Shipped"


@pytest.mark.usefixtures("shop")
def test_change_only_rule_in_bulk(tmp_path: Path):
    f = write(tmp_path / "a.csv", HEADER + "fire,order-approved,1002,,,,,\n" * 3)
    data = cli_json("apply", f)
    assert (data["rows"], data["orders"], data["labels_changed"], data["records"]) == (3, 1, 1, 1)
    again = cli_json("apply", f)
    assert (again["rows"], again["labels_changed"], again["records"]) == (3, 0, 0)
    assert count("stack") == 1


@pytest.mark.usefixtures("shop")
def test_events_that_do_not_fire_are_counted(tmp_path: Path):
    f = write(tmp_path / "a.csv", HEADER + "fire,payment-received,1002,,,,,\nfire,payment-received,1001,,,,,\n")
    out = cli("apply", f).stdout
    assert "Event payment-received does not fire (its 'fires' is off): skipped 2 times." in out
    assert cli_json("apply", f)["skipped_events"] == {"payment-received": 2}
    assert count("stack") == 0


def test_internal_only_rows_are_counted(tmp_path: Path):
    cli("config", "set", "UseStatusUpdates", "true")
    cli("stores", "add", "phone", "--cart", "none", "--url", "https://phone.example")
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "phone")
    f = write(tmp_path / "a.csv", HEADER + "fire,order-approved,2001,,,,,\nship,,2002,,,,,\n")
    data = cli_json("apply", f)
    assert (data["orders"], data["records"], data["internal_only"]) == (2, 0, 2)
    assert ", 2 internal only" in cli("apply", write(tmp_path / "b.csv", HEADER + "cancel,,2001,,,,,\n"
                                                     + "fire,order-approved,2002,,,,,\n")).stdout


@pytest.mark.usefixtures("shop")
def test_a_failing_row_rolls_back_every_row(tmp_path: Path):
    before = dump()
    f = write(tmp_path / "a.csv", HEADER
              + "fire,order-approved,1002,,,,,\n"
              + "ship,,1001,,,T1,UPS,\n"
              + "ship,,1001,MUG-1,1,,,\n")
    message = error_of("apply", f)
    assert f"{f}, line 4" in message
    assert dump() == before


def test_batched_writes_give_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    setup_shop()
    rows = HEADER + "".join(f"fire,order-approved,{n},,,,,\nship,,{n},,,,,\n" for n in ("1001", "1002", "1004"))
    f = write(tmp_path / "a.csv", rows + "cancel,,1006,,,,,\n")
    monkeypatch.setattr(actions, "FLUSH_EVERY", 2)
    db = open_db()
    try:
        summary = actions.apply_file(db, f)
    finally:
        db.close()
    assert (summary.rows, summary.orders, summary.records) == (7, 4, 4)
    assert [r["events"] for r in stack(order="1002")] == [["order-approved", "item-shipped", "order-shipped"]]
    assert show("1006")["label"] == "Cancelled"


def test_core_apply_errors(tmp_path: Path):
    setup_shop()
    db = open_db()
    try:
        with pytest.raises(InputError, match="holds no rows"):
            actions.apply_file(db, write(tmp_path / "a.csv", HEADER))
        with pytest.raises(InputError, match="missing column 'order'"):
            actions.apply_file(db, write(tmp_path / "b.csv", "action,event\nfire,order-approved\n"))
    finally:
        db.close()


@pytest.mark.usefixtures("shop")
def test_many_rows(tmp_path: Path):
    lines = [HEADER]
    for _ in range(500):
        lines.append("fire,order-approved,1002,,,,,\nfire,item-backordered,1003,POSTER,,,,\n")
    data = cli_json("apply", write(tmp_path / "many.csv", "".join(lines)))
    assert (data["rows"], data["orders"], data["records"]) == (1000, 2, 2)


@pytest.mark.usefixtures("shop")
def test_one_record_per_order_carries_every_rows_note_and_package(tmp_path: Path):
    f = write(tmp_path / "a.csv", HEADER
              + "ship,,1003,POSTER,1,T-1,UPS,First box\n"
              + "ship,,1003,POSTER,2,T-2,USPS,Second box\n"
              + "ship,,1003,MUG-1,,T-1,UPS,First box\n"
              + "fire,order-approved,1004,,,,,Approved\n")
    data = cli_json("apply", f)
    assert (data["rows"], data["orders"], data["records"]) == (4, 2, 2)
    [record] = stack(order="1003")
    p = payload_of(record["id"])
    assert p["note"] == "First box\nSecond box"  # each note once, in the rows' order
    assert [(pk["tracking"], pk["carrier"], [(i["sku"], i["quantity"]) for i in pk["items"]])
            for pk in p["packages"]] == [("T-1", "UPS", [("POSTER", 1), ("MUG-1", 1)]),
                                         ("T-2", "USPS", [("POSTER", 2)])]
    assert payload_of(stack(order="1004")[0]["id"])["note"] == "Approved"


@pytest.mark.usefixtures("shop")
def test_an_order_whose_rows_notify_only_in_part_still_gets_one_record(tmp_path: Path):
    cli("events", "set", "order-approved", "--no-notify-cart")
    f = write(tmp_path / "a.csv", HEADER + "fire,order-approved,1002,,,,,\n" + "ship,,1002,,,,,\n")
    data = cli_json("apply", f)
    assert (data["labels_changed"], data["records"]) == (3, 1)
    [record] = stack(order="1002")
    assert record["events"] == ["order-approved", "item-shipped", "order-shipped"]
    assert payload_of(record["id"])["order"]["previous_label"] == "Order Received"
