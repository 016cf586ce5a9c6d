"""Magento 2 / Adobe Commerce over the REST API V1.

Magento has no free order statuses to set: a label maps to an action.

- `ship`: each package becomes a shipment (`POST order/{id}/ship` with its
  items, tracking and `notify`), skipped when a shipment of the order already
  has its tracking number (or, untracked, the same items from an earlier
  attempt). Without packages, `ship` ships what statusctl shows shipped and
  Magento does not yet. A 400 "does not allow a shipment" counts as done only
  when the order's shipments then show our tracking number.
- `cancel`, `hold`, `unhold`: `POST orders/{id}/cancel|hold|unhold`, skipped
  when the order is already in that state; a cancel Magento silently ignores is
  reported as a failure. Leaving a label that maps to `hold` unholds first.
- `comment` or `comment:<status code>` (letters, digits, `_`, `-`; the rule is
  core/mapvalues.magento2): an order comment naming the label, optionally
  setting a status of the order's current state.

The record's note goes with the first new shipment, else into one customer
comment together with one line per item whose label changed other than by a
shipment; an identical comment from an earlier attempt is not added again.
Orders are addressed by entity id: `cart_order_id`, else found by the order
number (`increment_id`) — Magento's entity ids are not its order numbers.
"""

from __future__ import annotations

import re
from typing import Any

from statusctl.carts.base import Record, Rejected, deciding_status
from statusctl.carts.jsonbody import decode
from statusctl.carts.mapping import read_mapping
from statusctl.carts.restutil import (
    RestAdapter,
    changed_items,
    item_line,
    items_key,
    join_lines,
    made_by_this_record,
    new_order_label,
    new_shipments,
    payload_of,
    same_text,
    segment,
)
from statusctl.domain import mapvalues
from statusctl.domain.carriers import carrier
from statusctl.domain.display import plural
from statusctl.domain.record import ItemPart, PackageItem, Payload

NO_SHIPMENT = "does not allow a shipment"


