"""Status events: the fixed set, their defaults and the user's choices for each."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from statusctl.core.db import Database
from statusctl.core.errors import InputError, NotFound, shown
from statusctl.core.labels import get_label


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


def set_event(
    db: Database,
    name: str,
    *,
    item_label: str | None = None,
    order_label: str | None = None,
    fires: bool | None = None,
    notify: bool | None = None,
) -> Event:
    """Change an event's choices; an empty label string clears that label."""
    event = get_event(db, name)
    values = {"item_label": event.item_label, "order_label": event.order_label}
    for kind, given in (("item", item_label), ("order", order_label)):
        if given is None:
            continue
        if not given.strip():
            values[f"{kind}_label"] = None
            continue
        label = get_label(db, given)
        if not label.fits(kind):
            raise InputError(
                f"Label {label.name!r} has scope {label.scope} and cannot be the {kind} label of {event.name}."
            )
        values[f"{kind}_label"] = label.name
    with db.tx() as conn:
        conn.execute(
            "UPDATE events SET item_label = ?, order_label = ?, fires = ?, notify = ? WHERE name = ?",
            (
                values["item_label"],
                values["order_label"],
                int(event.fires if fires is None else fires),
                int(event.notify if notify is None else notify),
                event.name,
            ),
        )
    return get_event(db, event.name)


def restore_defaults(db: Database) -> None:
    with db.tx() as conn:
        load_defaults(conn, overwrite=True)
