"""The shopify vendor fake: a stateful GraphQL Admin API that runs requests on the real schemas.

Every request (document and variables) is checked with graphql-core against
each real Admin schema we test (`shopify_schema.VERSIONS`), and one that any of
them refuses is answered the way Shopify answers one: HTTP 200 with `errors`.
The rest is executed against the schema of the version in the URL, with this
shop's resolvers, so answers carry only the selected fields, typed as Shopify
types them. Every answer carries Shopify's cost extensions (`throttled`
answers THROTTLED, as a spent bucket does).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from statusctl.carts.shopify_gql import DEFAULT_API_VERSION
from statusctl.domain.matrix import DEFAULT_MAPPINGS
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from . import shopify_schema
from .contract import ContractCase
from .fakeserver import Answer, Handler, Request, json_answer

TOKEN = "shpat_0123456789abcdef0123456789abcdef"
CLIENT_ID, CLIENT_SECRET = "client-id-1234", "client-secret-5678"
VERSION = DEFAULT_API_VERSION


# -- the shop ----------------------------------------------------------------------------------

@dataclass
class FoLine:
    id: str
    line_item: str
    sku: str
    total: int
    remaining: int


@dataclass
class FulfilmentOrder:
    id: str
    location: str
    lines: list[FoLine]
    status: str = "OPEN"


@dataclass
class Order:
    id: str
    fos: list[FulfilmentOrder]
    tags: list[str] = field(default_factory=list)
    cancelled_at: str | None = None
    fulfilments: list[dict[str, Any]] = field(default_factory=list)


class ShopifyFake:
    """A shop with one order (501: MUG-1 ×2 as line 9001, TEE-L ×1 as line 9002) unless given others."""

    def __init__(self, orders: list[Order] | None = None) -> None:
        shopify_schema.require()
        self.ids = itertools.count(1)
        self.orders = {o.id: o for o in orders or [make_order("501", [("9001", "MUG-1", 2), ("9002", "TEE-L", 1)])]}
        self.tokens = {TOKEN}
        self.available = 1990.0  # points in the cost bucket after each call
        self.throttled = 0  # answer this many calls with THROTTLED
        self.documents: list[str] = []
        self.versions: list[str] = []
        self.checked: list[tuple[str, dict[str, Any]]] = []  # requests every real schema accepted

    def cost(self, requested: float = 12.0) -> dict[str, Any]:
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": None if self.throttled else requested,
                         "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": self.available,
                                            "restoreRate": 100.0}}}

    def __call__(self, req: Request) -> Answer:
        if req.method == "POST" and req.path == "/admin/oauth/access_token":
            form = req.form()
            if (form.get("grant_type"), form.get("client_id"), form.get("client_secret")) != (
                    "client_credentials", CLIENT_ID, CLIENT_SECRET):
                return json_answer(400, {"error": "invalid_client", "error_description": "Client authentication failed"})
            token = f"shpat_cc{next(self.ids):028d}"
            self.tokens.add(token)
            return json_answer(200, {"access_token": token, "scope": "write_orders", "expires_in": 86399})
        match = re.fullmatch(r"/admin/api/([\w-]+)/graphql\.json", req.path)
        if req.method != "POST" or match is None:
            return Answer(404, "Not Found")
        if req.headers.get("x-shopify-access-token") not in self.tokens:
            return json_answer(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
        if not req.headers.get("content-type", "").startswith("application/json"):
            return json_answer(415, {"errors": "Content-Type must be application/json"})
        self.versions.append(match.group(1))
        body = req.json()
        text, variables = body.get("query", ""), body.get("variables") or {}
        self.documents.append(text)
        if self.throttled:
            self.throttled -= 1
            return json_answer(200, {"errors": [{"message": "Throttled", "extensions": {
                "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": self.cost(requested=500.0)})
        problems = [f"{version}: {p}" for version in shopify_schema.VERSIONS
                    for p in shopify_schema.problems(version, text, variables)]
        if problems:
            return json_answer(200, {"errors": [{"message": p, "extensions": {"code": "undefinedField"}}
                                                for p in problems]})
        self.checked.append((text, variables))
        version = match.group(1) if match.group(1) in shopify_schema.VERSIONS else shopify_schema.VERSIONS[-1]
        result = shopify_schema.run(version, text, variables, self.root())
        if result.errors:
            return json_answer(200, {"errors": [e.formatted for e in result.errors], "extensions": self.cost()})
        return json_answer(200, {"data": result.data, "extensions": self.cost()})

    def root(self) -> dict[str, Any]:
        """The top-level fields' resolvers (graphql-core passes the coerced arguments)."""
        return {
            "shop": lambda info: {"name": "Statusctl Test Shop", "id": "gid://shopify/Shop/1"},
            "order": lambda info, id: self.order_view(self.orders[id]) if id in self.orders else None,
            "nodes": lambda info, ids: [self.fulfilments().get(i) for i in ids],
            "fulfillmentCreate": lambda info, fulfillment, **_: self.fulfil(fulfillment),
            "orderCancel": lambda info, orderId, **_: self.cancel(orderId),
            "tagsAdd": lambda info, id, tags: self.add_tags(id, tags),
        }

    def fulfilments(self) -> dict[str, dict[str, Any]]:
        return {f["id"]: f for o in self.orders.values() for f in o.fulfilments}

    def cancel(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None or order.cancelled_at:
            message = "Order not found" if order is None else "Cannot cancel an order that has already been canceled"
            return {"job": None, "orderCancelUserErrors": [{"field": ["orderId"], "message": message,
                                                            "code": "INVALID"}], "userErrors": []}
        order.cancelled_at = "2026-11-21T10:00:00Z"
        return {"job": {"id": f"gid://shopify/Job/{next(self.ids)}", "done": False},
                "orderCancelUserErrors": [], "userErrors": []}

    def add_tags(self, order_id: str, tags: list[str]) -> dict[str, Any]:
        order = self.orders[order_id]
        order.tags += [t for t in tags if t not in order.tags]
        return {"node": {"__typename": "Order", "id": order.id}, "userErrors": []}

    @staticmethod
    def order_view(order: Order) -> dict[str, Any]:
        return {"id": order.id, "cancelledAt": order.cancelled_at, "tags": order.tags, "fulfillments": order.fulfilments,
                "fulfillmentOrders": {"pageInfo": {"hasNextPage": False}, "nodes": [{
                    "id": fo.id, "status": fo.status,
                    "assignedLocation": {"name": f"Location {fo.location}",
                                         "location": {"id": f"gid://shopify/Location/{fo.location}"}},
                    "lineItems": {"pageInfo": {"hasNextPage": False}, "nodes": [{"id": ln.id, "remainingQuantity": ln.remaining, "totalQuantity": ln.total,
                                             "sku": ln.sku, "lineItem": {"id": ln.line_item, "sku": ln.sku}}
                                            for ln in fo.lines]}} for fo in order.fos]}}

    def fulfil(self, data: dict[str, Any]) -> dict[str, Any]:
        def refuse(message: str) -> dict[str, Any]:
            return {"fulfillment": None, "userErrors": [{"field": ["fulfillment"], "message": message}]}

        fos = {fo.id: (order, fo) for order in self.orders.values() for fo in order.fos}
        groups = data["lineItemsByFulfillmentOrder"]
        picked = [fos.get(g["fulfillmentOrderId"]) for g in groups]
        if None in picked:
            return refuse("Fulfillment order does not exist.")
        if len({fo.location for _, fo in picked}) > 1 or len({o.id for o, _ in picked}) > 1:  # type: ignore[union-attr]
            return refuse("All fulfillment orders must belong to the same order and location.")
        moves = []
        for group, (_order, fo) in zip(groups, picked, strict=True):  # type: ignore[misc]
            if fo.status not in ("OPEN", "IN_PROGRESS"):
                return refuse(f"Fulfillment order {fo.id} has an unfulfillable status= {fo.status.lower()}.")
            wanted = group.get("fulfillmentOrderLineItems")
            wanted = wanted if wanted else [{"id": ln.id, "quantity": ln.remaining} for ln in fo.lines if ln.remaining]
            lines = {ln.id: ln for ln in fo.lines}
            for item in wanted:
                line = lines.get(item["id"])
                if line is None or not 0 < item["quantity"] <= line.remaining:
                    return refuse("Invalid fulfillment order line item quantity requested.")
                moves.append((fo, line, item["quantity"]))
        for fo, line, qty in moves:
            line.remaining -= qty
            fo.status = "IN_PROGRESS" if any(ln.remaining for ln in fo.lines) else "CLOSED"
        tracking = data.get("trackingInfo") or {}
        fulfilment = {"__typename": "Fulfillment", "id": f"gid://shopify/Fulfillment/{next(self.ids)}",
                      "status": "SUCCESS", "notifyCustomer": data.get("notifyCustomer", False),
                      "trackingInfo": [{"number": tracking["number"], "company": tracking.get("company"), "url": None}]
                      if tracking.get("number") else [],
                      "fulfillmentLineItems": {"nodes": [{"quantity": q, "lineItem": {"id": ln.line_item}}
                                                         for _, ln, q in moves]}}
        picked[0][0].fulfilments.append(fulfilment)  # type: ignore[index]
        return {"fulfillment": fulfilment, "userErrors": []}

    def with_tracking(self, order_id: str, number: str) -> list[dict[str, Any]]:
        order = self.orders[order_id if order_id.startswith("gid://") else f"gid://shopify/Order/{order_id}"]
        return [f for f in order.fulfilments if any(t["number"] == number for t in f["trackingInfo"])]


def make_order(number: str, lines: list[tuple[str, str, int]], locations: list[str] | None = None) -> Order:
    """An order whose line i sits in a fulfilment order at locations[i] (all at location 1 by default)."""
    places = locations or ["1"] * len(lines)
    fos: dict[str, FulfilmentOrder] = {}
    for n, ((line_id, sku, qty), place) in enumerate(zip(lines, places, strict=True), start=1):
        fo = fos.setdefault(place, FulfilmentOrder(f"gid://shopify/FulfillmentOrder/{number}{place}", place, []))
        fo.lines.append(FoLine(f"gid://shopify/FulfillmentOrderLineItem/{number}{n}",
                               f"gid://shopify/LineItem/{line_id}", sku, qty, qty))
    return Order(f"gid://shopify/Order/{number}", list(fos.values()))


def make_store(base_url: str, good: bool = True, **options: str) -> Store:
    return Store("shop", "shopify", base_url, {"token": {"value": TOKEN if good else "shpat_wrong0000"}},
                 {"api_version": VERSION, **options})


def secrets(good: bool = True) -> dict[str, str]:
    return {"token": TOKEN if good else "shpat_wrong0000"}


def mappings() -> dict[str, dict[str, str]]:
    return {label.lower(): {"shopify": m["shopify"]} for label, m in DEFAULT_MAPPINGS.items() if "shopify" in m}


def effects(handler: Handler, payload: Payload) -> int:
    assert isinstance(handler, ShopifyFake)
    return len(handler.with_tracking(payload["order"]["cart_order_id"] or "", payload["packages"][0]["tracking"] or ""))


CASE = ContractCase(cart="shopify", make_fake=ShopifyFake, store=make_store, secrets=secrets, effects=effects,
                    mappings=mappings())
