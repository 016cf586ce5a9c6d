"""A record's payload text (record.Payload) as `json.dumps(payload, separators=(",", ":"))` writes it.

Assembled from pieces rather than dumped from dicts: json.dumps of whole payloads
was the largest cost of a bulk apply. Same keys, same order, same text
(tests/test_payload_text.py holds it to that).
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _enc
from typing import TYPE_CHECKING

from statusctl.domain.record import PackagePart, js

if TYPE_CHECKING:
    from statusctl.domain.orderstate import ItemState, OrderState


def _opt(value: str | None) -> str:
    return "null" if value is None else _enc(value)


def payload_text(
    order: OrderState,
    order_from: str | None,
    item_from: dict[int, str | None],
    packages: list[PackagePart],
    notes: list[str],
    events: list[str],
    now: str,
) -> str:
    """The whole change to `order`: `item_from` holds the changed items' labels before the change."""
    items = ",".join([_item_json(item, item_from) for item in order.items])
    boxes = ",".join([_package_json(p) for p in packages])
    note = "\n".join(notes) if notes else None
    return (
        f'{{"store":{js(order.store)},"order":{{"number":{js(order.number)},"cart_order_id":{js(order.cart_order_id)},'
        f'"label":{js(order.label)},"previous_label":{js(order_from)},"postal_code":{js(order.postal_code)},'
        f'"date":{js(order.date)}}},"items":[{items}],"packages":[{boxes}],"note":{js(note)},'
        f'"events":[{",".join([_enc(e) for e in events])}],"changed_at":{js(now)}}}'
    )


def _item_json(item: ItemState, item_from: dict[int, str | None]) -> str:
    """One record.ItemPart; `changed` marks an item whose label the change touched."""
    if item.id in item_from:
        previous, changed = item_from[item.id], "true"
    else:
        previous, changed = item.label, "false"
    return (
        f'{{"sku":{_enc(item.sku)},"cart_line_id":{_opt(item.cart_line_id)},"name":{_enc(item.name)},'
        f'"label":{_opt(item.label)},"previous_label":{_opt(previous)},"quantity":{item.quantity:d},'
        f'"shipped":{item.shipped:d},"cancelled":{"true" if item.cancelled else "false"},"changed":{changed}}}'
    )


def _package_json(package: PackagePart) -> str:
    """One record.PackagePart."""
    items = ",".join(
        [f'{{"sku":{_enc(i["sku"])},"cart_line_id":{_opt(i["cart_line_id"])},"quantity":{i["quantity"]:d}}}'
         for i in package["items"]]
    )
    return (
        f'{{"tracking":{_opt(package["tracking"])},"carrier":{_opt(package["carrier"])},'
        f'"shipped_at":{_enc(package["shipped_at"])},"items":[{items}]}}'
    )
