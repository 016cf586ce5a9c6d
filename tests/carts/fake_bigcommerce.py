"""A BigCommerce fake: REST v2 orders, products, shipping addresses and shipments, with rate limits.

Shapes follow BigCommerce's v2 docs: `X-Auth-Token`, JSON only (`Accept`), errors as a JSON
array of {"status", "message"}, an empty list as 204 without a body, 201 for a created
shipment, and the rate-limit headers on every answer. The quota refills when its window
resets; `run_out(reset_ms)` spends it now, so requests get 429 until then (or `refill()`).
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from statusctl.domain.matrix import DEFAULT_MAPPINGS
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .contract import ContractCase
from .fakeserver import Answer, Handler, Request
from .vendorfake import VendorFake

TOKEN = "bc7x9k2m4n6p8q1r3s5t7v9w0y2z4a6c"
STORE_HASH = "abc123"
PROVIDERS = ("", "auspost", "canadapost", "endicia", "usps", "fedex", "ups", "upsready", "upsonline",
             "shipperhq", "royalmail")
ORDER_FIELDS = {"status_id", "customer_message", "staff_notes", "products", "billing_address"}


def bc_error(status: int, message: str) -> Answer:
    return Answer(status, [{"status": status, "message": message}])


class BigFake(VendorFake):
    prefix = f"/stores/{STORE_HASH}/v2"
    routes = [
        ("GET", r"/orders/count", "count_orders"),
        ("GET", r"/orders", "list_orders"),
        ("GET", r"/orders/(\d+)", "get_order"),
        ("PUT", r"/orders/(\d+)", "put_order"),
        ("GET", r"/orders/(\d+)/products", "list_products"),
        ("GET", r"/orders/(\d+)/shipping_addresses", "list_addresses"),
        ("GET", r"/orders/(\d+)/shipments", "list_shipments"),
        ("POST", r"/orders/(\d+)/shipments", "add_shipment"),
    ]

    def __init__(self, *, quota: int = 150, window_ms: int = 30000, addresses: int = 1) -> None:
        super().__init__()
        self.quota, self.used, self.window_ms = quota, 0, window_ms
        self.reset_at = time.monotonic() + window_ms / 1000
        self.orders: dict[int, dict[str, Any]] = {501: {"id": 501, "status_id": 11, "status": "Awaiting Fulfillment",
                                                         "discount_amount": "5.0000"}}
        self.addresses: dict[int, list[dict[str, Any]]] = {501: [{"id": 7 + n, "order_id": 501, "first_name": "Ann", "zip": "90210"}
                                for n in range(addresses)]}
        last = 7 + addresses - 1  # with several addresses the T-shirt goes to the last one
        self.products: dict[int, list[dict[str, Any]]] = {501: [
            {"id": 9001, "order_id": 501, "product_id": 77, "sku": "MUG-1", "quantity": 2,
             "quantity_shipped": 0, "order_address_id": 7},
            {"id": 9002, "order_id": 501, "product_id": 78, "sku": "TEE-L", "quantity": 1,
             "quantity_shipped": 0, "order_address_id": last},
        ]}
        self.shipments: dict[int, list[dict[str, Any]]] = {501: []}

    def run_out(self, reset_ms: int = 1500) -> None:
        self.used, self.reset_at = self.quota, time.monotonic() + reset_ms / 1000

    def refill(self) -> None:
        self.used = 0

    # Hooks -------------------------------------------------------------------------

    def route(self, request: Request) -> Answer:
        now = time.monotonic()
        if now >= self.reset_at:
            self.used, self.reset_at = 0, now + self.window_ms / 1000
        if self.used >= self.quota:
            return bc_error(429, "You have exceeded your request quota; try again later.")
        self.used += 1
        accept = request.headers.get("accept", "")
        if "application/json" not in accept:
            return bc_error(406, "The requested content type is not available.")
        if request.method in ("POST", "PUT") and request.headers.get("content-type", "") != "application/json":
            return bc_error(415, "The Content-Type header must be application/json.")
        return super().route(request)

    def decorate(self, answer: Answer) -> Answer:
        answer.headers.update({
            "X-Rate-Limit-Requests-Left": str(max(0, self.quota - self.used)),
            "X-Rate-Limit-Requests-Quota": str(self.quota),
            "X-Rate-Limit-Time-Reset-Ms": str(max(0, int((self.reset_at - time.monotonic()) * 1000))),
            "X-Rate-Limit-Time-Window-Ms": str(self.window_ms),
        })
        return answer

    def authorise(self, request: Request) -> Answer | None:
        if request.headers.get("x-auth-token") != TOKEN:
            return bc_error(401, "You are not authorized to perform this action. Check your X-Auth-Token.")
        return None

    def no_route(self, request: Request) -> Answer:
        return bc_error(404, "The requested resource was not found.")

    def wrong_method(self, request: Request, allowed: list[str]) -> Answer:
        return bc_error(405, f"The requested method is not allowed. Allowed: {', '.join(allowed)}.")

    def bad_body(self, request: Request) -> Answer:
        return bc_error(400, "The request body is not valid JSON.")

    @staticmethod
    def page(request: Request, rows: list[dict[str, Any]]) -> Answer:
        limit = int(request.arg("limit") or 50)
        page = int(request.arg("page") or 1)
        chunk = rows[(page - 1) * limit: page * limit]
        return Answer(200, chunk) if chunk else Answer(204, b"")

    # Orders -------------------------------------------------------------------------

    def count_orders(self, request: Request, body: Any) -> Answer:
        return Answer(200, {"count": len(self.orders), "statuses": [{"id": 2, "name": "Shipped", "count": 0}]})

    def list_orders(self, request: Request, body: Any) -> Answer:
        return self.page(request, list(self.orders.values()))

    def get_order(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.orders.get(int(oid))
        return Answer(200, order) if order else self.no_route(request)

    def put_order(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.orders.get(int(oid))
        if not order:
            return self.no_route(request)
        if not isinstance(body, dict) or set(body) - ORDER_FIELDS:
            return bc_error(400, "The request body holds fields that cannot be updated.")
        if "status_id" in body and (not isinstance(body["status_id"], int) or not 0 <= body["status_id"] <= 14):
            return bc_error(400, "The field 'status_id' is invalid.")
        if "products" in body:
            order["discount_amount"] = "0.0000"  # what a PUT touching products does on BigCommerce
        order.update(body)
        return Answer(200, order)

    def list_products(self, request: Request, body: Any, oid: str) -> Answer:
        return self.page(request, self.products[int(oid)]) if int(oid) in self.orders else self.no_route(request)

    def list_addresses(self, request: Request, body: Any, oid: str) -> Answer:
        return self.page(request, self.addresses[int(oid)]) if int(oid) in self.orders else self.no_route(request)

    # Shipments ------------------------------------------------------------------------

    def list_shipments(self, request: Request, body: Any, oid: str) -> Answer:
        return self.page(request, self.shipments[int(oid)]) if int(oid) in self.orders else self.no_route(request)

    def add_shipment(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.orders.get(int(oid))
        if not order:
            return self.no_route(request)
        if not isinstance(body, dict):
            return bc_error(400, "The request body is not valid JSON.")
        if body.get("order_address_id") not in {a["id"] for a in self.addresses[order["id"]]}:
            return bc_error(400, "The field 'order_address_id' is invalid.")
        if len(str(body.get("tracking_number") or "")) > 50:
            return bc_error(400, "The field 'tracking_number' cannot be longer than 50 characters.")
        if body.get("shipping_provider", "custom") not in PROVIDERS:
            return bc_error(400, "The field 'shipping_provider' is invalid.")
        items = body.get("items")
        if not isinstance(items, list) or not items:
            return bc_error(400, "The field 'items' is required.")
        products = {p["id"]: p for p in self.products[order["id"]]}
        for item in items:
            product = products.get(item.get("order_product_id"))
            if product is None:
                return bc_error(400, f"The order product {item.get('order_product_id')} is not in this order.")
            if not 0 < int(item.get("quantity") or 0) <= product["quantity"] - product["quantity_shipped"]:
                return bc_error(400, f"The quantity of order product {product['id']} is more than is left to ship.")
        for item in items:
            products[item["order_product_id"]]["quantity_shipped"] += int(item["quantity"])
        shipment = {
            "id": sum(len(s) for s in self.shipments.values()) + 1, "order_id": order["id"],
            "order_address_id": body["order_address_id"], "date_created": email.utils.formatdate(usegmt=False),
            "tracking_number": str(body.get("tracking_number") or ""),
            "shipping_provider": body.get("shipping_provider", ""), "tracking_carrier": body.get("tracking_carrier", ""),
            "shipping_method": body.get("shipping_method", ""), "comments": body.get("comments", ""),
            "items": [{"order_product_id": i["order_product_id"], "product_id": products[i["order_product_id"]]["product_id"],
                       "quantity": int(i["quantity"])} for i in items],
        }
        self.shipments[order["id"]].append(shipment)
        done = all(p["quantity_shipped"] >= p["quantity"] for p in products.values())
        order.update(status_id=2 if done else 3, status="Shipped" if done else "Partially Shipped")
        return Answer(201, shipment)

    def holding(self, tracking: str) -> int:
        return sum(s["tracking_number"] == tracking for ss in self.shipments.values() for s in ss)


def make_store(base_url: str, good: bool = True, **options: str) -> Store:
    return Store("shop", "bigcommerce", f"{base_url}/stores/{STORE_HASH}",
                 {"token": {"value": TOKEN if good else "bad-token-000000"}}, dict(options))


def secrets(good: bool = True) -> dict[str, str]:
    return {"token": TOKEN if good else "bad-token-000000"}


def effects(handler: Handler, payload: Payload) -> int:
    """Shipments with the payload's tracking number (each one e-mails the customer)."""
    assert isinstance(handler, BigFake)
    return handler.holding(payload["packages"][0]["tracking"] or "")


CASE = ContractCase(
    cart="bigcommerce",
    make_fake=BigFake,
    store=make_store,
    secrets=secrets,
    effects=effects,
    mappings={label.lower(): dict(carts) for label, carts in DEFAULT_MAPPINGS.items()},
)
