"""A Magento 2 / Adobe Commerce fake: REST V1 orders, ship, shipments search, cancel/hold/unhold, comments.

Shapes follow Adobe's REST reference: `Authorization: Bearer`, searchCriteria results as
{"items", "search_criteria", "total_count"}, errors as {"message": "… %1 …", "parameters"},
and the order's state machine where it shows through the API: a held, cancelled or fully
shipped order refuses a shipment ("does not allow a shipment to be created"), a cancel of
an order that cannot be cancelled answers `true` and changes nothing, and a comment may set
only a status of the order's current state.
"""

from __future__ import annotations

import time
from typing import Any

from statusctl.domain.matrix import DEFAULT_MAPPINGS
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .contract import ContractCase
from .fakeserver import Answer, Handler, Request
from .vendorfake import VendorFake

TOKEN = "mg2-integration-7c1d9e4f2a6b8c0d"
STATE_STATUSES = {"new": ["pending"], "processing": ["processing", "fraud"], "complete": ["complete"],
                  "holded": ["holded"], "canceled": ["canceled"], "closed": ["closed"]}
NO_SHIPMENT = "Shipment Document Validation Error(s):\nThe order does not allow a shipment to be created."


def mg_error(status: int, message: str, parameters: Any = None) -> Answer:
    body: dict[str, Any] = {"message": message}
    if parameters is not None:
        body["parameters"] = parameters
    return Answer(status, body)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def _line(item_id: int, sku: str, qty: int) -> dict[str, Any]:
    return {"item_id": item_id, "sku": sku, "name": sku, "product_type": "simple", "parent_item_id": None,
            "qty_ordered": qty, "qty_shipped": 0, "qty_canceled": 0, "qty_refunded": 0}


def _search(request: Request) -> dict[str, str]:
    """The `field = value` filters of a searchCriteria query string."""
    found = {}
    for n in range(5):
        prefix = f"searchCriteria[filter_groups][{n}][filters][0]"
        field = request.arg(f"{prefix}[field]")
        if field:
            found[field] = request.arg(f"{prefix}[value]") or ""
    return found


