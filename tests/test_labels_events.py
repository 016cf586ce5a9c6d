"""`statusctl labels` and `statusctl events`: built-ins, scope, cart values, name rules, the grid."""

from __future__ import annotations

import pytest

from statusctl.carts.matrix import CART_TYPES, DEFAULT_MAPPINGS
from statusctl.core import events, labels
from statusctl.core.errors import InputError, NotFound

from .helpers import cli, cli_json, dump, error_of, open_db, setup_shop

BUILTIN = [
    ("Order Received", "order"), ("Payment Received", "order"), ("Processing", "order"), ("On Hold", "order"),
    ("Partially Shipped", "order"), ("Order Shipped", "order"), ("Cancelled", "order"), ("Backordered", "item"),
    ("Drop Ship Ordered", "item"), ("Item Shipped", "item"), ("Item Cancelled", "item"), ("Item Returned", "item"),
]

# DESIGN.md §2, the events grid: event, item label, order label, fires, notify cart.
GRID = [
    ("order-imported", None, "Order Received", True, False),
    ("payment-received", None, "Payment Received", False, False),
    ("order-approved", None, "Processing", True, True),
    ("order-on-hold", None, "On Hold", False, False),
    ("item-backordered", "Backordered", None, True, True),
    ("dropship-ordered", "Drop Ship Ordered", None, False, False),
    ("item-shipped", "Item Shipped", None, True, True),
    ("order-partially-shipped", None, "Partially Shipped", True, True),
    ("order-shipped", None, "Order Shipped", True, True),
    ("item-cancelled", "Item Cancelled", None, True, True),
    ("order-cancelled", "Item Cancelled", "Cancelled", True, True),
    ("item-returned", "Item Returned", None, False, False),
]


def grid() -> list[tuple[object, ...]]:
    return [(e["event"], e["item_label"], e["order_label"], e["fires"], e["notify_cart"])
            for e in cli_json("events", "list")]


def label_json(name: str) -> dict[str, object]:
    found = [x for x in cli_json("labels", "list") if x["name"] == name]
    assert len(found) == 1, name
    return found[0]


# -- labels ------------------------------------------------------------------------------


def test_builtin_labels_with_scope():
    rows = cli_json("labels", "list")
    assert [(r["name"], r["scope"]) for r in rows] == BUILTIN
    assert all(r["builtin"] is True for r in rows)
    assert set(rows[0]) == {"name", "scope", "builtin", "mappings"}


def test_builtin_labels_carry_the_default_cart_values():
    rows = {r["name"]: r["mappings"] for r in cli_json("labels", "list")}
    for name, maps in DEFAULT_MAPPINGS.items():
        assert rows[name] == maps
    assert rows["Order Shipped"]["woocommerce"] == "completed"


def test_labels_table():
    out = cli("labels", "list").stdout
    for name, scope in BUILTIN:
        line = next(x for x in out.splitlines() if f" {name} " in x)
        assert scope in line
    assert "woocommerce=completed" in out


@pytest.mark.parametrize("scope", ["item", "order", "both"])
def test_add_label_with_scope(scope: str):
    out = cli("labels", "add", "Gift Wrapped", "--scope", scope).stdout
    assert "Gift Wrapped" in out
    row = label_json("Gift Wrapped")
    assert row == {"name": "Gift Wrapped", "scope": scope, "builtin": False, "mappings": {}}


def test_add_label_default_scope_is_both():
    cli("labels", "add", "Awaiting Stock")
    assert label_json("Awaiting Stock")["scope"] == "both"


def test_add_label_with_maps():
    cli("labels", "add", "Ready For Pickup", "--scope", "order",
        "--map", "woocommerce=ready-pickup", "--map", "BigCommerce=8")
    assert label_json("Ready For Pickup")["mappings"] == {"bigcommerce": "8", "woocommerce": "ready-pickup"}
    # Adding again changes the cart values of the same label.
    cli("labels", "add", "ready for pickup", "--scope", "order", "--map", "woocommerce=pickup")
    row = label_json("Ready For Pickup")
    assert row["mappings"] == {"bigcommerce": "8", "woocommerce": "pickup"}


def test_map_a_builtin_label():
    cli("labels", "add", "Order Shipped", "--scope", "order", "--map", "woocommerce=shipped")
    row = label_json("Order Shipped")
    assert row["builtin"] is True
    assert row["mappings"]["woocommerce"] == "shipped"


