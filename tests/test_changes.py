"""`fire`, `ship` and `cancel`: the change-only rule, one record per command, history, routing."""

from __future__ import annotations

from typing import Any

import pytest

from statusctl.core import actions
from statusctl.domain.errors import InputError, NotFound, StatusUpdatesOff

from .helpers import (
    EXAMPLES,
    add_webhook_store,
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
)


@pytest.fixture
def shop() -> None:
    setup_shop()


def only_record(order: str) -> dict[str, Any]:
    rows = stack(order=order)
    assert len(rows) == 1, rows
    return payload_of(rows[0]["id"])


def last_record(order: str) -> dict[str, Any]:
    return payload_of(stack(order=order)[-1]["id"])


def labels(order: str) -> tuple[str | None, dict[str, str | None]]:
    data = show(order)
    return data["label"], {i["sku"]: i["label"] for i in data["items"]}


def history(order: str) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(h["event"], h["item"], h["from"], h["to"]) for h in show(order)["history"]]


# -- fire --------------------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_fire_changes_the_label_and_queues_one_record():
    out = cli("fire", "order-approved", "1002").stdout
    assert "Order 1002: order: Order Received → Processing" in out
    assert "Queued record su_" in out and "for web" in out
    p = only_record("1002")
    assert p["events"] == ["order-approved"]
    assert p["store"] == "web"
    assert p["order"] == {"number": "1002", "cart_order_id": "502", "label": "Processing",
                          "previous_label": "Order Received", "postal_code": "10001", "date": "2026-11-20"}
    assert p["items"] == [{"sku": "CAP-BLK", "cart_line_id": "9003", "name": "Cap (black)", "label": None,
                           "previous_label": None, "quantity": 1, "shipped": 0, "cancelled": False,
                           "changed": False}]
    assert p["packages"] == [] and p["note"] is None
    assert history("1002")[-1] == ("order-approved", None, "Order Received", "Processing")


@pytest.mark.usefixtures("shop")
def test_firing_the_same_event_twice_queues_nothing_the_second_time():
    cli("fire", "order-approved", "1002")
    before = dump()
    out = cli("fire", "order-approved", "1002").stdout
    assert "no label changed, nothing queued" in out
    assert dump() == before


@pytest.mark.usefixtures("shop")
def test_fire_json_result():
    data = cli_json("fire", "order-approved", "1002", "--note", "Thanks!")
    assert set(data) == {"order", "changes", "skipped_events", "record", "destination", "internal_only"}
    assert data["order"] == "1002" and data["destination"] == "web" and data["internal_only"] is False
    assert data["record"].startswith("su_")
    assert payload_of(data["record"])["note"] == "Thanks!"
    again = cli_json("fire", "order-approved", "1002")
    assert again["changes"] == [] and again["record"] is None


@pytest.mark.usefixtures("shop")
def test_event_that_does_not_fire_does_nothing_and_says_so():
    before = dump()
    out = cli("fire", "payment-received", "1002").stdout
    assert "Event payment-received does not fire" in out
    assert dump() == before
    assert cli_json("fire", "payment-received", "1002")["skipped_events"] == ["payment-received"]


@pytest.mark.usefixtures("shop")
def test_event_without_notify_changes_labels_internally_only():
    cli("events", "set", "order-on-hold", "--fire")
    out = cli("fire", "order-on-hold", "1002").stdout
    assert "Internal only: no changed label notifies the cart." in out
    assert labels("1002")[0] == "On Hold"
    assert count("stack") == 0
    assert history("1002")[-1] == ("order-on-hold", None, "Order Received", "On Hold")


