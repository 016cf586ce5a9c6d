"""The prestashop vendor fake: a webservice with orders, order states, histories, carriers, messages.

It checks what PrestaShop checks: the 32-character key as the Basic login,
the key's permission per resource and method, required fields, tracking
number characters (`Validate::isTrackingNumber`), and answers in its XML
shapes, errors as `<prestashop><errors><error><code/><message/>…`.
"""

from __future__ import annotations

import base64
import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

from statusctl.carts import xmlsafe
from statusctl.domain.matrix import DEFAULT_MAPPINGS
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .contract import ContractCase
from .fakeserver import Answer, Handler, Request

KEY = "ZR92FNY5UFRERNI3O9Z5QDHWKTP3YIIT"
STATES = [(1, "Awaiting check payment", "En attente du paiement par chèque"), (2, "Payment accepted", "Paiement accepté"),
          (3, "Processing in progress", "En cours de préparation"), (4, "Shipped", "Expédié"),
          (5, "Delivered", "Livré"), (6, "Canceled", "Annulé"), (7, "Refunded", "Remboursé")]
TRACKING = re.compile(r"^[~:#,%&_=\(\)\[\]\.\? \+\-@\/a-zA-Z0-9]+$")
# Validate::isCleanHtml, shortened to the patterns and a few of its event names (classes/Validate.php).
UNCLEAN = re.compile(r"<\s*script|(onclick|onload|onerror|onmouseover)\s*=|script:|<\s*(i?frame|form|input|embed|object)",
                     re.IGNORECASE | re.DOTALL)
ALL = ("get", "put", "post", "patch", "delete", "head")
XLINK = "http://www.w3.org/1999/xlink"


def xml_answer(status: int, root: ET.Element, **headers: str) -> Answer:
    root.set("xmlns:xlink", XLINK)
    return Answer(status, xmlsafe.document(root), {"Content-Type": "text/xml;charset=utf-8", "PSWS-Version": "8.2.0",
                                                   **headers})


def error(status: int, code: int, message: str, **headers: str) -> Answer:
    root = ET.Element("prestashop")
    err = ET.SubElement(ET.SubElement(root, "errors"), "error")
    ET.SubElement(err, "code").text = str(code)
    ET.SubElement(err, "message").text = message
    return xml_answer(status, root, **headers)


def listing(name: str, rows: list[dict[str, Any]], one: str) -> ET.Element:
    root = ET.Element("prestashop")
    box = ET.SubElement(root, name)
    for row in rows:
        box.append(resource(one, row))
    return root


def resource(tag: str, row: dict[str, Any]) -> ET.Element:
    node = ET.Element(tag)
    for key, value in row.items():
        child = ET.SubElement(node, key)
        if isinstance(value, dict):  # multilingual
            for lang, text in value.items():
                ET.SubElement(child, "language", {"id": str(lang)}).text = text
        else:
            child.text = "" if value is None else str(value)
    return node