def test_map_only_cart_types_from_the_matrix():
    cli("init")
    before = dump()
    message = error_of("labels", "add", "Ready", "--map", "amazon=ready")
    assert "'amazon'" in message
    for cart in CART_TYPES:
        assert cart in message
    assert dump() == before


@pytest.mark.parametrize("bad", ["woocommerce", "woocommerce=", "=completed", "woocommerce= "])
def test_map_must_be_cart_equals_value(bad: str):
    cli("init")
    before = dump()
    message = error_of("labels", "add", "Ready", "--map", bad)
    assert "CART=VALUE" in message or "unknown cart type" in message
    assert dump() == before


@pytest.mark.parametrize("name", ["A", "x" * 50, "Shipped – partly (2/3)", "Größe geändert", "  Padded  "])
def test_good_label_names(name: str):
    cli("labels", "add", name)
    assert label_json(name.strip())["name"] == name.strip()


@pytest.mark.parametrize(
    ("name", "why"),
    [("", "1 to 50"), ("   ", "1 to 50"), ("x" * 51, "1 to 50"), ("Bob's", "quote"), ('Say "hi"', "quote"),
     ("tab\there", "control")],
)
def test_bad_label_names(name: str, why: str):
    cli("init")
    before = dump()
    message = error_of("labels", "add", name)
    assert why in message
    assert dump() == before


def test_bad_scope():
    cli("init")
    before = dump()
    assert "'everything'" in error_of("labels", "add", "X", "--scope", "everything")
    assert dump() == before


def test_same_name_other_scope_is_refused():
    cli("labels", "add", "Gift Wrapped", "--scope", "item")
    message = error_of("labels", "add", "gift wrapped", "--scope", "order")
    assert "already exists with scope item" in message
    assert error_of("labels", "add", "Processing", "--scope", "item")


def test_remove_user_label():
    cli("labels", "add", "Gift Wrapped", "--scope", "item", "--map", "woocommerce=gift")
    assert "Gift Wrapped" in cli("labels", "remove", "gift wrapped").stdout
    assert "Gift Wrapped" not in [x["name"] for x in cli_json("labels", "list")]
    db = open_db()
    try:
        assert db.one("SELECT COUNT(*) FROM label_maps WHERE label = 'Gift Wrapped'")[0] == 0
    finally:
        db.close()


@pytest.mark.parametrize("name", [n for n, _ in BUILTIN])
def test_builtin_labels_cannot_be_removed(name: str):
    cli("init")
    before = dump()
    assert "built in" in error_of("labels", "remove", name.upper())
    assert dump() == before


def test_unknown_label_cannot_be_removed():
    cli("init")
    assert "Unknown label 'Nope'" in error_of("labels", "remove", "Nope")


def test_label_used_by_an_event_cannot_be_removed():
    cli("labels", "add", "Approved", "--scope", "order")
    cli("events", "set", "order-approved", "--order-label", "Approved")
    before = dump()
    message = error_of("labels", "remove", "Approved")
    assert "in use" in message and "events" in message
    assert dump() == before
    cli("events", "set", "order-approved", "--order-label", "Processing")
    cli("labels", "remove", "Approved")


def test_label_used_by_an_order_or_item_cannot_be_removed():
    setup_shop()
    cli("labels", "add", "Approved", "--scope", "both")
    cli("events", "set", "order-approved", "--order-label", "Approved")
    cli("events", "set", "item-returned", "--item-label", "Approved", "--fire")
    cli("fire", "order-approved", "1002")
    cli("fire", "item-returned", "1001", "--item", "MUG-1")
    # Nothing points the events at it any more; orders and items still wear it.
    cli("events", "defaults", "--yes")
    message = error_of("labels", "remove", "Approved")
    assert "in use by 1 orders" in message
    db = open_db()
    try:
        with db.tx() as conn:
            conn.execute("UPDATE orders SET label = NULL WHERE label = 'Approved'")
    finally:
        db.close()
    assert "in use by 1 items" in error_of("labels", "remove", "Approved")