@pytest.mark.usefixtures("shop")
def test_fire_item_event():
    cli("fire", "item-backordered", "1003", "--item", "POSTER", "--item", "TEE-M")
    assert labels("1003") == ("Order Received", {"MUG-1": None, "POSTER": "Backordered", "TEE-M": "Backordered"})
    p = only_record("1003")
    assert p["events"] == ["item-backordered"]
    assert [(i["sku"], i["changed"], i["previous_label"], i["label"]) for i in p["items"]] == [
        ("MUG-1", False, None, None), ("POSTER", True, None, "Backordered"), ("TEE-M", True, None, "Backordered")]
    assert p["order"]["label"] == p["order"]["previous_label"] == "Order Received"
    # Again on one already backordered item and one new: only the new one counts.
    cli("fire", "item-backordered", "1003", "--item", "POSTER", "--item", "MUG-1")
    p = last_record("1003")
    assert [i["sku"] for i in p["items"] if i["changed"]] == ["MUG-1"]
    assert len(stack(order="1003")) == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("fire", "item-backordered", "1003"), "--item"),
        (("fire", "order-approved", "1003", "--item", "MUG-1"), "--item does not apply"),
        (("fire", "order-exploded", "1003"), "Unknown status event 'order-exploded'"),
        (("fire", "order-approved", "9999"), "Unknown order '9999'"),
        (("fire", "item-backordered", "1003", "--item", "NOPE"), "no item with SKU 'NOPE'"),
        (("fire", "item-backordered", "1003", "--item", "MUG-1", "--item", "NOPE"), "'NOPE'"),
    ],
)
@pytest.mark.usefixtures("shop")
def test_fire_errors_change_nothing(args: tuple[str, ...], fragment: str):
    before = dump()
    assert fragment in error_of(*args)
    assert dump() == before


# -- ship --------------------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_ship_everything_queues_one_record_carrying_both_events():
    out = cli("ship", "1001", "--tracking", "1Z999", "--carrier", "UPS", "--note", "On its way").stdout
    assert out.count("Queued record") == 1
    assert labels("1001") == ("Order Shipped", {"MUG-1": "Item Shipped", "TEE-L": "Item Shipped"})
    p = only_record("1001")
    assert p["events"] == ["item-shipped", "order-shipped"]
    assert p["order"]["label"] == "Order Shipped" and p["order"]["previous_label"] == "Order Received"
    assert [(i["sku"], i["changed"], i["shipped"], i["label"]) for i in p["items"]] == [
        ("MUG-1", True, 2, "Item Shipped"), ("TEE-L", True, 1, "Item Shipped")]
    assert len(p["packages"]) == 1
    pkg = p["packages"][0]
    assert (pkg["tracking"], pkg["carrier"]) == ("1Z999", "UPS")
    assert pkg["items"] == [{"sku": "MUG-1", "cart_line_id": "9001", "quantity": 2},
                            {"sku": "TEE-L", "cart_line_id": "9002", "quantity": 1}]
    assert p["note"] == "On its way"
    assert history("1001")[1:] == [
        ("item-shipped", "MUG-1", None, "Item Shipped"),
        ("item-shipped", "TEE-L", None, "Item Shipped"),
        ("order-shipped", None, "Order Received", "Order Shipped"),
    ]


@pytest.mark.usefixtures("shop")
def test_partial_shipping():
    # One poster of three: no item is fully shipped, the order is partly shipped.
    cli("ship", "1003", "--item", "POSTER:1")
    assert labels("1003") == ("Partially Shipped", {"MUG-1": None, "POSTER": None, "TEE-M": None})
    assert last_record("1003")["events"] == ["order-partially-shipped"]
    # The other two posters: the item is now shipped; the order label does not change.
    cli("ship", "1003", "--item", "POSTER:2")
    assert labels("1003") == ("Partially Shipped", {"MUG-1": None, "POSTER": "Item Shipped", "TEE-M": None})
    p = last_record("1003")
    assert p["events"] == ["item-shipped"]
    assert p["order"]["label"] == p["order"]["previous_label"] == "Partially Shipped"
    # The rest (no --item: everything left).
    cli("ship", "1003")
    assert labels("1003") == ("Order Shipped", {"MUG-1": "Item Shipped", "POSTER": "Item Shipped",
                                                "TEE-M": "Item Shipped"})
    p = last_record("1003")
    assert p["events"] == ["item-shipped", "order-shipped"]
    assert [i["sku"] for i in p["items"] if i["changed"]] == ["MUG-1", "TEE-M"]
    assert [x["sku"] for x in p["packages"][0]["items"]] == ["MUG-1", "TEE-M"]
    assert len(stack(order="1003")) == 3
    data = show("1003")
    assert [(i["shipped"], i["quantity"]) for i in data["items"]] == [(1, 1), (3, 3), (2, 2)]
    assert len(data["packages"]) == 3