class Magento2Adapter(RestAdapter):
    cart = "magento2"

    def base_url(self) -> str:
        code = self.ctx.store.option("store_code", "default") or "default"
        return f"{super().base_url()}/rest/{segment(code)}/V1"

    def auth(self) -> dict[str, Any]:
        return {"headers": {"Authorization": f"Bearer {self.secret('token')}"}}

    def error_detail(self, body: Any) -> str | None:
        # {"message": "… %1 …", "parameters": [...] or {"name": ...}, "errors": [{same}]?}
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return None
        texts = [render(body["message"], body.get("parameters"))]
        for error in body.get("errors") or []:
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                texts.append(render(error["message"], error.get("parameters")))
        return "; ".join(texts)

    async def deliver(self, record: Record) -> int | None:
        payload = payload_of(record)
        label = new_order_label(payload)
        action, status = self.action(label) if label else (None, None)  # a bad mapping fails before any write
        if not (action or payload["packages"] or changed_items(payload) or payload["note"]):
            return None  # nothing Magento can show (say, a label cleared)
        order = await self.find_order(payload)
        oid = segment(order["entity_id"])
        previous = payload["order"]["previous_label"]
        if (action not in (None, "hold") and order.get("state") == "holded" and previous
                and self.ctx.mapped(previous) == "hold"):
            await self.call("POST", f"/orders/{oid}/unhold", f"unhold order {oid}", uid=f"{record.uid}.unhold")
        note = payload["note"]
        ship_items = [i for i in changed_items(payload) if self.ctx.mapped(i["label"] or "") == "ship"]
        if any(p["items"] for p in payload["packages"]):
            await self.ship_packages(oid, order, payload, record)
            note = None  # it went with the first shipment (on this attempt or an earlier one)
        elif (action == "ship" or ship_items) and await self.ship_remaining(oid, order, payload, record):
            note = None
        if action in ("cancel", "hold", "unhold"):
            await self.change_state(oid, action, record)
        lines = [label if action == "comment" else None, note]
        lines += [item_line(i) for i in changed_items(payload) if i not in ship_items]
        text = join_lines(lines)
        if text:
            await self.comment(oid, text, status, record)
        return deciding_status()

    def action(self, label: str) -> tuple[str, str | None]:
        return read_mapping(mapvalues.magento2, label, self.ctx.require_mapping(label))

    async def find_order(self, payload: Payload) -> dict[str, Any]:
        number = payload["order"]["number"]
        if payload["order"]["cart_order_id"]:
            return await self.get_order(segment(payload["order"]["cart_order_id"]))
        found = await self.call("GET", "/orders", f"find order {number}",
                                params=criteria("increment_id", number))
        items = found.get("items") if isinstance(found, dict) else None
        if not items or len(items) != 1:
            raise Rejected(f"Magento has {len(items or [])} orders numbered {number!r}; "
                           f"import the order with its cart_order_id (Magento's entity_id).")
        return dict(items[0])

    async def get_order(self, oid: str) -> dict[str, Any]:
        order = await self.call("GET", f"/orders/{oid}", f"read order {oid}")
        if not isinstance(order, dict) or "entity_id" not in order:
            raise Rejected(f"read order {oid}: Magento did not answer with an order.")
        return order

    async def shipments(self, oid: str) -> list[dict[str, Any]]:
        found = await self.call("GET", "/shipments", f"search shipments of order {oid}",
                                params=criteria("order_id", oid))
        items = found.get("items") if isinstance(found, dict) else None
        return [s for s in items or [] if isinstance(s, dict)]

    async def ship_packages(self, oid: str, order: dict[str, Any], payload: Payload, record: Record) -> None:
        existing = await self.shipments(oid)
        todo = new_shipments(payload["packages"], payload["note"], track_numbers(existing),
                             earlier_untracked(existing, record), lambda i: order_item_id(order, i))
        for new in todo:
            package, tracking, comment, n = new.package, new.tracking, new.comment, new.index
            body: dict[str, Any] = {"items": [{"order_item_id": k, "qty": q} for k, q in new.lines], "notify": True}
            if tracking:
                known = carrier(package["carrier"])
                body["tracks"] = [{"track_number": tracking, "title": package["carrier"] or "Tracking",
                                   "carrier_code": known.magento2 if known and known.magento2 else "custom"}]
            if comment:
                body.update(appendComment=True, comment={"comment": comment, "is_visible_on_front": 1})
            what = f"ship package {tracking or n + 1} of order {oid}"
            response = await self.send("POST", f"/order/{oid}/ship", json=body, uid=f"{record.uid}.ship.{n}")
            if response.status_code == 400 and NO_SHIPMENT in (self.error_detail(decode(response.text)) or ""):
                existing = await self.shipments(oid)
                if tracking and tracking in track_numbers(existing):
                    continue  # shipped meanwhile (an earlier attempt whose answer was lost, or another sender)
                self.judge(response, f"{what} (and no shipment of the order has tracking {tracking or '—'})")
            self.judge(response, what)

    async def ship_remaining(self, oid: str, order: dict[str, Any], payload: Payload, record: Record) -> bool:
        """Ship what statusctl shows shipped beyond what Magento has shipped; False when nothing is."""
        items = []
        for item in payload["items"]:
            if item["shipped"] <= 0:
                continue
            line = order_line(order, item)
            todo = min(item["shipped"] - _qty(line, "qty_shipped"), _qty_to_ship(line))
            if todo > 0:
                items.append({"order_item_id": int(line["item_id"]), "qty": todo})
        if not items:
            return False
        body: dict[str, Any] = {"items": items, "notify": True}
        if payload["note"]:
            body.update(appendComment=True, comment={"comment": payload["note"], "is_visible_on_front": 1})
        await self.call("POST", f"/order/{oid}/ship", f"ship order {oid}", json=body, uid=f"{record.uid}.ship")
        return True

    async def change_state(self, oid: str, action: str, record: Record) -> None:
        state = (await self.get_order(oid)).get("state")
        if {"cancel": state == "canceled", "hold": state == "holded", "unhold": state != "holded"}[action]:
            return  # already so: an earlier attempt did it, or someone in the admin
        await self.call("POST", f"/orders/{oid}/{action}", f"{action} order {oid}", uid=f"{record.uid}.{action}")
        if action == "cancel":
            # Magento answers `true` even when the order cannot be cancelled and nothing changed.
            state = (await self.get_order(oid)).get("state")
            if state != "canceled":
                raise Rejected(f"Magento did not cancel order {oid}: its state is {state} "
                               f"(orders that are complete, closed or on hold cannot be cancelled).")

    async def comment(self, oid: str, text: str, status: str | None, record: Record) -> None:
        order = await self.get_order(oid)  # fresh: a ship or hold above changed its status
        for old in order.get("status_histories") or []:
            if (isinstance(old, dict) and same_text(old.get("comment"), text)
                    and made_by_this_record(old.get("created_at"), record)):
                return
        history = {"comment": text, "is_customer_notified": 1, "is_visible_on_front": 1,
                   "parent_id": order["entity_id"],
                   # Without a status, some Magento versions blank the order's status: send the current one.
                   "status": status or order.get("status")}
        await self.call("POST", f"/orders/{oid}/comments", f"comment on order {oid}",
                        json={"statusHistory": history}, uid=f"{record.uid}.comment")

    async def check(self) -> str:
        found = await self.call("GET", "/orders", "list orders", params={"searchCriteria[pageSize]": "1"})
        total = found.get("total_count", "?") if isinstance(found, dict) else "?"
        return f"Magento REST V1 ({self.ctx.store.option('store_code', 'default')}): {plural(total, 'order')} visible"