class MagentoFake(VendorFake):
    routes = [
        ("GET", r"/orders", "search_orders"),
        ("GET", r"/orders/(\d+)", "get_order"),
        ("POST", r"/order/(\d+)/ship", "ship"),
        ("GET", r"/shipments", "search_shipments"),
        ("POST", r"/orders/(\d+)/cancel", "cancel"),
        ("POST", r"/orders/(\d+)/hold", "hold"),
        ("POST", r"/orders/(\d+)/unhold", "unhold"),
        ("POST", r"/orders/(\d+)/comments", "comment"),
    ]

    def __init__(self, *, store_code: str = "default") -> None:
        self.prefix = f"/rest/{store_code}/V1"
        super().__init__()
        self.orders: dict[int, dict[str, Any]] = {
            501: {"entity_id": 501, "increment_id": "1001", "state": "processing", "status": "processing",
                  "items": [_line(9001, "MUG-1", 2), _line(9002, "TEE-L", 1)], "status_histories": []},
        }
        self.shipments: list[dict[str, Any]] = []
        self.stale_searches = 0  # how many shipment searches still miss the newest shipment (index lag)
        self._held: dict[int, tuple[str, str]] = {}

    # Hooks -------------------------------------------------------------------------

    def authorise(self, request: Request) -> Answer | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return mg_error(401, "The consumer isn't authorized to access %resources.",
                            {"resources": "Magento_Sales::sales"})
        return None

    def route(self, request: Request) -> Answer:
        if request.method == "POST" and request.body and \
                not request.headers.get("content-type", "").startswith("application/json"):
            return mg_error(415, "Server cannot understand Content-Type HTTP header media type %1",
                            [request.headers.get("content-type", "")])
        return super().route(request)

    def no_route(self, request: Request) -> Answer:
        return mg_error(404, "Request does not match any route.")

    def bad_body(self, request: Request) -> Answer:
        return mg_error(400, "Decoding error: \nSyntax error")

    def order(self, oid: str) -> dict[str, Any] | None:
        return self.orders.get(int(oid))

    def missing(self) -> Answer:
        return mg_error(404, "The entity that was requested doesn't exist. Verify the entity and try again.")

    # Orders ------------------------------------------------------------------------

    def search_orders(self, request: Request, body: Any) -> Answer:
        filters = _search(request)
        rows = [o for o in self.orders.values() if all(str(o.get(k)) == v for k, v in filters.items())]
        size = int(request.arg("searchCriteria[pageSize]") or 0)
        return Answer(200, {"items": rows[:size] if size else rows, "search_criteria": {}, "total_count": len(rows)})

    def get_order(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.order(oid)
        return Answer(200, order) if order else self.missing()

    def set_state(self, order: dict[str, Any], state: str, status: str | None = None) -> None:
        order["state"], order["status"] = state, status or STATE_STATUSES[state][0]

    # Shipments ---------------------------------------------------------------------

    def ship(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.order(oid)
        if not order:
            return self.missing()
        body = body or {}
        if order["state"] in ("holded", "canceled", "payment_review"):
            return mg_error(400, "Shipment Document Validation Error(s):\nA shipment cannot be created when "
                                 f"an order has a status of {order['status']}")
        lines = {line["item_id"]: line for line in order["items"]}
        left = {k: v["qty_ordered"] - v["qty_shipped"] - v["qty_canceled"] - v["qty_refunded"]
                for k, v in lines.items()}
        wanted = {i["order_item_id"]: i["qty"] for i in body.get("items") or []} or \
            {k: q for k, q in left.items() if q > 0}
        if not wanted or any(k not in lines or not 0 < q <= left[k] for k, q in wanted.items()):
            return mg_error(400, NO_SHIPMENT)
        for track in body.get("tracks") or []:
            if not track.get("track_number") or not track.get("carrier_code"):
                return mg_error(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "carrier_code"})
        for k, q in wanted.items():
            lines[k]["qty_shipped"] += q
        shipment_id = len(self.shipments) + 1
        comment = body.get("comment") or {}
        self.shipments.append({
            "entity_id": shipment_id, "order_id": order["entity_id"], "increment_id": f"00000{shipment_id}",
            "created_at": _now(), "notify": body.get("notify"),
            "items": [{"order_item_id": k, "qty": q, "sku": lines[k]["sku"]} for k, q in wanted.items()],
            "tracks": [{**t, "order_id": order["entity_id"], "parent_id": shipment_id} for t in body.get("tracks") or []],
            "comments": [comment] if comment.get("comment") else [],
        })
        if all(v["qty_ordered"] - v["qty_shipped"] - v["qty_canceled"] - v["qty_refunded"] <= 0 for v in lines.values()):
            self.set_state(order, "complete")
        return Answer(200, str(shipment_id))

    def search_shipments(self, request: Request, body: Any) -> Answer:
        filters = _search(request)
        rows = [s for s in self.shipments if all(str(s.get(k)) == v for k, v in filters.items())]
        if self.stale_searches > 0:
            self.stale_searches -= 1
            rows = rows[:-1]
        return Answer(200, {"items": rows, "search_criteria": {}, "total_count": len(rows)})

    # State changes and comments ----------------------------------------------------------

    def cancel(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.order(oid)
        if not order:
            return self.missing()
        if order["state"] in ("new", "processing") and not any(i["qty_shipped"] for i in order["items"]):
            self.set_state(order, "canceled")
        return Answer(200, True)  # as Magento: true even when the order could not be cancelled

    def hold(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.order(oid)
        if not order:
            return self.missing()
        if order["state"] not in ("new", "processing"):
            return mg_error(400, "A hold action is not available.")
        self._held[order["entity_id"]] = (order["state"], order["status"])
        self.set_state(order, "holded")
        return Answer(200, True)

    def unhold(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.order(oid)
        if not order:
            return self.missing()
        if order["state"] != "holded":
            return mg_error(400, "You cannot remove the hold.")
        self.set_state(order, *self._held.pop(order["entity_id"]))
        return Answer(200, True)

    def comment(self, request: Request, body: Any, oid: str) -> Answer:
        order = self.order(oid)
        if not order:
            return self.missing()
        history = (body or {}).get("statusHistory")
        if not isinstance(history, dict):
            return mg_error(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "statusHistory"})
        status = history.get("status")
        if status and status not in STATE_STATUSES.get(order["state"], []):
            return mg_error(400, 'Unable to add comment: The status "%1" is not part of the order status history.',
                            [status])
        # Older Magento versions set the order's status to the comment's, even when it has none.
        order["status"] = status
        order["status_histories"].insert(0, {**history, "entity_id": len(order["status_histories"]) + 1,
                                             "created_at": _now()})
        return Answer(200, True)

    def holding(self, tracking: str) -> int:
        return sum(t["track_number"] == tracking for s in self.shipments for t in s["tracks"])


def make_store(base_url: str, good: bool = True, **options: str) -> Store:
    return Store("shop", "magento2", base_url, {"token": {"value": TOKEN if good else "wrong-token-0000"}},
                 dict(options))


def secrets(good: bool = True) -> dict[str, str]:
    return {"token": TOKEN if good else "wrong-token-0000"}


def effects(handler: Handler, payload: Payload) -> int:
    """Shipment tracks with the payload's tracking number."""
    assert isinstance(handler, MagentoFake)
    return handler.holding(payload["packages"][0]["tracking"] or "")


CASE = ContractCase(
    cart="magento2",
    make_fake=MagentoFake,
    store=make_store,
    secrets=secrets,
    effects=effects,
    mappings={label.lower(): dict(carts) for label, carts in DEFAULT_MAPPINGS.items()},
)