@pytest.mark.usefixtures("shop")
def test_partial_shipment_without_a_label_change_or_tracking_queues_nothing():
    cli("ship", "1003", "--item", "POSTER:1")
    before = count("stack")
    out = cli("ship", "1003", "--item", "POSTER:1").stdout
    assert "no label changed, nothing queued" in out
    assert count("stack") == before
    assert show("1003")["items"][1]["shipped"] == 2


@pytest.mark.usefixtures("shop")
def test_a_new_tracking_number_is_sent_even_without_a_label_change():
    # The split-shipment case: the customer must get the second parcel's tracking number.
    cli("ship", "1003", "--item", "POSTER:1", "--tracking", "T-1", "--carrier", "UPS")
    cli("ship", "1003", "--item", "POSTER:1", "--tracking", "T-2", "--carrier", "UPS")
    p = last_record("1003")
    assert p["events"] == []
    assert p["packages"][0]["tracking"] == "T-2"
    assert len(stack(order="1003")) == 2
    # The same tracking number again is the same package: nothing new to tell.
    cli("ship", "1003", "--item", "TEE-M:1", "--tracking", "T-2")
    assert len(stack(order="1003")) == 2
    packages = show("1003")["packages"]
    assert [(p["tracking"], p["items"]) for p in packages] == [
        ("T-1", [{"sku": "POSTER", "quantity": 1}]),
        ("T-2", [{"sku": "POSTER", "quantity": 1}, {"sku": "TEE-M", "quantity": 1}])]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("ship", "1003", "--item", "POSTER:4"), "has 3 left to ship, not 4"),
        (("ship", "1003", "--item", "POSTER:0"), "at least 1"),
        (("ship", "1003", "--item", "POSTER:x"), "whole number"),
        (("ship", "1003", "--item", "NOPE"), "no item with SKU 'NOPE'"),
        (("ship", "1003", "--carrier", "UPS"), "--carrier needs --tracking"),
        (("ship", "9999"), "Unknown order '9999'"),
        (("ship", "1003", "--item", "MUG-1", "--item", "POSTER:9"), "POSTER"),
        # Each --item is checked against what is left: a repeat must not ship more than ordered.
        (("ship", "1003", "--item", "POSTER:2", "--item", "POSTER:2"), "more than once"),
        (("ship", "1003", "--item", "MUG-1", "--item", "MUG-1"), "more than once"),
    ],
)
@pytest.mark.usefixtures("shop")
def test_ship_errors_change_nothing(args: tuple[str, ...], fragment: str):
    before = dump()
    assert fragment in error_of(*args)
    assert dump() == before


@pytest.mark.usefixtures("shop")
def test_shipping_what_is_already_shipped_is_refused():
    cli("ship", "1001")
    before = dump()
    assert "nothing left to ship" in error_of("ship", "1001")
    assert "Item MUG-1 of order 1001 is already fully shipped." in error_of("ship", "1001", "--item", "MUG-1")
    assert dump() == before


# -- cancel ------------------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_cancelled_items_do_not_count_toward_order_shipped():
    cli("cancel", "1003", "--item", "TEE-M")
    assert labels("1003") == ("Order Received", {"MUG-1": None, "POSTER": None, "TEE-M": "Item Cancelled"})
    assert last_record("1003")["events"] == ["item-cancelled"]
    cli("ship", "1003")
    assert labels("1003") == ("Order Shipped", {"MUG-1": "Item Shipped", "POSTER": "Item Shipped",
                                                "TEE-M": "Item Cancelled"})
    p = last_record("1003")
    assert p["events"] == ["item-shipped", "order-shipped"]
    assert [x["sku"] for x in p["packages"][0]["items"]] == ["MUG-1", "POSTER"]
    assert [i["cancelled"] for i in p["items"]] == [False, False, True]


