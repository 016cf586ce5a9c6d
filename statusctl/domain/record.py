"""The shape of a status update record's payload: the whole change one command made to one order.

Stored as JSON in the stack; adapters read it. Every item of the order is
listed (OSS pages show them all); `changed` marks the items whose label this
command changed. `packages` holds the packages this command created or added
items to, each with the items (and quantities) it carries.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import TypedDict


class OrderPart(TypedDict):
    number: str
    cart_order_id: str | None
    label: str | None
    previous_label: str | None
    postal_code: str
    date: str


class ItemPart(TypedDict):
    sku: str
    cart_line_id: str | None
    name: str
    label: str | None
    previous_label: str | None
    quantity: int
    shipped: int
    cancelled: bool
    changed: bool


class PackageItem(TypedDict):
    sku: str
    cart_line_id: str | None
    quantity: int


class PackagePart(TypedDict):
    tracking: str | None
    carrier: str | None
    shipped_at: str
    items: list[PackageItem]


class Payload(TypedDict):
    store: str  # the order's own store (the destination may be the OSS store)
    order: OrderPart
    items: list[ItemPart]
    packages: list[PackagePart]
    note: str | None
    events: list[str]  # the events whose label changes this record carries, in firing order
    changed_at: str  # ISO 8601 UTC


def order_changed(payload: Payload) -> bool:
    """Whether this record changed the order's label (to another label, or cleared it)."""
    return payload["order"]["label"] != payload["order"]["previous_label"]


def new_order_label(payload: Payload) -> str | None:
    """The order's new label when this record changed it to one (None when unchanged or cleared)."""
    return payload["order"]["label"] if order_changed(payload) else None


def changed_items(payload: Payload) -> list[ItemPart]:
    return [item for item in payload["items"] if item["changed"]]


def js(value: object) -> str:
    """`value` exactly as `json.dumps(value, separators=(",", ":"))` writes it, cheaply for scalars.

    The change engine assembles each record's payload from such pieces and
    from fragments it keeps per item: one `json.dumps` of a whole payload cost
    more than all the rest of a bulk apply's work on the row.
    """
    if type(value) is str:
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value, separators=(",", ":"))
