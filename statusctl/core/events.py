"""Status events: the fixed set, their defaults and the user's choices for each."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from statusctl.core.labels import Label, all_labels, find_label
from statusctl.domain.errors import InputError, NotFound, shown
from statusctl.storage.db import Database


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


def load_defaults(conn: sqlite3.Connection, *, overwrite: bool) -> None:
    """Insert the default events; with `overwrite`, restore every event to its default."""
    verb = "REPLACE" if overwrite else "IGNORE"
    conn.executemany(
        f"INSERT OR {verb} INTO events (name, item_label, order_label, fires, notify) VALUES (?, ?, ?, ?, ?)",
        [(n, il, ol, int(f), int(no)) for n, _, il, ol, f, no in DEFAULT_EVENTS],
    )


def check_event(name: str) -> str:
    clean = name.strip().lower()
    if clean not in EVENT_NAMES:
        raise NotFound(f"Unknown status event {shown(name)}; events: {', '.join(EVENT_NAMES)}.")
    return clean


def all_events(db: Database) -> list[Event]:
    rows = {r["name"]: r for r in db.query("SELECT * FROM events")}
    return [
        Event(n, rows[n]["item_label"], rows[n]["order_label"], bool(rows[n]["fires"]), bool(rows[n]["notify"]))
        for n in EVENT_NAMES
        if n in rows
    ]


def events_by_name(db: Database) -> dict[str, Event]:
    return {e.name: e for e in all_events(db)}


def get_event(db: Database, name: str) -> Event:
    clean = check_event(name)
    events = events_by_name(db)
    if clean not in events:
        raise NotFound(f"Event {clean!r} is missing; run `statusctl init`.")
    return events[clean]


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


def write_event(conn: sqlite3.Connection, event: Event) -> None:
    """Save an event's choices inside the caller's writing transaction."""
    conn.execute(
        "UPDATE events SET item_label = ?, order_label = ?, fires = ?, notify = ? WHERE name = ?",
        (event.item_label, event.order_label, int(event.fires), int(event.notify), event.name),
    )


def set_event(
    db: Database,
    name: str,
    *,
    item_label: str | None = None,
    order_label: str | None = None,
    fires: bool | None = None,
    notify: bool | None = None,
) -> Event:
    """Change an event's choices; an empty label string (or '-') clears that label."""
    event = change_event(all_labels(db), get_event(db, name), item_label=item_label, order_label=order_label,
                         fires=fires, notify=notify)
    with db.tx() as conn:
        write_event(conn, event)
    return get_event(db, event.name)


def restore_defaults(db: Database) -> None:
    with db.tx() as conn:
        load_defaults(conn, overwrite=True)
