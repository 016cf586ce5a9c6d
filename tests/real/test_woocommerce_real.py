"""statusctl against a real WooCommerce 7.9.0, once with Shipment Tracking 1.6.25 and once with AST 3.9.2.

Each test takes fresh orders the session created with WooCommerce's own
functions, runs the CLI as a user does with `tracking=extension`, and reads
WooCommerce's REST API (order status, customer notes, the plugin's
trackings) and the captured customer e-mails.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ..helpers import cli
from .carts import WooCommerce, WooSite
from .flow import (
    history,
    import_order,
    kill_mid_send,
    records,
    run,
    run_with_database_down,
    start_shop,
    store_test,
)

pytestmark = pytest.mark.real

UPS, USPS = "1Z999AA10123456784", "9400111899223197428490"
TIMEOUT_S, LEASE_S = 10, 12  # a record is up to five requests, each a WordPress start-up


def add_store(site: WooSite, name: str = "woo", *, secret: str | None = None) -> None:
    cli("stores", "add", name, "--cart", "woocommerce", "--url", site.url, "--secret", f"key={site.key}",
        "--secret", f"secret={secret or site.secret}", "--option", "tracking=extension",
        "--option", f"timeout={TIMEOUT_S}")


def new_order(site: WooSite, folder: Path, store: str = "woo") -> tuple[str, int, str]:
    """A processing WooCommerce order (2 mugs), imported into statusctl: (number, order id, e-mail)."""
    oid = site.take_order()
    email_to = site.rest(f"wc/v3/orders/{oid}")["billing"]["email"]
    number = f"WC-{site.name}-{oid}"
    import_order(folder, number, oid, email_to, store, (("MUG-1", 2),))
    return number, oid, email_to


def trackings(site: WooSite, oid: int) -> list[str]:
    return [t["tracking_number"] for t in site.rest(f"wc-shipment-tracking/v3/orders/{oid}/shipment-trackings")]


def customer_notes(site: WooSite, oid: int) -> list[str]:
    return [n["note"] for n in site.rest(f"wc/v3/orders/{oid}/notes", params={"type": "customer"})]


def test_stores_test_finds_the_tracking_plugin(woo: WooSite) -> None:
    start_shop()
    add_store(woo)
    assert store_test("woo", ok=True).endswith("Shipment Tracking extension present")
    top = httpx.get(f"{woo.url}/wp-json/wc-shipment-tracking/v3/shipment-trackings/providers",
                    auth=(woo.key, woo.secret))
    # the reason for issue 10.4: only Shipment Tracking serves the top-level route
    assert (top.status_code, woo.name) in ((200, "shipment-tracking"), (404, "ast"))
    add_store(woo, "wrong", secret="cs_" + "0" * 40)
    out = store_test("wrong", ok=False)
    assert "HTTP 401" in out and "0" * 40 not in out


def test_ship_in_two_packages_then_complete(woo: WooSite, tmp_path: Path) -> None:
    start_shop()
    add_store(woo)
    number, oid, to = new_order(woo, tmp_path)
    mails_before = len(woo.mails(to))
    cli("ship", number, "--item", "MUG-1:1", "--tracking", UPS, "--carrier", "UPS", "--note", "First mug today")
    cli("ship", number, "--tracking", USPS, "--carrier", "USPS")
    run()
    assert records(number) == []
    order = woo.rest(f"wc/v3/orders/{oid}")
    assert order["status"] == "completed"
    assert trackings(woo, oid) == [UPS, USPS]
    notes = customer_notes(woo, oid)
    assert len(notes) == 2 and sum("First mug today" in n for n in notes) == 1
    assert not any(UPS in n or USPS in n for n in notes)  # the plugin has them, not the note
    mails = woo.mails(to)[mails_before:]
    completed = [m for m in mails if "complete" in m.lower()]
    assert len(completed) == 1 and USPS in completed[0] and UPS in completed[0]


def test_cancel(woo: WooSite, tmp_path: Path) -> None:
    start_shop()
    add_store(woo)
    number, oid, _ = new_order(woo, tmp_path)
    cli("cancel", number)
    run()
    assert woo.rest(f"wc/v3/orders/{oid}")["status"] == "cancelled"


def test_killed_mid_send_the_resend_adds_nothing_twice(woo: WooSite, tmp_path: Path) -> None:
    """SIGKILL while WooCommerce holds the status change (tracking and note already in); resent after the lease."""
    start_shop(lease=LEASE_S)
    add_store(woo)
    number, oid, to = new_order(woo, tmp_path)
    mails_before = len(woo.mails(to))
    cli("ship", number, "--tracking", UPS, "--carrier", "UPS", "--note", "All of it")
    kill_mid_send(woo.server, f"PUT /wp-json/wc/v3/orders/{oid}", "go", LEASE_S)
    run()
    assert records(number) == []
    assert woo.rest(f"wc/v3/orders/{oid}")["status"] == "completed"
    assert trackings(woo, oid) == [UPS]
    assert len(customer_notes(woo, oid)) == 1
    mails = woo.mails(to)[mails_before:]
    assert len([m for m in mails if "complete" in m.lower()]) == 1
    [ok] = [h for h in history(number) if h["outcome"] == "ok"]
    assert ok["attempt"] == 1  # the send the kill cut short ended with no outcome: no attempt (issue 11.5)


def test_an_unknown_order_fails_and_a_database_down_waits(woocommerce: WooCommerce, tmp_path: Path) -> None:
    site = woocommerce.sites["shipment-tracking"]
    start_shop()
    cli("config", "set", "StackRetrySchedule", "600")
    add_store(site)
    import_order(tmp_path, "WC-NOPE", 987654, "nobody@example.test", "woo")
    cli("ship", "WC-NOPE", "--tracking", UPS, "--carrier", "UPS")
    run(code=3)
    [missing] = records("WC-NOPE")
    assert missing["state"] == "failed" and missing["last_status"] == 404
    assert "woocommerce_rest_order_invalid_id" in missing["last_error"]
    number, oid, _ = new_order(site, tmp_path)
    cli("ship", number, "--tracking", UPS, "--carrier", "UPS")
    run_with_database_down(woocommerce.db, number)
    run(code=3)  # WC-NOPE stays failed
    assert records(number) == []
    assert site.rest(f"wc/v3/orders/{oid}")["status"] == "completed" and trackings(site, oid) == [UPS]