def test_core_label_rules():
    assert labels.check_name("  Spaced  ") == "Spaced"
    with pytest.raises(InputError):
        labels.check_name("x" * 51)
    assert labels.parse_mapping(" WooCommerce = completed ") == ("woocommerce", "completed")
    with pytest.raises(InputError):
        labels.parse_mapping("etsy=shipped")
    db = open_db()
    try:
        with pytest.raises(NotFound):
            labels.get_label(db, "Nope")
        assert labels.get_label(db, "order shipped").name == "Order Shipped"
        assert labels.get_label(db, "Order Shipped").fits("order")
        assert not labels.get_label(db, "Order Shipped").fits("item")
    finally:
        db.close()


# -- events ------------------------------------------------------------------------------


def test_events_grid_is_exactly_the_design():
    assert grid() == GRID


def test_events_json_shape():
    row = cli_json("events", "list")[0]
    assert set(row) == {"event", "item_label", "order_label", "fires", "notify_cart", "fired_by"}


def test_events_table_shows_the_grid():
    out = cli("events", "list").stdout
    for header in ("event", "item label", "order label", "fires", "notify cart"):
        assert header in out
    line = next(x for x in out.splitlines() if "order-approved" in x)
    assert "Processing" in line and "yes" in line


def test_events_set_every_choice():
    cli("labels", "add", "Paid", "--scope", "order")
    cli("labels", "add", "Held", "--scope", "both")
    out = cli("events", "set", "payment-received", "--order-label", "paid", "--fire", "--notify-cart").stdout
    assert "payment-received" in out
    cli("events", "set", "order-on-hold", "--item-label", "Held", "--order-label", "Held")
    cli("events", "set", "order-approved", "--no-fire", "--no-notify-cart")
    rows = {r[0]: r for r in grid()}
    assert rows["payment-received"] == ("payment-received", None, "Paid", True, True)
    assert rows["order-on-hold"] == ("order-on-hold", "Held", "Held", False, False)
    assert rows["order-approved"] == ("order-approved", None, "Processing", False, False)


def test_events_set_empty_label_clears_it():
    cli("events", "set", "order-cancelled", "--item-label", "")
    rows = {r[0]: r for r in grid()}
    assert rows["order-cancelled"] == ("order-cancelled", None, "Cancelled", True, True)


def test_events_set_dash_clears_a_label_as_setup_does():
    cli("events", "set", "order-cancelled", "--order-label", "-")
    rows = {r[0]: r for r in grid()}
    assert rows["order-cancelled"] == ("order-cancelled", "Item Cancelled", None, True, True)


@pytest.mark.parametrize(
    ("args", "scope"),
    [
        (("order-approved", "--order-label", "Item Shipped"), "item"),
        (("item-shipped", "--item-label", "Order Shipped"), "order"),
        (("order-cancelled", "--item-label", "Cancelled"), "order"),
    ],
)
def test_events_set_refuses_a_label_whose_scope_does_not_fit(args: tuple[str, ...], scope: str):
    cli("init")
    before = dump()
    message = error_of("events", "set", *args)
    assert f"scope {scope}" in message
    assert dump() == before


def test_events_set_unknown_event_or_label():
    cli("init")
    before = dump()
    message = error_of("events", "set", "order-exploded", "--fire")
    assert "order-exploded" in message and "order-imported" in message
    assert "Unknown label" in error_of("events", "set", "order-approved", "--order-label", "Nope")
    assert dump() == before


def test_events_defaults_restores_the_grid():
    cli("events", "set", "order-approved", "--no-fire", "--order-label", "On Hold")
    cli("events", "set", "item-returned", "--fire", "--notify-cart")
    assert grid() != GRID
    assert "Default status events loaded" in cli("events", "defaults", "--yes").stdout
    assert grid() == GRID


def test_events_defaults_asks_first_and_refuses_without_a_terminal():
    cli("events", "set", "order-approved", "--no-fire")
    assert "add --yes" in error_of("events", "defaults")
    assert grid() != GRID
    cli("events", "defaults", "--yes")
    assert grid() == GRID


def test_core_event_set_and_names():
    db = open_db()
    try:
        assert [e.name for e in events.all_events(db)] == [g[0] for g in GRID]
        with pytest.raises(NotFound):
            events.check_event("nope")
        assert events.check_event(" Order-Approved ") == "order-approved"
        with pytest.raises(InputError):
            events.set_event(db, "order-approved", order_label="Backordered")
        e = events.set_event(db, "order-approved", notify=False)
        assert (e.fires, e.notify) == (True, False)
    finally:
        db.close()