def render(message: str, parameters: Any) -> str:
    """Magento's message with its `%1` / `%name` placeholders filled in from `parameters`."""
    if isinstance(parameters, list):
        values = {str(n): v for n, v in enumerate(parameters, start=1)}
    elif isinstance(parameters, dict):
        values = {str(k): v for k, v in parameters.items()}
    else:
        return message
    return re.sub(r"%(\w+)", lambda m: str(values[m[1]]) if m[1] in values else m[0], message)


def criteria(field: str, value: str) -> dict[str, str]:
    """searchCriteria for `field = value`."""
    prefix = "searchCriteria[filter_groups][0][filters][0]"
    return {f"{prefix}[field]": field, f"{prefix}[value]": value, f"{prefix}[condition_type]": "eq"}


def track_numbers(shipments: list[dict[str, Any]]) -> set[str]:
    return {str(t.get("track_number") or "").strip()
            for s in shipments for t in s.get("tracks") or [] if isinstance(t, dict)}


def earlier_untracked(shipments: list[dict[str, Any]], record: Record) -> set[tuple[tuple[str, int], ...]]:
    return {items_key([(str(i.get("order_item_id")), int(float(i.get("qty") or 0)))
                       for i in s.get("items") or [] if isinstance(i, dict)])
            for s in shipments if not s.get("tracks") and made_by_this_record(s.get("created_at"), record)}


def order_line(order: dict[str, Any], item: ItemPart | PackageItem) -> dict[str, Any]:
    """The order's own line for an item: by cart_line_id (item_id), else the top-level line with its SKU."""
    lines = [line for line in order.get("items") or [] if isinstance(line, dict)]
    wanted = (item["cart_line_id"] or "").strip()
    found = [line for line in lines if wanted and str(line.get("item_id")) == wanted]
    if not found:
        found = [line for line in lines if not line.get("parent_item_id") and line.get("sku") == item["sku"]]
    if len(found) != 1:
        raise Rejected(f"Item {item['sku']} (cart line {wanted or 'none'}) matches {len(found)} lines "
                       f"of Magento order {order.get('increment_id') or order.get('entity_id')}.")
    return found[0]


def order_item_id(order: dict[str, Any], item: PackageItem) -> int:
    return int(order_line(order, item)["item_id"])


def _qty(line: dict[str, Any], key: str) -> int:
    return int(float(line.get(key) or 0))


def _qty_to_ship(line: dict[str, Any]) -> int:
    return _qty(line, "qty_ordered") - _qty(line, "qty_shipped") - _qty(line, "qty_refunded") - _qty(line, "qty_canceled")


ADAPTER = Magento2Adapter