@pytest.mark.usefixtures("shop")
def test_cancelling_the_last_unshipped_item_completes_the_shipment():
    cli("ship", "1003", "--item", "MUG-1", "--item", "POSTER")
    assert labels("1003")[0] == "Partially Shipped"
    cli("cancel", "1003", "--item", "TEE-M")
    assert labels("1003")[0] == "Order Shipped"
    p = last_record("1003")
    assert p["events"] == ["item-cancelled", "order-shipped"]
    assert len(stack(order="1003")) == 2


@pytest.mark.usefixtures("shop")
def test_cancel_items_then_the_whole_order():
    cli("cancel", "1003", "--item", "MUG-1")
    cli("cancel", "1003", "--note", "Sorry")
    assert labels("1003") == ("Cancelled", {"MUG-1": "Item Cancelled", "POSTER": "Item Cancelled",
                                            "TEE-M": "Item Cancelled"})
    p = last_record("1003")
    assert p["events"] == ["order-cancelled"]
    assert [(i["sku"], i["changed"]) for i in p["items"]] == [("MUG-1", False), ("POSTER", True), ("TEE-M", True)]
    assert p["note"] == "Sorry"
    assert len(stack(order="1003")) == 2
    assert history("1003")[1:] == [
        ("item-cancelled", "MUG-1", None, "Item Cancelled"),
        ("order-cancelled", "POSTER", None, "Item Cancelled"),
        ("order-cancelled", "TEE-M", None, "Item Cancelled"),
        ("order-cancelled", None, "Order Received", "Cancelled"),
    ]
    # Cancelling again changes nothing.
    before = dump()
    assert "no label changed" in cli("cancel", "1003").stdout
    assert dump() == before


@pytest.mark.usefixtures("shop")
def test_cancelling_every_item_cancels_the_order_in_the_same_record():
    cli("cancel", "1001", "--item", "MUG-1")
    cli("cancel", "1001", "--item", "TEE-L")
    assert labels("1001") == ("Cancelled", {"MUG-1": "Item Cancelled", "TEE-L": "Item Cancelled"})
    assert last_record("1001")["events"] == ["item-cancelled", "order-cancelled"]
    assert len(stack(order="1001")) == 2


@pytest.mark.usefixtures("shop")
def test_cancel_whole_order_fires_order_cancelled_only():
    cli("cancel", "1001")
    p = only_record("1001")
    assert p["events"] == ["order-cancelled"]
    assert all(i["cancelled"] and i["changed"] for i in p["items"])


@pytest.mark.usefixtures("shop")
def test_cancelling_again_an_order_cancelled_after_a_partial_shipment_changes_nothing():
    cli("ship", "1001", "--item", "MUG-1", "--tracking", "T1", "--carrier", "UPS")
    cli("cancel", "1001")
    assert labels("1001") == ("Cancelled", {"MUG-1": "Item Shipped", "TEE-L": "Item Cancelled"})
    before = dump()
    out = cli("cancel", "1001").stdout
    assert "no label changed, nothing queued" in out and "fully shipped" not in out
    assert dump() == before


@pytest.mark.usefixtures("shop")
def test_cancelling_an_item_of_an_order_cancelled_after_a_partial_shipment_changes_nothing():
    cli("ship", "1001", "--item", "MUG-1", "--tracking", "T1", "--carrier", "UPS")
    cli("cancel", "1001")
    before = dump()
    out = cli("cancel", "1001", "--item", "TEE-L").stdout
    assert "no label changed, nothing queued" in out and "Order Shipped" not in out
    assert dump() == before
    assert labels("1001")[0] == "Cancelled"


@pytest.mark.usefixtures("shop")
def test_an_order_whose_only_uncancelled_items_are_shipped_is_fully_shipped_for_cancel():
    cli("cancel", "1001", "--item", "TEE-L")
    cli("ship", "1001")
    assert "already fully shipped" in error_of("cancel", "1001")


