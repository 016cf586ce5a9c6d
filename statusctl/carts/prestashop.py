"""prestashop: the webservice (`/api/…`, XML), authenticated with the webservice key.

Order status: a new `order_histories` entry with the label's `id_order_state`,
posted with `sendemail=1` so PrestaShop sends the state's customer e-mail. A
mapping may be the state id or its name; names are resolved from
`/api/order_states` in any of the shop's languages. The order is read first
and nothing is posted when its `current_state` already is the target, so a
resend adds no second history line (and no second e-mail).

Tracking: the order's `order_carriers` entry gets the package tracking numbers
(added to those it holds, comma-separated; a PUT sends the whole object back).
Numbers it already holds are not sent again.

Customer note: a `messages` entry with `private=0` on the order, unless the
order already holds a message with the same text.

XML is built with ElementTree and parsed by `xmlsafe`, which refuses DTDs and
entities. Errors come as `<prestashop><errors><error><code/><message/>…`;
their text goes into the reason.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx

from statusctl.carts import xmlsafe
from statusctl.carts.base import (
    Adapter,
    Context,
    DeliveryError,
    Record,
    Rejected,
    deciding_status,
    judge_status,
)
from statusctl.core.record import Payload

TRACKING_CHARS = 64  # the size of order_carrier.tracking_number in PrestaShop's database
MESSAGE_CHARS = 1600  # the webservice's limit for messages.message
# What statusctl needs from the key, as `/api/` lists it: resource -> methods.
NEEDS = {"orders": ("get",), "order_states": ("get",), "order_histories": ("post",),
         "order_carriers": ("get", "put"), "messages": ("get", "post")}


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def error_text(body: str) -> str:
    """`code: message; …` of a PrestaShop error document ('' when the body has none)."""
    try:
        root = xmlsafe.parse(body)
    except xmlsafe.UnsafeXML:
        return ""
    parts = []
    for err in root.iter("error"):
        code, message = xmlsafe.text_of(err, "code"), xmlsafe.text_of(err, "message")
        parts.append(f"{code}: {message}" if code else message)
    return "; ".join(p for p in parts if p)


def fields_of(node: ET.Element) -> dict[str, str | None]:
    """The simple child elements of a resource (`<id>`, `<id_order>`, …) as name -> text."""
    return {child.tag: (child.text or "").strip() for child in node if len(child) == 0}


class PrestaShopAdapter(Adapter):
    cart = "prestashop"
    can_test = True

    def __init__(self, client: httpx.AsyncClient, ctx: Context) -> None:
        super().__init__(client, ctx)
        self._states: dict[str, str] | None = None  # normalised name -> id_order_state

    # -- HTTP ----------------------------------------------------------------------------------

    async def call(self, method: str, path: str, what: str, params: dict[str, str] | None = None,
                   body: ET.Element | None = None) -> ET.Element:
        """One webservice request; the parsed answer, or TryLater / Rejected with PrestaShop's reason."""
        key = self.ctx.secrets.get("key")
        if not key:
            raise Rejected(f"Store {self.ctx.store.name!r} has no secret 'key' (the webservice key).")
        kwargs: dict[str, Any] = {"params": params or {}, "auth": (key, ""), "headers": {"Accept": "application/xml"}}
        if body is not None:
            kwargs["content"] = xmlsafe.document(body)
            kwargs["headers"]["Content-Type"] = "application/xml; charset=utf-8"
        response = await self.request(method, f"{self.ctx.store.url.rstrip('/')}/api/{path}", **kwargs)
        try:
            judge_status(self.ctx, response, what)
        except DeliveryError as err:
            detail = error_text(response.text)
            if detail:
                err.reason = f"{err.reason}: {self.ctx.scrub(detail)}"
                err.args = (err.reason,)
            raise
        try:
            return xmlsafe.parse(response.content)
        except xmlsafe.UnsafeXML as exc:
            raise Rejected(f"{what}: {exc}", status=response.status_code,
                           answer=self.ctx.excerpt(response.text)) from None

    # -- reads ---------------------------------------------------------------------------------

    async def check(self) -> str:
        root = await self.call("GET", "", "PrestaShop webservice")
        api = root.find("api")
        if api is None:
            raise Rejected("PrestaShop webservice: the answer lists no resources.")
        resources = {child.tag: child.attrib for child in api}
        missing = [f"{name} {m.upper()}" for name, methods in NEEDS.items() for m in methods
                   if name not in resources or resources[name].get(m, "true") != "true"]
        if missing:
            raise Rejected(f"The webservice key may not use: {', '.join(missing)}; allow them in "
                           "Advanced Parameters > Webservice.")
        shop = api.get("shopName")
        return f"PrestaShop webservice{f' of {shop}' if shop else ''}: {len(resources)} resources allowed"

    async def state_id(self, value: str) -> str:
        """The id_order_state of a mapping: the id itself, or the state with that name."""
        if value.strip().isdigit():
            return value.strip()
        if self._states is None:
            root = await self.call("GET", "order_states", "PrestaShop order_states", {"display": "full"})
            self._states = {}
            for state in root.iter("order_state"):
                for name in state.findall("name"):
                    for text in [lang.text for lang in name] or [name.text]:  # one per language, or plain
                        if text and text.strip():
                            self._states.setdefault(_norm(text), xmlsafe.text_of(state, "id"))
        found = self._states.get(_norm(value))
        if not found:
            known = ", ".join(sorted({k for k in self._states})) or "none"
            raise Rejected(f"PrestaShop has no order state named {value!r} (states: {known}); fix the label's "
                           "prestashop mapping.")
        return found

    # -- delivery ------------------------------------------------------------------------------

    async def deliver(self, record: Record) -> int | None:
        payload: Payload = record.payload  # type: ignore[assignment]
        order_id = (payload["order"]["cart_order_id"] or payload["order"]["number"]).strip()
        if not order_id.isdigit():
            raise Rejected(f"PrestaShop needs the numeric order id; order {payload['order']['number']!r} has "
                           "none (import it with cart_order_id).")
        label = payload["order"]["label"]
        target = None
        if label and label != payload["order"]["previous_label"]:
            target = await self.state_id(self.ctx.require_mapping(label))
        numbers = [p["tracking"].strip() for p in payload["packages"] if p["tracking"] and p["tracking"].strip()]
        note = (payload["note"] or "").strip()[:MESSAGE_CHARS]
        if not (target or numbers or note):
            return None
        order = await self.call("GET", f"orders/{order_id}", "PrestaShop order")
        if target and xmlsafe.text_of(order, "order/current_state") != target:
            history = xmlsafe.element("order_history", {"id_order": order_id, "id_order_state": target})
            await self.call("POST", "order_histories", "PrestaShop order_histories", {"sendemail": "1"},
                            _wrap(history))
        if numbers:
            await self.add_tracking(order_id, numbers)
        if note:
            await self.add_message(order_id, order, note)
        return deciding_status()

    async def add_tracking(self, order_id: str, numbers: list[str]) -> None:
        root = await self.call("GET", "order_carriers", "PrestaShop order_carriers",
                               {"filter[id_order]": f"[{order_id}]", "display": "full"})
        carriers = [fields_of(node) for node in root.iter("order_carrier")]
        if not carriers:
            raise Rejected(f"PrestaShop order {order_id} has no carrier to hold a tracking number.")
        carrier = max(carriers, key=lambda c: int(c.get("id") or 0))
        held = [n.strip() for n in (carrier.get("tracking_number") or "").split(",") if n.strip()]
        missing = [n for n in dict.fromkeys(numbers) if n not in held]
        if not missing:
            return
        value = ", ".join(held + missing)
        if len(value) > TRACKING_CHARS:  # keep this record's numbers; the e-mail of each shows them all
            value = ", ".join(missing)[:TRACKING_CHARS]
        carrier["tracking_number"] = value
        await self.call("PUT", f"order_carriers/{carrier['id']}", "PrestaShop order_carriers", {"sendemail": "1"},
                        _wrap(xmlsafe.element("order_carrier", carrier)))

    async def add_message(self, order_id: str, order: ET.Element, note: str) -> None:
        root = await self.call("GET", "messages", "PrestaShop messages",
                               {"filter[id_order]": f"[{order_id}]", "display": "full"})
        if any(_norm(xmlsafe.text_of(m, "message")) == _norm(note) for m in root.findall("messages/message")):
            return
        message = xmlsafe.element("message", {
            "id_order": order_id,
            "id_customer": xmlsafe.text_of(order, "order/id_customer", "0"),
            "id_cart": xmlsafe.text_of(order, "order/id_cart", "0"),
            "message": note,
            "private": "0",
        })
        await self.call("POST", "messages", "PrestaShop messages", None, _wrap(message))


def _wrap(resource: ET.Element) -> ET.Element:
    root = ET.Element("prestashop")
    root.append(resource)
    return root


ADAPTER = PrestaShopAdapter
