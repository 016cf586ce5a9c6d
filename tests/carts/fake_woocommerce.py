"""A WooCommerce fake: REST wc/v3 orders and order notes, and the Shipment Tracking extension's API.

Shapes follow the WooCommerce REST API docs: Basic auth with the consumer key and secret,
errors as {"code", "message", "data": {"status"}}, 201 for created notes and trackings, and
`GET …/shipment-trackings/providers` open to anyone. With `ast=True` it is the free
Advanced Shipment Tracking plugin (3.9.2) instead: the same per-order routes, including
`orders/{id}/shipment-trackings/providers`, but no top-level providers route (404
`rest_no_route`), as the real plugins answer in tests/real/.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from statusctl.domain.matrix import DEFAULT_MAPPINGS
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .contract import ContractCase
from .fakeserver import Answer, Handler, Request
from .vendorfake import VendorFake

KEY = "ck_4f1e2d3c4b5a69788796a5b4c3d2e1f0"
SECRET = "cs_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
ORDER_ID = "501"
SLUGS = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed")
PROVIDERS = {
    "United States": {"UPS": "https://www.ups.com/track?tracknum=%1$s",
                      "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels=%1$s",
                      "Fedex": "https://www.fedex.com/fedextrack/?tracknumbers=%1$s"},
    "Global": {"DHL Express": "https://www.dhl.com/track?id=%1$s"},
}


def wc_error(status: int, code: str, message: str, **data: Any) -> Answer:
    return Answer(status, {"code": code, "message": message, "data": {"status": status, **data}})


def _now_gmt() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


class WooFake(VendorFake):
    prefix = "/wp-json"
    routes = [
        ("GET", r"/wc/v3/orders", "list_orders"),
        ("GET", r"/wc/v3/orders/(\d+)", "get_order"),
        ("PUT", r"/wc/v3/orders/(\d+)", "put_order"),
        ("GET", r"/wc/v3/orders/(\d+)/notes", "list_notes"),
        ("POST", r"/wc/v3/orders/(\d+)/notes", "add_note"),
        ("GET", r"/wc-shipment-tracking/v3/shipment-trackings/providers", "providers"),
        ("GET", r"/wc-shipment-tracking/v3/orders/(\d+)/shipment-trackings/providers", "order_providers"),
        ("GET", r"/wc-shipment-tracking/v3/orders/(\d+)/shipment-trackings", "list_trackings"),
        ("POST", r"/wc-shipment-tracking/v3/orders/(\d+)/shipment-trackings", "add_tracking"),
    ]
    public = frozenset({"providers"})

    def __init__(self, *, extension: bool = True, ast: bool = False) -> None:
        super().__init__()
        self.extension = extension
        self.ast = ast
        self.orders: dict[str, dict[str, Any]] = {
            ORDER_ID: {"id": 501, "number": "1001", "status": "processing",
                       "line_items": [{"id": 9001, "sku": "MUG-1", "quantity": 2},
                                      {"id": 9002, "sku": "TEE-L", "quantity": 1}]},
        }
        self.notes: dict[str, list[dict[str, Any]]] = {ORDER_ID: []}
        self.trackings: dict[str, list[dict[str, Any]]] = {ORDER_ID: []}
        self._next = 100

    # Hooks -------------------------------------------------------------------------

    def authorise(self, request: Request) -> Answer | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return wc_error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if key != KEY:
            return wc_error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != SECRET:
            return wc_error(401, "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match.")
        return None

    def no_route(self, request: Request) -> Answer:
        return wc_error(404, "rest_no_route", "No route was found matching the URL and request method.")

    def bad_body(self, request: Request) -> Answer:
        return wc_error(400, "rest_invalid_json", "Invalid JSON body passed.")

    def route(self, request: Request) -> Answer:
        if "/wc-shipment-tracking/" in request.path and not self.extension:
            return self.no_route(request)
        if request.method in ("POST", "PUT") and request.body and \
                not request.headers.get("content-type", "").startswith("application/json"):
            return wc_error(400, "rest_invalid_param", "Invalid parameter(s): body is not JSON")
        return super().route(request)

    def order(self, oid: str) -> dict[str, Any] | None:
        return self.orders.get(oid)

    def missing(self) -> Answer:
        return wc_error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")

    def next_id(self) -> int:
        self._next += 1
        return self._next

    # Orders -------------------------------------------------------------------------

    def list_orders(self, request: Request, body: Any) -> Answer:
        per_page = int(request.arg("per_page") or 10)
        orders = list(self.orders.values())
        return Answer(200, orders[:per_page], {"X-WP-Total": str(len(orders)), "X-WP-TotalPages": "1"})

    def get_order(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.order(oid)
        return Answer(200, order) if order else self.missing()

    def put_order(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.order(oid)
        if not order:
            return self.missing()
        if not isinstance(body, dict):
            return wc_error(400, "rest_invalid_json", "Invalid JSON body passed.")
        status = body.get("status")
        if status is not None and status not in SLUGS:
            return wc_error(400, "rest_invalid_param", "Invalid parameter(s): status",
                            params={"status": f"status is not one of {', '.join(SLUGS)}."})
        order.update(body)
        return Answer(200, order)

    # Notes --------------------------------------------------------------------------

    def list_notes(self, request: Request, body: Any, oid: str) -> Answer:
        if oid not in self.orders:
            return self.missing()
        kind = request.arg("type") or "any"
        notes = [n for n in self.notes[oid]
                 if kind == "any" or (kind == "customer") == n["customer_note"]]
        return Answer(200, list(reversed(notes)))  # newest first, as WooCommerce lists them

    def add_note(self, request: Request, body: Any, oid: str) -> Answer:
        if oid not in self.orders:
            return self.missing()
        if not isinstance(body, dict) or not body.get("note"):
            return wc_error(400, "rest_missing_callback_param", "Missing parameter(s): note",
                            params=["note"])
        stamp = _now_gmt()
        note = {"id": self.next_id(), "author": "system", "date_created": stamp, "date_created_gmt": stamp,
                "note": str(body["note"]), "customer_note": bool(body.get("customer_note", False))}
        self.notes[oid].append(note)
        return Answer(201, note, {"Location": f"/wp-json/wc/v3/orders/{oid}/notes/{note['id']}"})

    # Shipment Tracking ---------------------------------------------------------------

    def providers(self, request: Request, body: Any) -> Answer:
        return self.no_route(request) if self.ast else Answer(200, PROVIDERS)

    def order_providers(self, request: Request, body: Any, oid: str) -> Answer:
        return Answer(200, PROVIDERS)  # neither plugin checks the order id here

    def list_trackings(self, request: Request, body: Any, oid: str) -> Answer:
        if oid not in self.orders:
            return self.missing()
        return Answer(200, self.trackings[oid])

    def add_tracking(self, request: Request, body: Any, oid: str) -> Answer:
        if oid not in self.orders:
            return self.missing()
        if not isinstance(body, dict) or not body.get("tracking_number"):
            return wc_error(400, "rest_missing_callback_param", "Missing parameter(s): tracking_number")
        known = {name for group in PROVIDERS.values() for name in group}
        provider = body.get("tracking_provider")
        if provider and provider not in known:
            return wc_error(400, "rest_invalid_param", "Invalid parameter(s): tracking_provider")
        if not provider and not body.get("custom_tracking_provider"):
            return wc_error(400, "rest_missing_callback_param", "Missing parameter(s): tracking_provider")
        shipped = str(body.get("date_shipped") or time.strftime("%Y-%m-%d"))
        try:
            day = time.strptime(shipped, "%Y-%m-%d")
        except ValueError:
            return wc_error(400, "rest_invalid_param", "Invalid parameter(s): date_shipped")
        item = {"tracking_id": uuid.uuid4().hex, "tracking_provider": provider or "",
                "custom_tracking_provider": body.get("custom_tracking_provider", ""),
                "tracking_number": body["tracking_number"], "date_shipped": str(int(time.mktime(day)))}
        self.trackings[oid].append(item)
        return Answer(201, item)

    # What the contract counts ---------------------------------------------------------

    def holding(self, tracking: str) -> int:
        in_notes = sum(tracking in n["note"] for notes in self.notes.values() for n in notes)
        in_trackings = sum(t["tracking_number"] == tracking for ts in self.trackings.values() for t in ts)
        return int(in_notes + in_trackings)


def make_store(base_url: str, good: bool = True, **options: str) -> Store:
    secret = SECRET if good else "cs_wrong_wrong_wrong_wrong"
    return Store("shop", "woocommerce", base_url,
                 {"key": {"value": KEY}, "secret": {"value": secret}}, dict(options))


def secrets(good: bool = True) -> dict[str, str]:
    return {"key": KEY, "secret": SECRET if good else "cs_wrong_wrong_wrong_wrong"}


def mappings() -> dict[str, dict[str, str]]:
    return {label.lower(): dict(carts) for label, carts in DEFAULT_MAPPINGS.items()}


def effects(handler: Handler, payload: Payload) -> int:
    """Notes and trackings that carry the payload's tracking number (each one e-mails the customer)."""
    assert isinstance(handler, WooFake)
    return handler.holding(payload["packages"][0]["tracking"] or "")


CASE = ContractCase(
    cart="woocommerce",
    make_fake=WooFake,
    store=make_store,
    secrets=secrets,
    effects=effects,
    mappings=mappings(),
)
