"""The rules' storage on PostgreSQL: labels, events, stores, settings, orders and the change engine
run the same statements there, ids come from the database, and two producers changing one order
at once do not lose an update (the order's row is locked before its state is read)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from statusctl.core import actions, events, labels, listing, orders, settings, stores
from statusctl.core.changes import ChangeSession
from statusctl.core.dashboard import snapshot
from statusctl.core.init import ensure_initialized, initialize
from statusctl.storage.postgres import PostgresDatabase

from ..helpers import WEBHOOK_SECRET

ORDERS = """order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity
P1,2026-11-20,Ann,ann@example.com,02139,SKU-1,One,1
P1,2026-11-20,Ann,ann@example.com,02139,SKU-2,Two,2
P2,2026-11-21,Bob,bob@example.com,10115,SKU-1,One,3
"""


@pytest.fixture(scope="module")
def pg(pg_url: str, tmp_path_factory: pytest.TempPathFactory):
    """One PostgreSQL database for the module: initialised, updates on, two orders of a store whose cart
    takes no updates (no OSS is set, so nothing is queued: the stack's statements are another suite's)."""
    db = PostgresDatabase.open(pg_url, create=True)
    ensure_initialized(db)
    initialize(db)  # twice: idempotent (ON CONFLICT ... DO NOTHING where SQLite said OR IGNORE)
    settings.set_value(db, "UseStatusUpdates", "true")
    stores.add_store(db, "web", "webhook", "http://127.0.0.1:9/hook", [f"secret={WEBHOOK_SECRET}"], [], [])
    stores.add_store(db, "counter", "none", "https://counter.invalid", [], [], [])
    path = tmp_path_factory.mktemp("pg-orders") / "orders.csv"
    path.write_text(ORDERS, encoding="utf-8")
    summary = orders.import_orders(db, path, "counter")
    assert summary.imported == ["P1", "P2"] and summary.items == 3
    yield db, pg_url
    db.close()


def test_labels_events_settings_and_stores_read_back(pg):
    db, _ = pg
    names = [label.name for label in labels.all_labels(db)]
    assert names[0] == "Order Received" and len(names) == 12
    labels.add_label(db, "Gift Wrapped", "item", ["woocommerce=gift"])
    labels.add_label(db, "gift wrapped", None, ["seti=Gift"])  # the name compares without case
    assert labels.get_label(db, "GIFT WRAPPED").mappings == {"seti": "Gift", "woocommerce": "gift"}
    assert labels.all_labels(db)[-1].name == "Gift Wrapped"  # user labels after the built-ins
    events.set_event(db, "item-returned", item_label="gift wrapped", fires=True)
    assert events.get_event(db, "item-returned").item_label == "Gift Wrapped"
    events.restore_defaults(db)
    assert events.get_event(db, "item-returned").item_label == "Item Returned"
    assert labels.remove_label(db, "Gift Wrapped") == "Gift Wrapped"
    assert settings.get_raw(db, "stackmaxattempts") == "8"
    assert settings.stack_settings(db).max_attempts == 8
    assert [s.name for s in stores.all_stores(db)] == ["counter", "web"]
    assert stores.set_oss(db, "web") == "web" and stores.oss_store(db) == "web"
    assert stores.set_oss(db, None) is None and stores.oss_store(db) is None


def test_user_labels_list_in_the_order_they_were_added_when_space_is_reused(pg):
    """0006: the labels' rowid, not a row's physical place (a removed label's space, vacuumed, is reused)."""
    import psycopg

    db, url = pg
    for name in ("Zulu Hold", "Alpha Hold", "Mike Hold"):
        labels.add_label(db, name, "order", [])
    labels.remove_label(db, "Zulu Hold")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM labels")
    labels.add_label(db, "Bravo Hold", "order", [])
    try:
        assert [label.name for label in labels.all_labels(db) if not label.builtin] == [
            "Alpha Hold", "Mike Hold", "Bravo Hold"]
    finally:
        for name in ("Alpha Hold", "Mike Hold", "Bravo Hold"):
            labels.remove_label(db, name)


def test_packages_get_the_databases_ids_in_the_order_they_were_made(pg, tmp_path: Path):
    db, _ = pg
    rows = tmp_path / "apply.csv"
    rows.write_text("action,order,sku,quantity,tracking\n"
                    "ship,P2,SKU-1,1,T-A\nship,P2,SKU-1,1,T-B\nship,P2,SKU-1,1,T-A\n", encoding="utf-8")
    summary = actions.apply_file(db, rows)
    assert (summary.records, summary.internal_only, summary.labels_changed) == (0, 1, 3)
    shown = orders.show_order(db, "P2")
    # Two new packages of one order in one flush: the second one's id is the larger one, and the
    # third row added to the first package (ON CONFLICT ... quantity + excluded.quantity).
    assert [(p["tracking"], p["items"]) for p in shown["packages"]] == [
        ("T-A", [{"sku": "SKU-1", "quantity": 2}]), ("T-B", [{"sku": "SKU-1", "quantity": 1}])]
    assert shown["label"] == "Order Shipped" and shown["stack"] == []
    assert [h["to"] for h in shown["history"]] == ["Order Received", "Partially Shipped", "Item Shipped",
                                                  "Order Shipped"]


def test_listings_and_stack_top_read_on_postgresql(pg):
    db, _ = pg
    rows, total = listing.orders_page(db, limit=1)
    assert [r["number"] for r in rows] == ["P1"] and total == 2
    rows, total = listing.orders_page(db, limit=0)
    assert [r["number"] for r in rows] == ["P1", "P2"] and total is None
    assert [r["number"] for r in listing.orders_page(db, store="counter", label="order shipped")[0]] == ["P2"]
    snap = snapshot(db, now=time.time())
    assert snap.rate.total_sent == 0 and snap.errors == []


def test_two_producers_shipping_one_order_at_once_lose_no_update(pg):
    """A ships SKU-1 of P1 and holds its transaction open; B ships SKU-2 meanwhile. Without the row
    lock B would read P1 as A left it before committing and call it partially shipped."""
    db, url = pg
    other = PostgresDatabase.open(url)
    done: list[object] = []
    try:
        with db.tx() as conn:
            session = ChangeSession(conn)
            session.ship("P1", [("SKU-1", None)])
            session.flush()
            worker = threading.Thread(target=lambda: done.append(actions.ship(other, "P1", ["SKU-2"], None, None)))
            worker.start()
            time.sleep(0.5)
            assert not done, "B must wait for A's lock on the order row"
        worker.join(10)
    finally:
        other.close()
    assert done and "order: Partially Shipped → Order Shipped" in done[0].changes  # type: ignore[attr-defined]
    shown = orders.show_order(db, "P1")
    assert shown["label"] == "Order Shipped"
    assert [i["shipped"] for i in shown["items"]] == [1, 2]
