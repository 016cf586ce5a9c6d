"""WooCommerce specifics over real HTTP against the stateful fake."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest

from statusctl.carts.base import Context, Rejected, TryLater
from statusctl.domain.record import Payload

from ..docs import documented
from ..helpers import cli
from .contract import shipped_payload
from .fake_woocommerce import KEY, ORDER_ID, SECRET, WooFake, make_store, secrets
from .fakeserver import Answer, FakeServer
from .restkit import check, deliver, item_change, local_copy, mappings, order_change

NOTES = rf"/wc/v3/orders/{ORDER_ID}/notes"
TRACKINGS = rf"/wc-shipment-tracking/v3/orders/{ORDER_ID}/shipment-trackings"


@pytest.fixture
def fake() -> WooFake:
    return WooFake()


@pytest.fixture
def server(fake: WooFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as srv:
        yield srv


def send(server: FakeServer, payload: Payload, *, options: dict[str, str] | None = None, **kwargs: Any) -> Context:
    return deliver(make_store(server.base_url, True, **(options or {})), secrets(), payload, **kwargs)


def test_shipped_order_sets_status_and_adds_one_customer_note(server: FakeServer, fake: WooFake) -> None:
    send(server, shipped_payload())
    assert fake.orders[ORDER_ID]["status"] == "completed"
    assert fake.calls("PUT", rf"/wc/v3/orders/{ORDER_ID}") == [{"status": "completed"}]
    [note] = fake.notes[ORDER_ID]
    assert note["customer_note"] is True
    assert note["note"].splitlines() == [
        "Shipped with UPS",
        "Mug (MUG-1): Item Shipped",
        "T-shirt L (TEE-L): Item Shipped",
        "Tracking (UPS): 1Z999AA10123456784",
    ]
    methods = [(r.method, r.path) for r in server.requests]
    assert methods.index(("GET", "/wp-json" + NOTES)) < methods.index(("POST", "/wp-json" + NOTES))
    assert server.requests[-1].method == "PUT"  # the status last, after what its e-mail should show


def test_requests_carry_basic_auth_json_and_idempotency_keys(server: FakeServer) -> None:
    send(server, shipped_payload(), uid="rec-42")
    expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert all(r.headers["authorization"] == expected for r in server.requests)
    writes = [r for r in server.requests if r.method in ("POST", "PUT")]
    assert {r.headers["idempotency-key"] for r in writes} == {"rec-42.note", "rec-42.status"}
    assert all(r.headers["content-type"] == "application/json" for r in writes)


def test_resend_adds_no_second_note(server: FakeServer, fake: WooFake) -> None:
    queued = time.time()
    send(server, shipped_payload(), queued=queued)
    send(server, shipped_payload(), queued=queued)
    assert len(fake.notes[ORDER_ID]) == 1
    assert len(fake.calls("POST", NOTES)) == 1


def test_the_same_note_for_a_later_record_is_sent_again(server: FakeServer, fake: WooFake) -> None:
    send(server, item_change("Backordered"), uid="rec-1")
    send(server, item_change("Backordered"), uid="rec-2", queued=time.time() + 7200)
    assert len(fake.notes[ORDER_ID]) == 2


def test_tracking_goes_to_the_extension_before_the_status(server: FakeServer, fake: WooFake) -> None:
    send(server, shipped_payload(), options={"tracking": "extension"})
    [tracking] = fake.trackings[ORDER_ID]
    assert tracking["tracking_provider"] == "UPS"
    assert fake.calls("POST", TRACKINGS) == [
        {"tracking_provider": "UPS", "tracking_number": "1Z999AA10123456784", "date_shipped": "2026-11-21"}
    ]
    assert "Tracking" not in fake.notes[ORDER_ID][0]["note"]
    paths = [(r.method, r.path) for r in server.requests]
    assert paths.index(("POST", "/wp-json" + TRACKINGS)) < paths.index(("PUT", f"/wp-json/wc/v3/orders/{ORDER_ID}"))


def test_resend_adds_no_second_tracking(server: FakeServer, fake: WooFake) -> None:
    queued = time.time()
    for _ in range(2):
        send(server, shipped_payload(), options={"tracking": "extension"}, queued=queued)
    assert len(fake.trackings[ORDER_ID]) == 1
    assert len(fake.notes[ORDER_ID]) == 1


def test_ast_without_the_top_level_providers_route_works() -> None:
    fake = WooFake(ast=True)
    with FakeServer(fake) as server:
        assert check(make_store(server.base_url, tracking="extension"), secrets()).endswith(
            "Shipment Tracking extension present")
        send(server, shipped_payload(), options={"tracking": "extension"})
        assert [t["tracking_number"] for t in fake.trackings[ORDER_ID]] == ["1Z999AA10123456784"]
        asked = [r.path for r in server.requests if r.path.endswith("/providers")]
        assert asked[-2:] == ["/wp-json/wc-shipment-tracking/v3/shipment-trackings/providers",  # 404 rest_no_route
                              f"/wp-json/wc-shipment-tracking/v3/orders/{ORDER_ID}/shipment-trackings/providers"]


def test_a_carrier_the_extension_does_not_know_goes_into_the_note(server: FakeServer, fake: WooFake) -> None:
    payload = shipped_payload()
    payload["packages"][0]["carrier"] = "Pigeon Post"
    send(server, payload, options={"tracking": "extension"})
    assert fake.trackings[ORDER_ID] == []
    assert "Tracking (Pigeon Post): 1Z999AA10123456784" in fake.notes[ORDER_ID][0]["note"]


def test_extension_missing_is_permanent_and_check_says_so() -> None:
    with FakeServer(WooFake(extension=False)) as server:
        with pytest.raises(Rejected) as err:
            send(server, shipped_payload(), options={"tracking": "extension"})
        assert "rest_no_route" in err.value.reason
        with pytest.raises(Rejected) as err:
            check(make_store(server.base_url, tracking="extension"), secrets())
        assert "Shipment Tracking" in err.value.reason


def test_item_label_change_is_a_note_line_without_status_change(server: FakeServer, fake: WooFake) -> None:
    send(server, item_change("Backordered", note="Back in stock next week"))
    assert fake.notes[ORDER_ID][0]["note"] == "Back in stock next week\nMug (MUG-1): Backordered"
    assert fake.calls("PUT", r"/wc/v3/orders/\d+") == []


@pytest.mark.parametrize(("label", "slug"), [("Processing", "processing"), ("On Hold", "on-hold"),
                                             ("Partially Shipped", "processing"), ("Cancelled", "cancelled")])
def test_default_label_mappings(server: FakeServer, fake: WooFake, label: str, slug: str) -> None:
    send(server, order_change(label))
    assert fake.orders[ORDER_ID]["status"] == slug
    assert fake.notes[ORDER_ID] == []


def test_missing_mapping_is_rejected_before_anything_is_sent(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        send(server, order_change("Awaiting Parts"))
    assert "'Awaiting Parts'" in err.value.reason and "woocommerce" in err.value.reason
    assert server.requests == []


def test_custom_mapping_is_used(server: FakeServer, fake: WooFake) -> None:
    send(server, order_change("Awaiting Parts"), maps=mappings(**{"Awaiting Parts": {"woocommerce": "on-hold"}}))
    assert fake.orders[ORDER_ID]["status"] == "on-hold"


def test_an_order_label_mapped_to_note_is_a_note_line(server: FakeServer, fake: WooFake) -> None:
    send(server, order_change("Ready", note="Pick up at the desk"), maps=mappings(Ready={"woocommerce": "note"}))
    assert fake.notes[ORDER_ID][0]["note"] == "Ready\nPick up at the desk"
    assert fake.calls("PUT", r"/wc/v3/orders/\d+") == []


def test_order_number_is_the_id_without_cart_order_id(server: FakeServer, fake: WooFake) -> None:
    with pytest.raises(Rejected) as err:
        send(server, order_change("Processing", cart_order_id=None))
    assert server.requests[0].path == "/wp-json/wc/v3/orders/1001"
    assert "woocommerce_rest_shop_order_invalid_id: Invalid ID." in err.value.reason


def test_error_body_code_and_message_are_in_the_reason(server: FakeServer) -> None:
    maps = mappings(**{"Order Shipped": {"woocommerce": "shipped"}})
    with pytest.raises(Rejected) as err:
        send(server, order_change("Order Shipped"), maps=maps)
    assert err.value.status == 400
    assert "rest_invalid_param: Invalid parameter(s): status" in err.value.reason
    assert "status is not one of" in err.value.reason


def test_bad_credentials_are_permanent_with_the_vendor_reason(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        deliver(make_store(server.base_url, good=False), secrets(False), order_change("Processing"))
    assert "credentials refused" in err.value.reason
    assert "woocommerce_rest_authentication_error" in err.value.reason
    assert "cs_wrong" not in err.value.reason + err.value.answer


def test_429_with_retry_after_is_transient_and_holds_the_store(server: FakeServer) -> None:
    server.fail_next(Answer(429, {"code": "too_many", "message": "Slow down"}, {"Retry-After": "20"}))
    with pytest.raises(TryLater) as err:
        send(server, order_change("Processing"))
    assert err.value.retry_after == 20
    assert "too_many: Slow down" in err.value.reason


def test_html_instead_of_json_is_a_wrong_url(server: FakeServer) -> None:
    server.fail_next(Answer(200, b"<html>home page</html>", {"Content-Type": "text/html"}))
    with pytest.raises(Rejected) as err:
        send(server, item_change("Backordered"))
    assert "expected JSON" in err.value.reason and "text/html" in err.value.reason


def test_check_reads_orders(server: FakeServer) -> None:
    assert check(make_store(server.base_url), secrets()) == "WooCommerce REST wc/v3: 1 order visible"
    assert server.requests[0].query["per_page"] == ["1"]
    with pytest.raises(Rejected):
        check(make_store(server.base_url, good=False), secrets(False))


def test_the_documented_store_lines_work(server: FakeServer) -> None:
    add, test = documented("woocommerce")
    env = {"SHOP_KEY": KEY, "SHOP_SECRET": SECRET}
    cli(*add, env=env)
    assert test == ["stores", "test", add[2]]
    cli(*local_copy(add, server.base_url), env=env)
    assert cli("stores", "test", "local", env=env).stdout.strip() == "OK: WooCommerce REST wc/v3: 1 order visible; Shipment Tracking extension present"


@pytest.mark.parametrize("value", ["Completed", "ready for pickup", "x" * 21])
def test_a_mapping_labels_add_would_refuse_is_rejected_before_any_request(server: FakeServer, value: str) -> None:
    with pytest.raises(Rejected) as err:
        send(server, order_change("Order Shipped"), maps=mappings(**{"Order Shipped": {"woocommerce": value}}))
    assert "slug of lower-case letters" in err.value.reason and "'Order Shipped'" in err.value.reason
    assert server.requests == []
