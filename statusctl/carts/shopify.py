"""shopify: order status as Shopify understands it — fulfilments, cancellation, optional tags.

Shopify has no free order status, so each label's shopify mapping names an
action: `fulfil` (Order Shipped, Partially Shipped, Item Shipped by default),
`cancel` (Cancelled), `tag` (write the label as an order tag) or `none`. A
label without a shopify mapping becomes an order tag when the store has
`--option tags=true`, and is internal otherwise (nothing is sent for it).

fulfil: each package of the record becomes one fulfilment with its tracking
number and carrier, over the fulfilment order line items that hold its items
(matched by `cart_line_id` as `gid://shopify/LineItem/<id>`, else by SKU), one
`fulfillmentCreate` per location since Shopify fulfils one location at a time.
The order is read first: quantities already carried by a fulfilment with the
same tracking number are not fulfilled again, so a resend after a crash
creates nothing. Without packages, the changed items are fulfilled as shipped;
a bare order label fulfils whatever is left.

cancel: `orderCancel` (restock, notify the customer, no refund: money stays a
decision for the Shopify admin) unless the order is already cancelled.

The customer note has no customer-visible place in Shopify's API and is not sent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from statusctl.carts.base import Record, Rejected, deciding_status
from statusctl.carts.mapping import read_mapping
from statusctl.carts.shopify_gql import (
    CANCEL,
    CANCELLED,
    FULFIL,
    FULFILLED_LINES,
    ORDER,
    SHOP,
    TAGS_ADD,
    ShopifyBase,
    gid,
    user_errors,
)
from statusctl.domain import mapvalues
from statusctl.domain.carriers import carrier
from statusctl.domain.record import Payload, new_order_label

FULFILLABLE = frozenset({"OPEN", "IN_PROGRESS"})


@dataclass
class Plan:
    fulfil_items: set[str] = field(default_factory=set)  # skus whose changed label says fulfil
    fulfil_order: bool = False
    cancel: bool = False
    tags: list[str] = field(default_factory=list)


@dataclass
class Line:
    id: str  # FulfillmentOrderLineItem gid
    line_item: str  # LineItem gid
    sku: str
    remaining: int


@dataclass
class FulfilmentOrder:
    id: str
    status: str
    location: str
    lines: list[Line]
    more: bool  # more line items than one page


@dataclass
class Shipment:
    tracking: str | None
    carrier: str | None
    need: dict[str, int] | None  # line key ("gid://…LineItem/…" or "sku:…") -> quantity; None: all left


@dataclass
class OrderState:
    id: str
    cancelled: bool
    tags: list[str]
    fulfilments: list[tuple[str, list[str]]]  # (fulfilment id, tracking numbers)
    fos: list[FulfilmentOrder]
    more: bool

    @staticmethod
    def parse(order: dict[str, Any]) -> OrderState:
        fos = []
        conn = order.get("fulfillmentOrders") or {}
        for node in conn.get("nodes") or []:
            place = node.get("assignedLocation") or {}
            location = (place.get("location") or {}).get("id") or place.get("name") or ""
            items = node.get("lineItems") or {}
            lines = [Line(n["id"], (n.get("lineItem") or {}).get("id", ""), n.get("sku") or "",
                          int(n.get("remainingQuantity") or 0)) for n in items.get("nodes") or []]
            fos.append(FulfilmentOrder(node["id"], node.get("status", ""), location, lines,
                                       bool((items.get("pageInfo") or {}).get("hasNextPage"))))
        fulfilments = [(f["id"], [t.get("number") or "" for t in f.get("trackingInfo") or []])
                       for f in order.get("fulfillments") or []]
        return OrderState(order["id"], bool(order.get("cancelledAt")), list(order.get("tags") or []),
                          fulfilments, fos, bool((conn.get("pageInfo") or {}).get("hasNextPage")))


def line_key(cart_line_id: str | None, sku: str) -> str:
    return gid("LineItem", cart_line_id) if cart_line_id else f"sku:{sku}"


def _matches(line: Line, key: str) -> bool:
    return line.line_item == key if key.startswith("gid://") else line.sku == key[4:]


class ShopifyAdapter(ShopifyBase):
    cart = "shopify"

    async def check(self) -> str:
        data = await self.gql(SHOP, {}, "Shopify shop query")
        name = (data.get("shop") or {}).get("name")
        return f"Shopify shop {name!r}, Admin API {self.api_version}"

    # -- what the record asks for --------------------------------------------------------------

    def action(self, label: str) -> str:
        value = self.ctx.mapped(label)
        if value is None:
            return "tag" if self.ctx.store.flag("tags") else "none"
        return read_mapping(mapvalues.shopify, label, value)

    def plan(self, payload: Payload) -> Plan:
        plan = Plan()
        changes: list[tuple[str, str | None]] = []
        if label := new_order_label(payload):
            changes.append((label, None))
        changes += [(i["label"], i["sku"]) for i in payload["items"]
                    if i["changed"] and i["label"] and i["label"] != i["previous_label"]]
        for label, sku in changes:
            action = self.action(label)
            if action == "fulfil":
                if sku is None:
                    plan.fulfil_order = True
                else:
                    plan.fulfil_items.add(sku)
            elif action == "cancel":
                plan.cancel = True
            elif action == "tag":
                tag = " ".join(label.replace(",", " ").split())
                if tag not in plan.tags:
                    plan.tags.append(tag)
        return plan

    @staticmethod
    def shipments(payload: Payload, plan: Plan) -> list[Shipment]:
        out = []
        for pkg in payload["packages"]:
            need: dict[str, int] = defaultdict(int)
            for pi in pkg["items"]:
                need[line_key(pi["cart_line_id"], pi["sku"])] += pi["quantity"]
            if need:
                out.append(Shipment(pkg["tracking"], pkg["carrier"], dict(need)))
        if out:
            return out
        items = {line_key(i["cart_line_id"], i["sku"]): i["shipped"] for i in payload["items"]
                 if i["sku"] in plan.fulfil_items and i["shipped"] > 0}
        if items:
            return [Shipment(None, None, items)]
        return [Shipment(None, None, None)] if plan.fulfil_order else []

    # -- delivery ------------------------------------------------------------------------------

    async def deliver(self, record: Record) -> int | None:
        payload: Payload = record.payload  # type: ignore[assignment]
        plan = self.plan(payload)
        if not (plan.fulfil_items or plan.fulfil_order or plan.cancel or plan.tags):
            return None  # every change is internal for Shopify
        order_id = gid("Order", payload["order"]["cart_order_id"] or payload["order"]["number"])
        data = await self.gql(ORDER, {"id": order_id}, "Shopify order query")
        if not isinstance(data.get("order"), dict):
            raise Rejected(f"Shopify has no order {order_id}; import orders with cart_order_id set to the "
                           "Shopify order id.")
        state = OrderState.parse(data["order"])
        for shipment in self.shipments(payload, plan):
            await self.fulfil(state, shipment)
        if plan.tags:
            await self.add_tags(state, plan.tags)
        if plan.cancel:
            await self.cancel(state, record)
        return deciding_status()

    async def fulfilled(self, fulfilment_ids: list[str]) -> dict[str, int]:
        """Quantity per LineItem gid already carried by these fulfilments."""
        data = await self.gql(FULFILLED_LINES, {"ids": fulfilment_ids}, "Shopify fulfilment query")
        done: dict[str, int] = defaultdict(int)
        for node in data.get("nodes") or []:
            for item in ((node or {}).get("fulfillmentLineItems") or {}).get("nodes") or []:
                done[(item.get("lineItem") or {}).get("id", "")] += int(item.get("quantity") or 0)
        return done

    async def fulfil(self, state: OrderState, shipment: Shipment) -> None:
        groups: dict[str, dict[str, list[tuple[str, int]]]] = defaultdict(lambda: defaultdict(list))
        open_fos = [fo for fo in state.fos if fo.status in FULFILLABLE]
        if shipment.need is None:
            for fo in open_fos:
                for line in fo.lines:
                    if line.remaining > 0:
                        groups[fo.location][fo.id].append((line.id, line.remaining))
                        line.remaining = 0
        else:
            need = dict(shipment.need)
            ours = [fid for fid, numbers in state.fulfilments if shipment.tracking and shipment.tracking in numbers]
            if ours:  # a resend: take off what the fulfilments with this tracking number already hold
                for key, qty in (await self.fulfilled(ours)).items():
                    for want in list(need):
                        if want == key or any(_matches(ln, want) and ln.line_item == key
                                              for fo in state.fos for ln in fo.lines):
                            need[want] = max(0, need[want] - qty)
            for key, qty in need.items():
                self.allocate(state, open_fos, key, qty, groups)
        for fos in groups.values():
            await self.create(fos, shipment)

    @staticmethod
    def allocate(state: OrderState, open_fos: list[FulfilmentOrder], key: str, qty: int,
                 groups: dict[str, dict[str, list[tuple[str, int]]]]) -> None:
        """Take `qty` of line `key` from open fulfilment orders; what is already fulfilled is skipped."""
        for fo in open_fos:
            for line in fo.lines:
                if qty > 0 and line.remaining > 0 and _matches(line, key):
                    take = min(qty, line.remaining)
                    groups[fo.location][fo.id].append((line.id, take))
                    line.remaining -= take
                    qty -= take
        if qty <= 0 or any(_matches(ln, key) for fo in state.fos for ln in fo.lines):
            held = [fo.status for fo in state.fos if fo.status not in FULFILLABLE | {"CLOSED", "CANCELLED"}
                    and any(_matches(ln, key) and ln.remaining for ln in fo.lines)]
            if qty > 0 and held:
                raise Rejected(f"Shopify cannot fulfil {key}: its fulfillment order is {held[0]}.")
            return  # fulfilled already (by an earlier attempt or in the Shopify admin)
        if state.more or any(fo.more for fo in state.fos):
            raise Rejected(f"Shopify order {state.id} has more fulfillment orders or lines than one read "
                           f"returns, and {key} was not among them.")
        raise Rejected(f"Shopify order {state.id} has no line item {key}; check the item's cart_line_id.")

    async def create(self, fos: dict[str, list[tuple[str, int]]], shipment: Shipment) -> None:
        by_fo = [{"fulfillmentOrderId": fo_id,
                  **({"fulfillmentOrderLineItems": [{"id": i, "quantity": q} for i, q in lines]}
                     if shipment.need is not None else {})}
                 for fo_id, lines in fos.items()]
        fulfilment: dict[str, Any] = {"lineItemsByFulfillmentOrder": by_fo, "notifyCustomer": True}
        if shipment.tracking:
            # Shopify links the number only for its own spelling of a carrier ("capitalization matters").
            known = carrier(shipment.carrier)
            fulfilment["trackingInfo"] = {"number": shipment.tracking,
                                          "company": known.shopify if known else (shipment.carrier or "").strip() or None}
        data = await self.gql(FULFIL, {"fulfillment": fulfilment}, "Shopify fulfillmentCreate")
        result = data.get("fulfillmentCreate") or {}
        problems = user_errors(result.get("userErrors"))
        if problems or not result.get("fulfillment"):
            raise Rejected(f"Shopify fulfillmentCreate refused: {problems or 'no fulfillment returned'}")

    async def add_tags(self, state: OrderState, tags: list[str]) -> None:
        have = {t.lower() for t in state.tags}
        missing = [t for t in tags if t.lower() not in have]
        if not missing:
            return
        data = await self.gql(TAGS_ADD, {"id": state.id, "tags": missing}, "Shopify tagsAdd")
        problems = user_errors((data.get("tagsAdd") or {}).get("userErrors"))
        if problems:
            raise Rejected(f"Shopify tagsAdd refused: {problems}")

    async def cancel(self, state: OrderState, record: Record) -> None:
        if state.cancelled:
            return
        variables = {"orderId": state.id, "refundMethod": {"originalPaymentMethodsRefund": False},
                     "restock": True, "reason": "OTHER", "notifyCustomer": True,
                     "staffNote": f"Cancelled by statusctl (record {record.uid})"[:255]}
        data = await self.gql(CANCEL, variables, "Shopify orderCancel")
        problems = user_errors((data.get("orderCancel") or {}).get("orderCancelUserErrors"))
        if problems:
            # The cancel job of an earlier attempt may have finished meanwhile.
            again = await self.gql(CANCELLED, {"id": state.id}, "Shopify order query")
            if not (again.get("order") or {}).get("cancelledAt"):
                raise Rejected(f"Shopify orderCancel refused: {problems}")


ADAPTER = ShopifyAdapter
