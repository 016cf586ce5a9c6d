"""GET /api/orders/{number}, GET /healthz and the static files."""

from __future__ import annotations

import warnings
from urllib.parse import quote

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from statusctl.carts.oss import health_url
from statusctl.carts.signing import headers as signed_headers

from .conftest import SECRET, Clock, Sender, payload


def test_order_json_has_what_the_page_shows(sender: Sender, client: TestClient) -> None:
    sender.post(payload(label="Processing", changed_at="2024-05-01T10:00:00Z"))
    shipped = payload(label="Order Shipped", previous="Processing", changed_at="2024-05-01T11:00:00Z", note="Thanks!")
    shipped["items"][0].update(label="Item Shipped", shipped=2, changed=True)
    shipped["packages"] = [{"tracking": "1Z999AA10123456784", "carrier": "ups", "shipped_at": "2024-05-01T11:00:00Z",
                            "items": [{"sku": "MUG-1", "cart_line_id": None, "quantity": 2}]}]
    sender.post(shipped)
    answer = client.get("/api/orders/1001", params={"postal": "90210"})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    data = answer.json()
    assert data == {
        "number": "1001",
        "store": "shop",
        "label": "Order Shipped",
        "date": "2024-04-30",
        "updated_at": "2024-05-01T11:00:00+00:00",
        "items": [
            {"sku": "MUG-1", "name": "Blue mug", "label": "Item Shipped", "quantity": 2, "shipped": 2, "cancelled": False},
            {"sku": "TEE-M", "name": "T-shirt (M)", "label": None, "quantity": 1, "shipped": 0, "cancelled": False},
        ],
        "packages": [
            {"tracking": "1Z999AA10123456784", "carrier": "UPS",
             "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
             "shipped_at": "2024-05-01T11:00:00Z", "items": [{"sku": "MUG-1", "quantity": 2}]},
        ],
        "history": [
            {"at": "2024-05-01T11:00:00+00:00", "order_label": "Order Shipped",
             "items": [{"sku": "MUG-1", "name": "Blue mug", "label": "Item Shipped"}],
             "packages": [{"tracking": "1Z999AA10123456784", "carrier": "UPS",
                           "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784"}],
             "note": "Thanks!"},
            {"at": "2024-05-01T10:00:00+00:00", "order_label": "Processing", "items": [], "packages": [], "note": None},
        ],
    }
    assert "postal" not in answer.text and "90210" not in answer.text


def test_order_numbers_as_customers_type_them(sender: Sender, client: TestClient) -> None:
    sender.post(payload("ab-1001", postal="k1a 0b1"))
    sender.post(payload("2024/0007", postal="K1A0B1"))
    for number in ("AB-1001", "#ab-1001", " ab-1001 "):
        assert client.get("/api/orders/" + quote(number), params={"postal": "K1A-0B1"}).status_code == 200
    assert client.get("/api/orders/" + quote("2024/0007", safe=""), params={"postal": "k1a0b1"}).json()["number"] == "2024/0007"


def test_store_narrows_a_number_used_by_two_stores(sender: Sender, client: TestClient) -> None:
    sender.post(payload("7", store="a", postal="1", label="A", changed_at="2024-05-01T10:00:00Z"))
    sender.post(payload("7", store="b", postal="1", label="B", changed_at="2024-05-01T09:00:00Z"))
    assert client.get("/api/orders/7?postal=1").json()["label"] == "A"  # the most recently changed
    assert client.get("/api/orders/7?postal=1&store=b").json()["label"] == "B"
    assert client.get("/api/orders/7?postal=1&store=c").status_code == 404


def test_healthz(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_signed_healthz_tells_the_order_manager_whether_its_secret_is_right(client: TestClient, clock: Clock) -> None:
    url = health_url("http://testserver/api/updates")
    good = client.get(url, headers=signed_headers(SECRET, "check_1", b"", now=clock()))
    assert (good.status_code, good.json()) == (200, {"status": "ok", "signature": "ok"})
    wrong = "whsec_" + "QUJD" * 8
    bad = client.get(url, headers=signed_headers(wrong, "check_2", b"", now=clock()))
    assert bad.status_code == 401


def test_static_files(client: TestClient) -> None:
    css = client.get("/static/oss.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/static/oss.js")
    assert "resolvedOptions().timeZone" in js.text


def test_unknown_paths_and_methods(client: TestClient) -> None:
    assert client.get("/api/updates").status_code == 405
    assert client.get("/nope").status_code == 404
    assert client.post("/healthz").status_code == 405


def test_database_trouble_is_503_so_the_controller_retries(sender: Sender, client: TestClient) -> None:
    sender.post(payload())
    client.app.state.store.close()  # type: ignore[attr-defined]
    update = sender.post(payload("1002"))
    assert (update.status_code, update.headers["retry-after"]) == (503, "30")
    assert client.get("/api/orders/1001", params={"postal": "90210"}).status_code == 503
    assert client.get("/healthz").status_code == 503
    page = client.post("/lookup", data={"number": "1001", "postal": "90210"})
    assert page.status_code == 503 and "try again" in page.text
