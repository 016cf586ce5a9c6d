"""BigCommerce specifics over real HTTP against the stateful fake (shipments, status_id, rate limits)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from statusctl.carts.base import Context, Rejected, TryLater

from ..docs import documented
from ..helpers import cli
from .contract import shipped_payload
from .fake_bigcommerce import TOKEN, BigFake, bc_error, make_store, secrets
from .fakeserver import Answer, FakeServer
from .restkit import check, deliver, item_change, local_copy, mappings, order_change

ORDER = 501
SHIPMENTS = rf"/orders/{ORDER}/shipments"


@pytest.fixture
def fake() -> BigFake:
    return BigFake()


@pytest.fixture
def server(fake: BigFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as srv:
        yield srv


def send(server: FakeServer, payload: Any, **kwargs: Any) -> Context:
    return deliver(make_store(server.base_url), secrets(), payload, **kwargs)


def test_shipped_order_creates_a_shipment_then_sets_status_id_only(server: FakeServer, fake: BigFake) -> None:
    send(server, shipped_payload(), uid="rec-7")
    [body] = fake.calls("POST", SHIPMENTS)
    assert body == {
        "order_address_id": 7, "tracking_number": "1Z999AA10123456784", "shipping_provider": "",
        "tracking_carrier": "ups", "shipping_method": "UPS", "comments": "Shipped with UPS",
        "items": [{"order_product_id": 9001, "quantity": 2}, {"order_product_id": 9002, "quantity": 1}],
    }
    assert fake.calls("PUT", rf"/orders/{ORDER}") == [{"status_id": 2}]
    assert fake.orders[ORDER]["discount_amount"] == "5.0000"  # untouched: no products in the PUT
    paths = [(r.method, r.path.split("/v2")[1]) for r in server.requests]
    assert paths == [("GET", SHIPMENTS), ("GET", f"/orders/{ORDER}/shipping_addresses"),
                     ("POST", SHIPMENTS), ("PUT", f"/orders/{ORDER}")]


def test_headers(server: FakeServer) -> None:
    send(server, shipped_payload(), uid="rec-7")
    for r in server.requests:
        assert r.headers["x-auth-token"] == TOKEN
        assert r.headers["accept"] == "application/json"
        assert r.path.startswith("/stores/abc123/v2/")
    writes = {r.method: r.headers for r in server.requests if r.method != "GET"}
    assert writes["POST"]["content-type"] == "application/json"
    assert writes["POST"]["idempotency-key"] == "rec-7.shipment.0"
    assert writes["PUT"]["idempotency-key"] == "rec-7.status"


def test_resend_creates_no_second_shipment(server: FakeServer, fake: BigFake) -> None:
    send(server, shipped_payload())
    send(server, shipped_payload())
    assert len(fake.shipments[ORDER]) == 1
    assert len(fake.calls("POST", SHIPMENTS)) == 1


def test_resend_of_an_untracked_package_creates_no_second_shipment(server: FakeServer, fake: BigFake) -> None:
    payload = shipped_payload()
    payload["packages"][0]["tracking"] = None
    payload["packages"][0]["items"][1]["quantity"] = 0  # only the mugs: the T-shirt is still to ship
    queued = time.time()
    send(server, payload, queued=queued)
    send(server, payload, queued=queued)
    assert len(fake.shipments[ORDER]) == 1
    assert fake.orders[ORDER]["status_id"] == 2  # our PUT; BigCommerce itself said Partially Shipped


def test_an_untracked_shipment_of_other_items_does_not_hide_ours(server: FakeServer, fake: BigFake) -> None:
    tee_only = shipped_payload()
    package = tee_only["packages"][0]
    package["tracking"], package["items"] = None, package["items"][1:]
    send(server, tee_only, uid="rec-1")
    mugs = shipped_payload()
    package = mugs["packages"][0]
    package["tracking"], package["items"] = None, package["items"][:1]
    send(server, mugs, uid="rec-2")
    assert [s["items"][0]["order_product_id"] for s in fake.shipments[ORDER]] == [9002, 9001]


def test_second_package_after_a_failure_is_created_once_and_the_note_is_not_repeated(
        server: FakeServer, fake: BigFake) -> None:
    payload = shipped_payload()
    first, second = payload["packages"][0]["items"]
    payload["packages"] = [
        {"tracking": "TRACK-A", "carrier": "USPS", "shipped_at": "2026-11-21T10:00:00Z", "items": [first]},
        {"tracking": "TRACK-B", "carrier": "FedEx", "shipped_at": "2026-11-21T10:00:00Z", "items": [second]},
    ]
    fake.fail_on("POST", SHIPMENTS, Answer(502, "bad gateway"), after=1)  # shipment A lands, B fails
    with pytest.raises(TryLater):
        send(server, payload)
    send(server, payload)
    assert [s["tracking_number"] for s in fake.shipments[ORDER]] == ["TRACK-A", "TRACK-B"]
    assert [s["tracking_carrier"] for s in fake.shipments[ORDER]] == ["usps", "fedex"]
    assert [s["comments"] for s in fake.shipments[ORDER]] == ["Shipped with UPS", ""]


def test_tracking_longer_than_50_is_rejected_before_anything_is_sent(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        send(server, shipped_payload(tracking="X" * 51))
    assert "51 characters" in err.value.reason and "at most 50" in err.value.reason
    assert server.requests == []


def test_429_is_transient_after_the_reset_and_holds_the_store(server: FakeServer, fake: BigFake) -> None:
    fake.run_out(reset_ms=2500)
    ctx = Context(make_store(server.base_url), secrets(), mappings())
    with pytest.raises(TryLater) as err:
        send(server, shipped_payload(), ctx=ctx)
    assert err.value.status == 429
    assert 2.0 <= (err.value.retry_after or 0) <= 2.5
    assert ctx.hold_until > time.monotonic() + 1.5
    assert "exceeded your request quota" in err.value.reason


def test_no_requests_left_pauses_the_store_without_sending_more(server: FakeServer, fake: BigFake) -> None:
    fake.quota, fake.window_ms = 2, 60000
    fake.reset_at = time.monotonic() + 60
    ctx = Context(make_store(server.base_url), secrets(), mappings())
    with pytest.raises(TryLater) as err:
        send(server, shipped_payload(), ctx=ctx)
    assert len(server.requests) == 2  # the second answer said 0 left: the third was never sent
    assert 55 <= (err.value.retry_after or 0) <= 60
    fake.quota = 150
    fake.refill()
    send(server, shipped_payload())
    assert len(fake.shipments[ORDER]) == 1


def test_a_short_pause_is_waited_out_within_the_record(server: FakeServer, fake: BigFake) -> None:
    fake.quota, fake.window_ms = 2, 300
    fake.reset_at = time.monotonic() + 0.3
    started = time.monotonic()
    send(server, shipped_payload())
    assert len(fake.shipments[ORDER]) == 1
    assert time.monotonic() - started >= 0.1


def test_line_ids_missing_are_found_by_sku(server: FakeServer, fake: BigFake) -> None:
    payload = shipped_payload()
    for item in payload["packages"][0]["items"]:
        item["cart_line_id"] = None
    send(server, payload)
    assert fake.calls("POST", SHIPMENTS)[0]["items"] == [{"order_product_id": 9001, "quantity": 2},
                                                         {"order_product_id": 9002, "quantity": 1}]
    assert fake.calls("GET", rf"/orders/{ORDER}/products")


def test_several_addresses_take_each_package_to_its_items_address() -> None:
    fake = BigFake(addresses=2)
    with FakeServer(fake) as server:
        with pytest.raises(Rejected) as err:
            send(server, shipped_payload())
        assert "2 shipping addresses" in err.value.reason
        payload = shipped_payload()
        mug, tee = payload["packages"][0]["items"]
        payload["packages"] = [
            {"tracking": "A1", "carrier": "UPS", "shipped_at": "2026-11-21T10:00:00Z", "items": [mug]},
            {"tracking": "B2", "carrier": "UPS", "shipped_at": "2026-11-21T10:00:00Z", "items": [tee]},
        ]
        send(server, payload)
    assert [s["order_address_id"] for s in fake.shipments[ORDER]] == [7, 8]


@pytest.mark.parametrize(("label", "status_id"), [("Processing", 11), ("Partially Shipped", 3),
                                                  ("Order Shipped", 2), ("Cancelled", 5)])
def test_default_label_mappings(server: FakeServer, fake: BigFake, label: str, status_id: int) -> None:
    send(server, order_change(label))
    assert fake.calls("PUT", rf"/orders/{ORDER}") == [{"status_id": status_id}]


def test_missing_mapping_is_rejected_naming_label_and_cart(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        send(server, order_change("On Hold"))
    assert "'On Hold'" in err.value.reason and "bigcommerce" in err.value.reason
    assert server.requests == []


def test_an_order_label_mapped_to_shipment_sets_no_status(server: FakeServer, fake: BigFake) -> None:
    send(server, shipped_payload(), maps=mappings(**{"Order Shipped": {"bigcommerce": "shipment"}}))
    assert fake.calls("PUT", rf"/orders/{ORDER}") == []
    assert fake.orders[ORDER]["status_id"] == 2  # BigCommerce's own, from the shipment


def test_a_mapping_that_is_no_status_id_is_rejected(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        send(server, order_change("Cancelled"), maps=mappings(Cancelled={"bigcommerce": "cancelled"}))
    assert "status_id number" in err.value.reason


@pytest.mark.parametrize("value", ["99", "15", "²", "-1"])
def test_a_status_id_outside_0_to_14_is_rejected_before_any_request(server: FakeServer, value: str) -> None:
    # The rule labels add applies when the mapping is saved (core/mapvalues), read again at send time.
    with pytest.raises(Rejected) as err:
        send(server, order_change("Cancelled"), maps=mappings(Cancelled={"bigcommerce": value}))
    assert "status_id number from 0 to 14" in err.value.reason and "'Cancelled'" in err.value.reason
    assert server.requests == []


def test_error_array_messages_are_in_the_reason(server: FakeServer, fake: BigFake) -> None:
    fake.fail_on("PUT", rf"/orders/{ORDER}", bc_error(400, "The field 'status_id' is invalid."))
    with pytest.raises(Rejected) as err:
        send(server, order_change("Cancelled"), maps=mappings(Cancelled={"bigcommerce": "5"}))
    assert err.value.status == 400
    assert "The field 'status_id' is invalid." in err.value.reason


def test_item_labels_other_than_shipments_send_nothing(server: FakeServer) -> None:
    send(server, item_change("Backordered", note="soon"))
    assert server.requests == []


def test_bad_token_is_permanent(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        deliver(make_store(server.base_url, good=False), secrets(False), order_change("Processing"))
    assert "credentials refused" in err.value.reason and "X-Auth-Token" in err.value.reason


def test_check_counts_orders(server: FakeServer) -> None:
    assert check(make_store(server.base_url), secrets()) == "BigCommerce v2: 1 order visible"
    with pytest.raises(Rejected):
        check(make_store(server.base_url, good=False), secrets(False))


def test_the_documented_store_lines_work(server: FakeServer) -> None:
    add, test = documented("bigcommerce")
    env = {"BC_TOKEN": TOKEN}
    cli(*add, env=env)
    assert test == ["stores", "test", add[2]]
    cli(*local_copy(add, f"{server.base_url}/stores/abc123"), env=env)
    assert cli("stores", "test", "local", env=env).stdout.strip() == "OK: BigCommerce v2: 1 order visible"


@pytest.mark.parametrize("line", ["²", "x1"])
def test_a_cart_line_id_that_is_no_ascii_number_is_rejected_not_a_traceback(line: str) -> None:
    from statusctl.carts.bigcommerce import _product_id

    item = shipped_payload()["packages"][0]["items"][0]
    item["cart_line_id"] = line
    with pytest.raises(Rejected, match="order product ids are numbers"):
        _product_id("501", item, [])