@pytest.mark.parametrize(
    ("setup", "args", "fragment"),
    [
        (("ship", "1001"), ("cancel", "1001"), "already fully shipped"),
        (("ship", "1001", "--item", "MUG-1"), ("cancel", "1001", "--item", "MUG-1"), "already shipped"),
        (("ship", "1001", "--item", "MUG-1"), ("cancel", "1001", "--item", "MUG-1"), "already shipped"),
        (("cancel", "1001", "--item", "MUG-1"), ("ship", "1001", "--item", "MUG-1"), "is cancelled"),
        (("cancel", "1001"), ("ship", "1001"), "nothing left to ship"),
        (("fire", "order-approved", "1001"), ("cancel", "1001", "--item", "NOPE"), "'NOPE'"),
        (("fire", "order-approved", "1001"), ("cancel", "9999"), "Unknown order"),
    ],
)
@pytest.mark.usefixtures("shop")
def test_cancel_and_ship_refusals(setup: tuple[str, ...], args: tuple[str, ...], fragment: str):
    cli(*setup)
    before = dump()
    assert fragment in error_of(*args)
    assert dump() == before


# -- notify cart, routing ----------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_a_record_is_queued_when_one_changed_label_notifies():
    cli("events", "set", "item-shipped", "--no-notify-cart")
    cli("ship", "1001")
    assert only_record("1001")["events"] == ["item-shipped", "order-shipped"]


@pytest.mark.usefixtures("shop")
def test_no_record_when_no_changed_label_notifies():
    cli("events", "set", "item-shipped", "--no-notify-cart")
    cli("events", "set", "order-partially-shipped", "--no-notify-cart")
    out = cli("ship", "1003", "--item", "POSTER", "--tracking", "T-1").stdout
    assert "Internal only: no changed label notifies the cart." in out
    assert count("stack") == 0
    assert labels("1003")[0] == "Partially Shipped"


def test_a_store_whose_cart_cannot_take_updates_is_internal_only_unless_an_oss_is_set():
    cli("config", "set", "UseStatusUpdates", "true")
    add_webhook_store("status-page")
    cli("stores", "add", "phone", "--cart", "none", "--url", "https://phone.example")
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "phone")
    out = cli("fire", "order-approved", "2001").stdout
    assert "Internal only: this store's cart cannot take updates and no OSS is set." in out
    assert cli_json("fire", "order-approved", "2002")["internal_only"] is True
    assert count("stack") == 0
    assert labels("2001")[0] == "Processing"
    cli("oss", "set", "status-page")
    data = cli_json("ship", "2001")
    assert data["destination"] == "status-page"
    rows = stack()
    assert [(r["order"], r["store"], r["destination"]) for r in rows] == [("2001", "phone", "status-page")]
    assert payload_of(rows[0]["id"])["store"] == "phone"


# -- UseStatusUpdates false --------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("fire", "order-approved", "1001"),
        ("fire", "item-backordered", "1001", "--item", "MUG-1"),
        ("ship", "1001"),
        ("ship", "1003", "--item", "POSTER:1", "--tracking", "T", "--carrier", "UPS"),
        ("cancel", "1001"),
        ("cancel", "1003", "--item", "TEE-M"),
        ("apply", EXAMPLES / "apply.csv"),
    ],
)
def test_with_updates_off_commands_exit_4_and_change_nothing(args: tuple[str, ...]):
    setup_shop(updates=False)
    before = dump()
    message = error_of(*args, code=4)
    assert "UseStatusUpdates" in message
    assert dump() == before


def test_core_actions_refuse_when_updates_are_off():
    setup_shop(updates=False)
    db = open_db()
    try:
        with pytest.raises(StatusUpdatesOff):
            actions.fire(db, "order-approved", "1001", [])
        with pytest.raises(StatusUpdatesOff):
            actions.ship(db, "1001", [], None, None)
        with pytest.raises(StatusUpdatesOff):
            actions.cancel(db, "1001", [])
    finally:
        db.close()


def test_core_actions():
    setup_shop()
    db = open_db()
    try:
        r = actions.ship(db, "1003", ["POSTER:2"], "T-9", "DHL")
        assert r.changes == ["order: Order Received → Partially Shipped"]
        assert r.record and r.destination == "web"
        with pytest.raises(NotFound):
            actions.cancel(db, "1003", ["NOPE"])
        with pytest.raises(InputError):
            actions.parse_item("POSTER:-1")
        assert actions.parse_item("A:B:2") == ("A:B", 2)
        assert actions.parse_item("PLAIN") == ("PLAIN", None)
    finally:
        db.close()


