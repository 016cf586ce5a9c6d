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

What PrestaShop's validators would refuse is refused before the first write,
so a record never fails half-way (status changed, tracking refused): each
tracking number must pass `Validate::isTrackingNumber` (ASCII letters and
digits, space and ``~:#,%&_=()[].?+-@/``) and this record's numbers must fit
the 64 characters of `order_carrier.tracking_number`; the note must pass
`Validate::isCleanHtml` (no script, no `on…=` event handler, no `script:`,
no iframe/form/input/embed/object tag). Notes longer than 1,600 characters
(the size of `message.message`) are cut to that size. The order carrier is
read before the status change too (an order without one fails then), and when
the numbers it holds and ours would not pass together (too long, or a number
written past the validator by SQL), ours replace them.

XML is built with ElementTree and parsed by `xmlsafe`, which refuses DTDs and
entities. Errors come as `<prestashop><errors><error><code/><message/>…`;
their text goes into the reason.
"""

from __future__ import annotations

import re
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
from statusctl.carts.mapping import read_mapping
from statusctl.domain import mapvalues
from statusctl.domain.record import Payload, new_order_label

TRACKING_CHARS = 64  # the size of order_carrier.tracking_number in PrestaShop's database
MESSAGE_CHARS = 1600  # the webservice's limit for messages.message
# Validate::isTrackingNumber (classes/Validate.php), without the /u flag: ASCII only.
TRACKING = re.compile(r"[~:#,%&_=()\[\].? +\-@/a-zA-Z0-9]+")
# Validate::isCleanHtml: the event attributes it refuses, then its three patterns (and no iframes).
_EVENTS = (
    "onmousedown|onmousemove|onmmouseup|onmouseover|onmouseout|onload|onunload|onfocus|onblur|onchange"
    "|onsubmit|ondblclick|onclick|onkeydown|onkeyup|onkeypress|onmouseenter|onmouseleave|onerror|onselect"
    "|onreset|onabort|ondragdrop|onresize|onactivate|onafterprint|onmoveend|onafterupdate|onbeforeactivate"
    "|onbeforecopy|onbeforecut|onbeforedeactivate|onbeforeeditfocus|onbeforepaste|onbeforeprint"
    "|onbeforeunload|onbeforeupdate|onmove|onbounce|oncellchange|oncontextmenu|oncontrolselect|oncopy|oncut"
    "|ondataavailable|ondatasetchanged|ondatasetcomplete|ondeactivate|ondrag|ondragend|ondragenter"
    "|onmousewheel|ondragleave|ondragover|ondragstart|ondrop|onerrorupdate|onfilterchange|onfinish"
    "|onfocusin|onfocusout|onhashchange|onhelp|oninput|onlosecapture|onmessage|onmouseup|onmovestart"
    "|onoffline|ononline|onpaste|onpropertychange|onreadystatechange|onresizeend|onresizestart|onrowenter"
    "|onrowexit|onrowsdelete|onrowsinserted|onscroll|onsearch|onselectionchange|onselectstart|onstart|onstop"
)
UNCLEAN_HTML = [re.compile(p, re.IGNORECASE | re.DOTALL) for p in (
    r"<\s*script", rf"({_EVENTS})\s*=", r"script:", r"<\s*(i?frame|form|input|embed|object)")]
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

    def __init__(self, client: httpx.AsyncClient, ctx: Context) -> None:
        super().__init__(client, ctx)
        self._states: dict[str, str] | None = None  # normalised name -> id_order_state

    # -- HTTP ----------------------------------------------------------------------------------

    async def call(self, method: str, path: str, what: str, params: dict[str, str] | None = None,
                   body: ET.Element | None = None) -> ET.Element:
        """One webservice request; the parsed answer, or TryLater / Rejected with PrestaShop's reason."""
        [key] = self.ctx.require_secrets("key")
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

    async def state_id(self, label: str) -> str:
        """The id_order_state of a label's mapping: the id itself, or the state with that name."""
        value = read_mapping(mapvalues.prestashop, label, self.ctx.require_mapping(label))
        if isinstance(value, int):
            return str(value)
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
        label = new_order_label(payload)
        target = None
        if label:
            target = await self.state_id(label)
        numbers = [p["tracking"].strip() for p in payload["packages"] if p["tracking"] and p["tracking"].strip()]
        note = (payload["note"] or "").strip()[:MESSAGE_CHARS]
        if not (target or numbers or note):
            return None
        refuse_invalid(numbers, note)
        order = await self.call("GET", f"orders/{order_id}", "PrestaShop order")
        carrier = await self.with_tracking(order_id, numbers) if numbers else None  # read before any write
        if target and xmlsafe.text_of(order, "order/current_state") != target:
            history = xmlsafe.element("order_history", {"id_order": order_id, "id_order_state": target})
            await self.call("POST", "order_histories", "PrestaShop order_histories", {"sendemail": "1"},
                            _wrap(history))
        if carrier is not None:
            await self.call("PUT", f"order_carriers/{carrier['id']}", "PrestaShop order_carriers", {"sendemail": "1"},
                            _wrap(xmlsafe.element("order_carrier", carrier)))
        if note:
            await self.add_message(order_id, order, note)
        return deciding_status()

    async def with_tracking(self, order_id: str, numbers: list[str]) -> dict[str, str | None] | None:
        """The order's carrier with this record's numbers added (only read); None when it holds them."""
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
        if len(value) > TRACKING_CHARS or not TRACKING.fullmatch(value):
            # Keep this record's numbers (checked to fit): the e-mail of each shows them all, and a
            # number written past PrestaShop's validator (by SQL) would make it refuse the object.
            value = ", ".join(missing)
        carrier["tracking_number"] = value
        return carrier

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


def refuse_invalid(numbers: list[str], note: str) -> None:
    """Rejected when PrestaShop's validators would refuse a tracking number or the note.

    Called before the first write: PrestaShop checks each write on its own, so a number
    it refuses after the status change was posted would leave the record half done.
    """
    for number in numbers:
        if not TRACKING.fullmatch(number):
            raise Rejected(f"Tracking number {number!r} has characters PrestaShop refuses (it takes ASCII "
                           "letters, digits, spaces and ~:#,%&_=()[].?+-@/ only); nothing was sent.")
    joined = ", ".join(dict.fromkeys(numbers))
    if len(joined) > TRACKING_CHARS:
        raise Rejected(f"The tracking numbers {joined!r} are {len(joined)} characters; a PrestaShop order "
                       f"carrier holds at most {TRACKING_CHARS}; nothing was sent.")
    if any(pattern.search(note) for pattern in UNCLEAN_HTML):
        raise Rejected("The note holds what PrestaShop refuses in a message (a script, an on…= event "
                       "handler, 'script:' or an iframe/form/input/embed/object tag); nothing was sent.")


def _wrap(resource: ET.Element) -> ET.Element:
    root = ET.Element("prestashop")
    root.append(resource)
    return root


ADAPTER = PrestaShopAdapter
