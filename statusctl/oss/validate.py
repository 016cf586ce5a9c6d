"""Checking an update's JSON body before it touches the database; every refusal names the field."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any, cast

from statusctl.domain.errors import shown
from statusctl.domain.record import ItemPart, OrderPart, PackageItem, PackagePart, Payload

EVENT_TYPE = "order.status_changed"
MAX_TEXT = 1000  # labels, names, skus, tracking numbers
MAX_NOTE = 10_000
MAX_ITEMS = 5000


# A time is shown in the customer's zone, and zone offsets stay under a day: a time within a
# day of either end of the calendar cannot be shown everywhere, so it is refused when it comes.
EARLIEST = datetime(1, 1, 2, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 31, tzinfo=timezone.utc)


class Invalid(Exception):
    """The body is not a valid update; the message says which field and why (a 422 answer)."""


def moment(text: str) -> date | datetime | None:
    """The date (YYYY-MM-DD) or date-time (naive or not) an ISO 8601 text names, else None."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def showable(when: datetime, value: str, where: str) -> datetime:
    """`when` (naive: UTC) in UTC, or Invalid when some time zone could not show it."""
    try:
        utc = when.replace(tzinfo=when.tzinfo or timezone.utc).astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise Invalid(
            f"{where} ({shown(value, 40)}) is too near the end of the calendar to be shown in every"
            " time zone (give a time between 0001-01-02 and 9999-12-30)"
        )
    return utc


def parse_time(value: str, where: str) -> datetime:
    """An ISO 8601 date-time with an offset (or 'Z') that every time zone can show, as UTC."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Invalid(f"{where} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise Invalid(f"{where} has no time zone offset (send UTC, e.g. 2024-05-01T12:00:00Z)")
    return showable(when, value, where)


def _order_date(text: str) -> str:
    """The order date as sent (other text is shown as it is); a date-time must be showable."""
    when = moment(text)
    if isinstance(when, datetime):
        showable(when, text, "order.date")
    return text


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{where} must be an object")
    return value


def _list(value: Any, where: str, limit: int = MAX_ITEMS) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(f"{where} must be a list")
    if len(value) > limit:
        raise Invalid(f"{where} has more than {limit} entries")
    return value


def _text(obj: dict[str, Any], key: str, where: str, *, limit: int = MAX_TEXT) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise Invalid(f"{_at(where, key)} must be a string")
    if len(value) > limit:
        raise Invalid(f"{_at(where, key)} is longer than {limit} characters")
    if "\x00" in value:  # PostgreSQL's text cannot hold one: refused alike on either backend
        raise Invalid(f"{_at(where, key)} must not contain NUL characters")
    return value


def _name(obj: dict[str, Any], key: str, where: str) -> str:
    value = _text(obj, key, where).strip()
    if not value:
        raise Invalid(f"{_at(where, key)} must not be empty")
    if any(ord(ch) < 32 for ch in value):
        raise Invalid(f"{_at(where, key)} must not contain control characters")
    return value


def _opt(obj: dict[str, Any], key: str, where: str, *, limit: int = MAX_TEXT) -> str | None:
    if obj.get(key) is None:
        return None
    return _text(obj, key, where, limit=limit)


def _count(obj: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(f"{_at(where, key)} must be a whole number >= 0")
    return value


def _flag(obj: dict[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise Invalid(f"{_at(where, key)} must be true or false")
    return value


def _order(raw: Any) -> OrderPart:
    obj = _obj(raw, "order")
    return {
        "number": _name(obj, "number", "order"),
        "cart_order_id": _opt(obj, "cart_order_id", "order"),
        "label": _opt(obj, "label", "order"),
        "previous_label": _opt(obj, "previous_label", "order"),
        "postal_code": _opt(obj, "postal_code", "order", limit=40) or "",
        "date": _order_date(_opt(obj, "date", "order") or ""),
    }


def _item(raw: Any, where: str) -> ItemPart:
    obj = _obj(raw, where)
    sku = _name(obj, "sku", where)
    quantity = _count(obj, "quantity", where)
    shipped = _count(obj, "shipped", where, 0)
    if shipped > quantity:
        raise Invalid(f"{where}.shipped ({shipped}) is more than its quantity ({quantity})")
    return {
        "sku": sku,
        "cart_line_id": _opt(obj, "cart_line_id", where),
        "name": _opt(obj, "name", where) or sku,
        "label": _opt(obj, "label", where),
        "previous_label": _opt(obj, "previous_label", where),
        "quantity": quantity,
        "shipped": shipped,
        "cancelled": _flag(obj, "cancelled", where),
        "changed": _flag(obj, "changed", where),
    }


def _package(raw: Any, where: str, changed_at: str) -> PackagePart:
    obj = _obj(raw, where)
    shipped_at = _opt(obj, "shipped_at", where) or changed_at
    parse_time(shipped_at, f"{where}.shipped_at")
    items: list[PackageItem] = []
    for i, part in enumerate(_list(obj.get("items", []), f"{where}.items")):
        pwhere = f"{where}.items[{i}]"
        pobj = _obj(part, pwhere)
        items.append(
            {
                "sku": _name(pobj, "sku", pwhere),
                "cart_line_id": _opt(pobj, "cart_line_id", pwhere),
                "quantity": _count(pobj, "quantity", pwhere),
            }
        )
    tracking = _opt(obj, "tracking", where)
    return {
        "tracking": tracking.strip() if tracking and tracking.strip() else None,
        "carrier": _opt(obj, "carrier", where),
        "shipped_at": shipped_at,
        "items": items,
    }


def parse_update(body: bytes) -> tuple[Payload, datetime]:
    """The payload of an `order.status_changed` body and its `changed_at` (UTC), or Invalid."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the body is not valid JSON") from None
    obj = _obj(raw, "the body")
    if obj.get("type") != EVENT_TYPE:
        raise Invalid(f"type must be {EVENT_TYPE!r}")
    changed_text = _text(obj, "changed_at", "")
    changed_at = parse_time(changed_text, "changed_at")
    events = _list(obj.get("events", []), "events", 100)
    if not all(isinstance(e, str) and len(e) <= 100 for e in events):
        raise Invalid("events must be a list of short strings")
    payload: Payload = {
        "store": _name(obj, "store", ""),
        "order": _order(obj.get("order")),
        "items": [_item(it, f"items[{i}]") for i, it in enumerate(_list(obj.get("items"), "items"))],
        "packages": [
            _package(p, f"packages[{i}]", changed_text)
            for i, p in enumerate(_list(obj.get("packages", []), "packages"))
        ],
        "note": _opt(obj, "note", "", limit=MAX_NOTE),
        "events": cast(list[str], events),
        "changed_at": changed_at.isoformat(),
    }
    return payload, changed_at