def test_a_package_made_before_a_flush_keeps_its_database_id_after_it():
    """Package ids come from the database when the package is written: a later command of the same
    session (an apply flushes every FLUSH_EVERY rows) that ships into the same tracking number adds
    to that package, not to a new one."""
    from statusctl.core.changes import ChangeSession

    setup_shop()
    db = open_db()
    try:
        with db.tx() as conn:
            session = ChangeSession(conn, group=True)
            session.ship("1001", [("MUG-1", 1)], "T-1", "UPS")
            session.ship("1003", [("MUG-1", 1)], "T-3", None)
            session.flush()
            session.ship("1001", [("MUG-1", 1)], "T-1", "UPS")
            session.ship("1001", [("TEE-L", 1)], "T-2", None)
            session.flush()
    finally:
        db.close()
    packages = show("1001")["packages"]
    assert [(p["tracking"], p["items"]) for p in packages] == [
        ("T-1", [{"sku": "MUG-1", "quantity": 2}]), ("T-2", [{"sku": "TEE-L", "quantity": 1}])]
    assert [p["tracking"] for p in show("1003")["packages"]] == ["T-3"]


# -- the stack's views -------------------------------------------------------------------


@pytest.mark.usefixtures("shop")
def test_stack_list_json_shape_and_filters():
    add_webhook_store("other")
    cli("fire", "order-approved", "1002")
    cli("ship", "1001")
    rows = stack()
    assert [r["order"] for r in rows] == ["1002", "1001"]
    assert set(rows[0]) == {"id", "order", "store", "destination", "state", "attempts", "queued", "next_attempt",
                            "last_status", "last_error", "last_answer", "events"}
    assert (rows[0]["state"], rows[0]["attempts"], rows[0]["last_error"]) == ("queued", 0, None)
    assert rows[1]["events"] == ["item-shipped", "order-shipped"]
    assert [r["order"] for r in stack(order="1001")] == ["1001"]
    assert len(stack(store="web")) == 2
    assert stack(store="other") == []
    assert cli_json("stack", "list", "--failed") == []
    out = cli("stack", "list").stdout
    assert rows[0]["id"][:11] in out and "1002" in out


@pytest.mark.usefixtures("shop")
def test_stack_status_json_shape():
    empty = cli_json("stack", "status")
    assert empty["stores"] == [] and empty["controllers"] == [] and empty["problems"] == []
    assert "The stack is empty." in cli("stack", "status").stdout
    cli("fire", "order-approved", "1002")
    cli("ship", "1001")
    data = cli_json("stack", "status")
    assert set(data) == {"controllers", "stores", "now", "problems", "other_store_problems"}
    assert len(data["stores"]) == 1
    s = data["stores"][0]
    assert set(s) == {"store", "queued", "due", "held", "retrying", "sending", "failed", "oldest_age",
                      "paused", "paused_until", "pause_reason", "paused_since",
                      "misconfigured", "misconfigured_by", "misconfigured_at"}
    assert (s["paused"], s["misconfigured"]) == (False, None)
    assert (s["store"], s["queued"], s["due"], s["retrying"], s["sending"], s["failed"]) == ("web", 2, 2, 0, 0, 0)
    assert s["oldest_age"] >= 0
    cli("stack", "status", "--check")
    out = cli("stack", "status").stdout
    assert "No controller is running." in out and "web" in out


def test_command_line_text_has_the_same_limits_as_apply():
    setup_shop()
    for args, flag in [
        (("ship", "1001", "--tracking", "T" * 101), "--tracking is longer than 100"),
        (("ship", "1001", "--tracking", "T1", "--carrier", "C" * 101), "--carrier is longer than 100"),
        (("ship", "1001", "--note", "n" * 2001), "--note is longer than 2000"),
        (("cancel", "1001", "--note", "bad\x00note"), "--note contains a NUL"),
        (("fire", "order-approved", "1001", "--note", "n" * 2001), "--note is longer than 2000"),
    ]:
        before = dump()
        assert flag in error_of(*args)
        assert dump() == before
    cli("ship", "1001", "--tracking", "T" * 100, "--carrier", "C" * 100, "--note", "n" * 2000)

