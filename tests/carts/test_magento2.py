"""Magento 2 specifics over real HTTP against the stateful fake (ship, cancel, hold, comments)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from statusctl.carts.base import Context, Rejected, TryLater
from statusctl.carts.magento2 import render

from ..docs import documented
from ..helpers import cli
from .contract import shipped_payload
from .fake_magento2 import TOKEN, MagentoFake, make_store, secrets
from .fakeserver import Answer, FakeServer
from .restkit import check, deliver, item_change, local_copy, mappings, order_change

ORDER = 501
SHIP = rf"/order/{ORDER}/ship"
COMMENTS = rf"/orders/{ORDER}/comments"


@pytest.fixture
def fake() -> MagentoFake:
    return MagentoFake()


@pytest.fixture
def server(fake: MagentoFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as srv:
        yield srv


def send(server: FakeServer, payload: Any, **kwargs: Any) -> Context:
    return deliver(make_store(server.base_url), secrets(), payload, **kwargs)


def test_shipped_order_ships_its_package_with_tracking_and_note(server: FakeServer, fake: MagentoFake) -> None:
    send(server, shipped_payload(), uid="rec-9")
    assert fake.calls("POST", SHIP) == [{
        "items": [{"order_item_id": 9001, "qty": 2}, {"order_item_id": 9002, "qty": 1}],
        "notify": True,
        "tracks": [{"track_number": "1Z999AA10123456784", "title": "UPS", "carrier_code": "ups"}],
        "appendComment": True,
        "comment": {"comment": "Shipped with UPS", "is_visible_on_front": 1},
    }]
    assert fake.orders[ORDER]["state"] == "complete"
    assert fake.calls("POST", COMMENTS) == []  # the note went with the shipment; the items are shipped
    search = next(r for r in server.requests if r.path.endswith("/shipments"))
    prefix = "searchCriteria[filter_groups][0][filters][0]"
    assert search.query[f"{prefix}[field]"] == ["order_id"] and search.query[f"{prefix}[value]"] == ["501"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    assert all(r.path.startswith("/rest/default/V1/") for r in server.requests)
    ship = next(r for r in server.requests if r.method == "POST")
    assert ship.headers["idempotency-key"] == "rec-9.ship.0"


def test_resend_adds_no_second_shipment_or_track(server: FakeServer, fake: MagentoFake) -> None:
    send(server, shipped_payload())
    send(server, shipped_payload())
    assert len(fake.shipments) == 1
    assert len(fake.calls("POST", SHIP)) == 1


def test_does_not_allow_a_shipment_counts_as_done_when_our_tracking_is_there(
        server: FakeServer, fake: MagentoFake) -> None:
    send(server, shipped_payload())  # shipped, but suppose our first search did not show it yet
    fake.stale_searches = 1
    send(server, shipped_payload())
    assert len(fake.shipments) == 1
    assert len(fake.calls("POST", SHIP)) == 2  # refused the second time: already fully shipped


def test_does_not_allow_a_shipment_fails_when_our_tracking_is_not_there(
        server: FakeServer, fake: MagentoFake) -> None:
    send(server, shipped_payload(tracking="SHIPPED-IN-ADMIN"))  # the whole order went out another way
    with pytest.raises(Rejected) as err:
        send(server, shipped_payload(), uid="rec-2")
    assert err.value.status == 400
    assert "does not allow a shipment to be created" in err.value.reason
    assert "1Z999AA10123456784" in err.value.reason


def test_a_later_package_after_a_failure_ships_once_without_the_note_again(
        server: FakeServer, fake: MagentoFake) -> None:
    payload = shipped_payload()
    mug, tee = payload["packages"][0]["items"]
    payload["packages"] = [
        {"tracking": "TRACK-A", "carrier": "FedEx", "shipped_at": "2026-11-21T10:00:00Z", "items": [mug]},
        {"tracking": "TRACK-B", "carrier": "Pigeon Post", "shipped_at": "2026-11-21T10:00:00Z", "items": [tee]},
    ]
    fake.fail_on("POST", SHIP, Answer(503, {"message": "busy"}), after=1)
    with pytest.raises(TryLater):
        send(server, payload)
    send(server, payload)
    assert [[t["track_number"] for t in s["tracks"]] for s in fake.shipments] == [["TRACK-A"], ["TRACK-B"]]
    assert [s["tracks"][0]["carrier_code"] for s in fake.shipments] == ["fedex", "custom"]
    assert [len(s["comments"]) for s in fake.shipments] == [1, 0]


def test_ship_without_packages_ships_what_is_not_shipped_yet(server: FakeServer, fake: MagentoFake) -> None:
    payload = order_change("Order Shipped")
    for item in payload["items"]:
        item["shipped"] = item["quantity"]
    queued = time.time()
    send(server, payload, queued=queued)
    assert fake.calls("POST", SHIP)[0]["items"] == [{"order_item_id": 9001, "qty": 2}, {"order_item_id": 9002, "qty": 1}]
    send(server, payload, queued=queued)
    assert len(fake.calls("POST", SHIP)) == 1
    assert fake.orders[ORDER]["state"] == "complete"


def test_cancel_once(server: FakeServer, fake: MagentoFake) -> None:
    send(server, order_change("Cancelled"))
    send(server, order_change("Cancelled"))
    assert fake.orders[ORDER]["state"] == "canceled"
    assert len(fake.calls("POST", rf"/orders/{ORDER}/cancel")) == 1


def test_a_cancel_magento_ignores_is_a_failure(server: FakeServer, fake: MagentoFake) -> None:
    send(server, shipped_payload())
    with pytest.raises(Rejected) as err:
        send(server, order_change("Cancelled"))
    assert "did not cancel" in err.value.reason and "complete" in err.value.reason


def test_hold_then_processing_unholds_and_comments(server: FakeServer, fake: MagentoFake) -> None:
    send(server, order_change("On Hold"))
    assert fake.orders[ORDER]["state"] == "holded"
    send(server, order_change("On Hold"))
    assert len(fake.calls("POST", rf"/orders/{ORDER}/hold")) == 1
    send(server, order_change("Processing", previous="On Hold"))
    assert fake.orders[ORDER]["state"] == "processing"
    [comment] = fake.calls("POST", COMMENTS)
    assert comment == {"statusHistory": {"comment": "Processing", "is_customer_notified": 1,
                                         "is_visible_on_front": 1, "parent_id": 501, "status": "processing"}}


def test_a_hold_made_in_the_admin_is_left_alone(server: FakeServer, fake: MagentoFake) -> None:
    fake.hold(None, None, str(ORDER))  # type: ignore[arg-type]
    send(server, order_change("Processing", previous="Order Received"))
    assert fake.orders[ORDER]["state"] == "holded"
    assert fake.calls("POST", rf"/orders/{ORDER}/unhold") == []
    assert fake.orders[ORDER]["status"] == "holded"  # the comment kept the order's status


def test_comment_is_not_repeated_and_can_set_a_status(server: FakeServer, fake: MagentoFake) -> None:
    queued = time.time()
    send(server, order_change("Processing", note="Packing now"), queued=queued)
    send(server, order_change("Processing", note="Packing now"), queued=queued)
    assert [h["comment"] for h in fake.orders[ORDER]["status_histories"]] == ["Processing\nPacking now"]
    send(server, order_change("Fraud Check"), maps=mappings(**{"Fraud Check": {"magento2": "comment:fraud"}}))
    assert fake.orders[ORDER]["status"] == "fraud"


def test_a_status_of_another_state_is_refused_with_the_parameters_filled_in(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        send(server, order_change("Done"), maps=mappings(Done={"magento2": "comment:complete"}))
    assert 'Unable to add comment: The status "complete" is not part of the order status history.' in err.value.reason


def test_item_labels_other_than_shipped_become_a_comment(server: FakeServer, fake: MagentoFake) -> None:
    send(server, item_change("Backordered"))
    assert fake.orders[ORDER]["status_histories"][0]["comment"] == "Mug (MUG-1): Backordered"
    assert fake.calls("POST", SHIP) == []


def test_missing_or_unknown_mapping_is_rejected_before_anything_is_sent(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        send(server, order_change("Awaiting Parts"))
    assert "'Awaiting Parts'" in err.value.reason and "magento2" in err.value.reason
    with pytest.raises(Rejected) as err:
        send(server, order_change("Order Shipped"), maps=mappings(**{"Order Shipped": {"magento2": "complete"}}))
    assert "takes one of ship, cancel, hold, unhold, comment" in err.value.reason
    assert server.requests == []


def test_without_cart_order_id_the_order_is_found_by_its_number(server: FakeServer, fake: MagentoFake) -> None:
    payload = shipped_payload()
    payload["order"]["cart_order_id"] = None
    send(server, payload)
    assert server.requests[0].query["searchCriteria[filter_groups][0][filters][0][field]"] == ["increment_id"]
    assert len(fake.shipments) == 1
    payload["order"]["number"] = "9999"
    with pytest.raises(Rejected) as err:
        send(server, payload)
    assert "0 orders numbered '9999'" in err.value.reason


def test_store_code_option_is_in_the_path() -> None:
    fake = MagentoFake(store_code="web2")
    with FakeServer(fake) as server:
        deliver(make_store(server.base_url, store_code="web2"), secrets(), order_change("Cancelled"))
        assert server.requests[0].path.startswith("/rest/web2/V1/")
    assert fake.orders[ORDER]["state"] == "canceled"


def test_unauthorised_reason_has_named_parameters_filled_in(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        deliver(make_store(server.base_url, good=False), secrets(False), order_change("Cancelled"))
    assert "The consumer isn't authorized to access Magento_Sales::sales." in err.value.reason


def test_render() -> None:
    assert render("%1 of %2 (%1)", ["a", 2]) == "a of 2 (a)"
    assert render('"%fieldName" is required', {"fieldName": "sku"}) == '"sku" is required'
    assert render("100% sure %9", ["x"]) == "100% sure %9"
    assert render("no parameters %1", None) == "no parameters %1"


def test_check_lists_one_order(server: FakeServer) -> None:
    assert check(make_store(server.base_url), secrets()) == "Magento REST V1 (default): 1 order visible"
    assert server.requests[0].query["searchCriteria[pageSize]"] == ["1"]
    with pytest.raises(Rejected):
        check(make_store(server.base_url, good=False), secrets(False))


def test_the_documented_store_lines_work(server: FakeServer) -> None:
    add, test = documented("magento2")
    env = {"MAGENTO_TOKEN": TOKEN}
    cli(*add, env=env)
    assert test == ["stores", "test", add[2]]
    cli(*local_copy(add, server.base_url), env=env)
    assert cli("stores", "test", "local", env=env).stdout.strip() == "OK: Magento REST V1 (default): 1 order visible"


@pytest.mark.parametrize("value", ["comment:any text at all", "comment:", "hold:pending"])
def test_a_mapping_labels_add_would_refuse_is_rejected_at_send_time_before_any_request(
        server: FakeServer, value: str) -> None:
    from statusctl.domain.mapvalues import validate_mapping

    assert validate_mapping("magento2", value) is not None  # refused when saved, by the same rule
    with pytest.raises(Rejected) as err:
        send(server, order_change("Done"), maps=mappings(Done={"magento2": value}))
    assert "comment:<status code>" in err.value.reason and "'Done'" in err.value.reason
    assert server.requests == []