class PrestaShopFake:
    def __init__(self) -> None:
        self.ids = itertools.count(100)
        self.orders: dict[str, dict[str, Any]] = {
            "501": {"id": 501, "id_customer": 7, "id_cart": 9, "current_state": 3, "reference": "XKBKNABJK"}}
        self.carriers: dict[str, dict[str, Any]] = {
            "11": {"id": 11, "id_order": 501, "id_carrier": 2, "id_order_invoice": 1, "weight": "0.500000",
                   "shipping_cost_tax_excl": "7.000000", "shipping_cost_tax_incl": "8.400000",
                   "tracking_number": "", "date_add": "2026-11-20 09:00:00"}}
        self.histories: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.permissions = {r: ALL for r in ("orders", "order_states", "order_histories", "order_carriers",
                                             "messages", "customers")}
        self.hostile = False  # answer with an entity declaration (a billion-laughs shape)

    def __call__(self, req: Request) -> Answer:
        if "authorization" not in req.headers:
            return error(401, 16, "Please enter the authentication key as the login. No password required",
                         **{"WWW-Authenticate": 'Basic realm="Welcome to PrestaShop Webservice"'})
        login, _, _password = base64.b64decode(req.headers["authorization"].split()[-1]).decode().partition(":")
        if len(login) != 32:
            return error(401, 18, "Invalid authentication key format")
        if login != KEY:
            return error(401, 20, "Authentification key is not active")
        if self.hostile:
            return Answer(200, b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
                               b"<prestashop>&b;</prestashop>", {"Content-Type": "text/xml"})
        parts = [p for p in req.path.split("/") if p]
        if not parts or parts[0] != "api":
            return Answer(404, "Not Found")
        if len(parts) == 1:
            return self.api_listing()
        name, ident = parts[1], (parts[2] if len(parts) > 2 else None)
        if name not in self.permissions:
            return error(400, 22, f'Resource of type "{name}" does not exists')
        if req.method.lower() not in self.permissions[name]:
            return error(405, 26, f"Method {req.method} is not allowed for the resource {name} with this key")
        body = None
        if req.method in ("POST", "PUT"):
            try:
                body = xmlsafe.parse(req.body)
            except xmlsafe.UnsafeXML:
                return error(400, 127, "XML error : String could not be parsed as XML")
        handler = getattr(self, f"{req.method.lower()}_{name}", None)
        if handler is None:
            return error(405, 26, f"Method {req.method} is not valid for {name}")
        answer: Answer = handler(req, ident, body)
        return answer

    def api_listing(self) -> Answer:
        root = ET.Element("prestashop")
        api = ET.SubElement(root, "api", {"shopName": "Statusctl Test"})
        for name, methods in self.permissions.items():
            ET.SubElement(api, name, {"xlink:href": f"http://shop.test/api/{name}",
                                      **{m: "true" if m in methods else "false" for m in ALL}})
        return xml_answer(200, root)

    @staticmethod
    def _filter(req: Request, rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        wanted = req.arg(f"filter[{key}]")
        if wanted is None:
            return rows
        values = set(wanted.strip("[]").split("|"))
        return [r for r in rows if str(r[key]) in values]

    def get_orders(self, req: Request, ident: str | None, body: Any) -> Answer:
        order = self.orders.get(ident or "")
        if order is None:
            return error(404, 87, f"Invalid ID ({ident})" if ident else "list of orders not served here")
        return xml_answer(200, listing_one("order", order))

    def get_order_states(self, req: Request, ident: str | None, body: Any) -> Answer:
        rows = [{"id": i, "send_email": 1, "shipped": int(i == 4), "name": {1: en, 2: fr}} for i, en, fr in STATES]
        return xml_answer(200, listing("order_states", rows, "order_state"))

    def post_order_histories(self, req: Request, ident: str | None, body: ET.Element) -> Answer:
        row = {k: xmlsafe.text_of(body, f"order_history/{k}") for k in ("id_order", "id_order_state")}
        for key, value in row.items():
            if not value:
                return error(400, 41, f'parameter "{key}" required')
        if row["id_order"] not in self.orders:
            return error(400, 85, 'Validation error: "Property OrderHistory->id_order is not valid"')
        if int(row["id_order_state"]) not in {s[0] for s in STATES}:
            return error(400, 85, 'Validation error: "Property OrderHistory->id_order_state is not valid"')
        history = {"id": next(self.ids), **row, "sendemail": req.arg("sendemail") == "1"}
        self.histories.append(history)
        self.orders[row["id_order"]]["current_state"] = int(row["id_order_state"])
        return xml_answer(201, listing_one("order_history", history))

    def get_order_carriers(self, req: Request, ident: str | None, body: Any) -> Answer:
        rows = self._filter(req, list(self.carriers.values()), "id_order")
        return xml_answer(200, listing("order_carriers", rows, "order_carrier"))

    def put_order_carriers(self, req: Request, ident: str | None, body: ET.Element) -> Answer:
        node = body.find("order_carrier")
        if ident not in self.carriers or node is None:
            return error(404, 87, f"Invalid ID ({ident})")
        row = {child.tag: (child.text or "") for child in node}
        if row.get("id") != ident:
            return error(400, 90, "id is invalid or does not match the URL")
        for key in ("id_order", "id_carrier"):  # required: a PUT replaces the whole object
            if not row.get(key):
                return error(400, 41, f'parameter "{key}" required')
        if row.get("tracking_number") and not TRACKING.match(row["tracking_number"]):
            return error(400, 85, 'Validation error: "Property OrderCarrier->tracking_number is not valid"')
        self.carriers[ident] = {**self.carriers[ident], **row, "sendemail": req.arg("sendemail") == "1"}
        return xml_answer(200, listing_one("order_carrier", self.carriers[ident]))

    def get_messages(self, req: Request, ident: str | None, body: Any) -> Answer:
        return xml_answer(200, listing("messages", self._filter(req, self.messages, "id_order"), "message"))

    def post_messages(self, req: Request, ident: str | None, body: ET.Element) -> Answer:
        node = body.find("message")
        row = {child.tag: (child.text or "") for child in node} if node is not None else {}
        if not row.get("message"):
            return error(400, 41, 'parameter "message" required')
        if UNCLEAN.search(row["message"]):
            return error(400, 85, 'Validation error: "Property Message->message is not valid"')
        if len(row["message"]) > 1600:
            return error(400, 85, 'Validation error: "Property Message->message length (1601) must be lower than 1600"')
        message = {"id": next(self.ids), **row}
        self.messages.append(message)
        return xml_answer(201, listing_one("message", message))


def listing_one(tag: str, row: dict[str, Any]) -> ET.Element:
    root = ET.Element("prestashop")
    root.append(resource(tag, row))
    return root


def make_store(base_url: str, good: bool = True, **options: str) -> Store:
    return Store("shop", "prestashop", base_url, {"key": {"value": KEY if good else "WRONGWRONGWRONGWRONGWRONGWRONG12"}},
                 dict(options))


def secrets(good: bool = True) -> dict[str, str]:
    return {"key": KEY if good else "WRONGWRONGWRONGWRONGWRONGWRONG12"}


def mappings() -> dict[str, dict[str, str]]:
    return {label.lower(): {"prestashop": m["prestashop"]} for label, m in DEFAULT_MAPPINGS.items()
            if "prestashop" in m}


def effects(handler: Handler, payload: Payload) -> int:
    """Order histories that moved the order to Shipped, when its carrier holds the tracking number."""
    assert isinstance(handler, PrestaShopFake)
    order_id = payload["order"]["cart_order_id"] or payload["order"]["number"]
    tracking = payload["packages"][0]["tracking"] or ""
    held = any(tracking in str(c["tracking_number"]) for c in handler.carriers.values() if str(c["id_order"]) == order_id)
    return sum(h["id_order"] == order_id and h["id_order_state"] == "4" for h in handler.histories) if held else 0


CASE = ContractCase(cart="prestashop", make_fake=PrestaShopFake, store=make_store, secrets=secrets, effects=effects,
                    mappings=mappings())
