"""Status events: the fixed set, their defaults, and what changing one's choices means.

Stored by statusctl.storage.events; set and restored by statusctl.core.events.
"""

from __future__ import annotations

from dataclasses import dataclass

from statusctl.domain.errors import InputError, NotFound, shown
from statusctl.domain.labels import Label, find_label


@dataclass(frozen=True)
class Event:
    name: str
    item_label: str | None
    order_label: str | None
    fires: bool
    notify: bool


# (name, fired by, item label, order label, fires, notify) — DESIGN.md §2.
DEFAULT_EVENTS: list[tuple[str, str, str | None, str | None, bool, bool]] = [
    ("order-imported", "orders import, once per new order", None, "Order Received", True, False),
    ("payment-received", "fire", None, "Payment Received", False, False),
    ("order-approved", "fire", None, "Processing", True, True),
    ("order-on-hold", "fire", None, "On Hold", False, False),
    ("item-backordered", "fire --item", "Backordered", None, True, True),
    ("dropship-ordered", "fire --item", "Drop Ship Ordered", None, False, False),
    ("item-shipped", "ship, each item now fully shipped", "Item Shipped", None, True, True),
    ("order-partially-shipped", "ship, some but not all items shipped", None, "Partially Shipped", True, True),
    ("order-shipped", "ship, every non-cancelled item shipped", None, "Order Shipped", True, True),
    ("item-cancelled", "cancel --item", "Item Cancelled", None, True, True),
    ("order-cancelled", "cancel of the whole order", "Item Cancelled", "Cancelled", True, True),
    ("item-returned", "fire --item", "Item Returned", None, False, False),
]
EVENT_NAMES = [e[0] for e in DEFAULT_EVENTS]
FIRED_BY = {e[0]: e[1] for e in DEFAULT_EVENTS}


def default_events() -> dict[str, Event]:
    """The shipped status events (DESIGN.md §2), as "Load Default Status Events" restores them."""
    return {n: Event(n, il, ol, f, no) for n, _, il, ol, f, no in DEFAULT_EVENTS}


def check_event(name: str) -> str:
    clean = name.strip().lower()
    if clean not in EVENT_NAMES:
        raise NotFound(f"Unknown status event {shown(name)}; events: {', '.join(EVENT_NAMES)}.")
    return clean


def change_event(
    labels: list[Label],
    event: Event,
    *,
    item_label: str | None = None,
    order_label: str | None = None,
    fires: bool | None = None,
    notify: bool | None = None,
) -> Event:
    """The event with these changes, checked against the labels; '' or '-' clears a label, None keeps it."""

    def pick(given: str | None, current: str | None, kind: str) -> str | None:
        if given is None:
            return current
        if given.strip() in ("", "-", "–"):
            return None
        label = find_label(labels, given)
        if not label.fits(kind):
            raise InputError(
                f"Label {shown(label.name)} has scope {label.scope} and cannot be the {kind} label of {event.name}."
            )
        return label.name

    return Event(
        event.name,
        pick(item_label, event.item_label, "item"),
        pick(order_label, event.order_label, "order"),
        event.fires if fires is None else fires,
        event.notify if notify is None else notify,
    )
