"""POST /api/updates: Standard Webhooks signatures, replays, validation and late older updates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from statusctl.carts.signing import sign
from statusctl.storage.backends import Target

from .conftest import OLD_SECRET, SECRET, Clock, Sender, history_rows, payload


def test_signed_update_is_applied(sender: Sender, oss_db: Target) -> None:
    answer = sender.post(payload())
    assert answer.status_code == 200
    assert answer.json()["status"] == "applied"
    assert history_rows(oss_db) == 1
    order = sender.client.get("/api/orders/1001", params={"postal": "90210"}).json()
    assert order["label"] == "Processing"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_unsigned_request_is_refused(sender: Sender, oss_db: Target, missing: str) -> None:
    body = json.dumps(payload()).encode()
    hdrs = {
        "webhook-id": "rec_1",
        "webhook-timestamp": str(int(sender.clock())),
        "webhook-signature": sign(SECRET, "rec_1", int(sender.clock()), body),
    }
    del hdrs[missing]
    answer = sender.client.post("/api/updates", content=body, headers=hdrs)
    assert answer.status_code == 401
    assert history_rows(oss_db) == 0


@pytest.mark.parametrize("skew", [-301, 301, -3600, 86_400])
def test_stale_or_future_timestamp_is_refused(sender: Sender, skew: int, oss_db: Target) -> None:
    answer = sender.post(payload(), ts=sender.clock() + skew)
    assert answer.status_code == 401
    assert "timestamp" in answer.json()["error"]
    assert history_rows(oss_db) == 0


@pytest.mark.parametrize("skew", [-300, -299, 0, 299, 300])
def test_timestamp_within_five_minutes_is_accepted(sender: Sender, skew: int) -> None:
    assert sender.post(payload(), ts=sender.clock() + skew).status_code == 200


def test_tampered_body_is_refused(sender: Sender, oss_db: Target) -> None:
    body = json.dumps(payload(label="Processing")).encode()
    hdrs = {
        "webhook-id": "rec_1",
        "webhook-timestamp": str(int(sender.clock())),
        "webhook-signature": sign(SECRET, "rec_1", int(sender.clock()), body),
    }
    forged = body.replace(b"Processing", b"Cancelled!")
    assert sender.client.post("/api/updates", content=forged, headers=hdrs).status_code == 401
    # Changing the id or the timestamp breaks the signature too.
    for key, value in (("webhook-id", "rec_2"), ("webhook-timestamp", str(int(sender.clock()) + 1))):
        assert sender.client.post("/api/updates", content=body, headers={**hdrs, key: value}).status_code == 401
    assert history_rows(oss_db) == 0


def test_wrong_secret_is_refused(sender: Sender) -> None:
    other = "whsec_" + "QUJD" * 8
    answer = sender.post(payload(), secret=other)
    assert answer.status_code == 401
    assert answer.json() == {"error": "no webhook-signature matches"}


def test_key_rotation_accepts_any_configured_secret_and_any_listed_signature(sender: Sender) -> None:
    assert sender.post(payload("1"), secret=OLD_SECRET).status_code == 200
    body = json.dumps(payload("2")).encode()
    ts = int(sender.clock())
    good = sign(SECRET, "rec_x", ts, body)
    bad = sign("whsec_" + "QUJD" * 8, "rec_x", ts, body)
    hdrs = {"webhook-id": "rec_x", "webhook-timestamp": str(ts), "webhook-signature": f"{bad} {good}"}
    assert sender.client.post("/api/updates", content=body, headers=hdrs).status_code == 200


def test_repeated_webhook_id_is_done_once(sender: Sender, oss_db: Target) -> None:
    first = sender.post(payload(), msg_id="rec_same")
    again = sender.post(payload(), msg_id="rec_same")
    assert (first.status_code, first.json()["status"]) == (200, "applied")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert history_rows(oss_db) == 1
    # Even a (correctly signed) different body under the same id is not applied twice.
    third = sender.post(payload(label="Cancelled"), msg_id="rec_same")
    assert third.json()["status"] == "duplicate"
    assert sender.client.get("/api/orders/1001?postal=90210").json()["label"] == "Processing"


def _shipped(number: str, changed_at: str, tracking: str) -> dict[str, Any]:
    body = payload(number, label="Partially Shipped", previous="Processing", changed_at=changed_at)
    body["items"][0].update(label="Item Shipped", shipped=2, changed=True)
    body["packages"] = [{"tracking": tracking, "carrier": "UPS", "shipped_at": changed_at,
                         "items": [{"sku": "MUG-1", "cart_line_id": None, "quantity": 2}]}]
    return body


def test_late_older_update_never_overwrites_a_newer_status(sender: Sender, oss_db: Target) -> None:
    newer = payload(label="Order Shipped", previous="Partially Shipped", changed_at="2024-05-01T11:30:00Z")
    newer["items"][0].update(label="Item Shipped", shipped=2)
    newer["items"][1].update(label="Item Shipped", shipped=1, changed=True)
    newer["packages"] = [{"tracking": "9400111899223100000000", "carrier": "USPS",
                          "shipped_at": "2024-05-01T11:30:00Z",
                          "items": [{"sku": "TEE-M", "cart_line_id": None, "quantity": 1}]}]
    assert sender.post(newer).json()["status"] == "applied"
    older = _shipped("1001", "2024-05-01T11:10:00+00:00", "1Z999AA10123456784")
    assert sender.post(older).json()["status"] == "late"

    order = sender.client.get("/api/orders/1001?postal=90210").json()
    assert order["label"] == "Order Shipped"
    assert [i["label"] for i in order["items"]] == ["Item Shipped", "Item Shipped"]
    assert [i["shipped"] for i in order["items"]] == [2, 1]
    # The late one still adds its history row and its package, in changed_at order.
    assert history_rows(oss_db) == 2
    assert [h["at"] for h in order["history"]] == ["2024-05-01T11:30:00+00:00", "2024-05-01T11:10:00+00:00"]
    assert {p["tracking"] for p in order["packages"]} == {"1Z999AA10123456784", "9400111899223100000000"}


def test_newer_update_after_older_one_applies(sender: Sender) -> None:
    sender.post(payload(label="Processing", changed_at="2024-05-01T10:00:00Z"))
    assert sender.post(payload(label="On Hold", changed_at="2024-05-01T10:00:01Z")).json()["status"] == "applied"
    assert sender.client.get("/api/orders/1001?postal=90210").json()["label"] == "On Hold"


def test_same_package_sent_again_is_one_package(sender: Sender) -> None:
    sender.post(_shipped("1001", "2024-05-01T11:00:00Z", "1Z999AA10123456784"))
    sender.post(_shipped("1001", "2024-05-01T11:05:00Z", "1Z999AA10123456784"))
    assert len(sender.client.get("/api/orders/1001?postal=90210").json()["packages"]) == 1


def test_same_number_in_two_stores_are_two_orders(sender: Sender) -> None:
    sender.post(payload("1001", store="shop-a", label="Processing", postal="10001"))
    sender.post(payload("1001", store="shop-b", label="On Hold", postal="94105"))
    assert sender.client.get("/api/orders/1001?postal=10001").json()["label"] == "Processing"
    assert sender.client.get("/api/orders/1001?postal=94105").json()["store"] == "shop-b"


def _break(path: str, value: Any) -> dict[str, Any]:
    body = payload()
    target: Any = body
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("type", "order.deleted", "type must be"),
        ("changed_at", "yesterday", "changed_at is not an ISO 8601"),
        ("changed_at", "2024-05-01T11:00:00", "no time zone"),
        ("changed_at", KeyError, "changed_at must be a string"),
        ("store", "", "store must not be empty"),
        ("order", "1001", "order must be an object"),
        ("order.number", 1001, "order.number must be a string"),
        ("order.number", "  ", "order.number must not be empty"),
        ("items", None, "items must be a list"),
        ("items.0.quantity", -1, "items[0].quantity must be a whole number"),
        ("items.0.quantity", True, "items[0].quantity must be a whole number"),
        ("items.0.shipped", 3, "items[0].shipped (3) is more than its quantity"),
        ("items.1.cancelled", "no", "items[1].cancelled must be true or false"),
        ("note", ["x"], "note must be a string"),
        ("events", "order-approved", "events must be a list"),
        ("packages", [{"tracking": "1Z", "shipped_at": "soon"}], "packages[0].shipped_at"),
        ("order.date", "2024-04-30\x00", "order.date must not contain NUL characters"),
        ("order.label", "Shipped\x00", "order.label must not contain NUL characters"),
        ("note", "\x00", "note must not contain NUL characters"),
    ],
)
def test_invalid_body_is_422_with_a_reason(
    sender: Sender, oss_db: Target, path: str, value: Any, reason: str
) -> None:
    answer = sender.post(_break(path, value))
    assert answer.status_code == 422
    assert reason in answer.json()["error"]
    assert history_rows(oss_db) == 0


def test_body_that_is_not_json_is_422(sender: Sender) -> None:
    answer = sender.post(b"{not json")
    assert (answer.status_code, answer.json()["error"]) == (422, "the body is not valid JSON")


def test_oversized_body_is_refused_before_anything_else(sender: Sender) -> None:
    answer = sender.post(b"x" * ((1 << 20) + 1))
    assert answer.status_code == 413


def test_signature_is_checked_before_the_body(sender: Sender, clock: Clock) -> None:
    answer = sender.client.post("/api/updates", content=b"{not json", headers={"webhook-id": "x"})
    assert answer.status_code == 401
