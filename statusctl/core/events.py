"""Status events: the user's choices for each, read, set and restored to the defaults.

The fixed set, its defaults and what a change means are domain (statusctl.domain.events);
the statements are statusctl.storage.events.
"""

from __future__ import annotations

from typing import Any

from statusctl.core.labels import all_labels
from statusctl.domain.errors import NotFound
from statusctl.domain.events import EVENT_NAMES, Event, change_event, check_event, default_events
from statusctl.storage import events as stored
from statusctl.storage.db import Database


def load_defaults(conn: Any, *, overwrite: bool) -> None:
    """Insert the default events; with `overwrite`, restore every event to its default."""
    stored.insert(conn, default_events().values(), overwrite=overwrite)


def all_events(db: Database) -> list[Event]:
    """The stored events in the grid's order."""
    events = stored.read_all(db)
    return [events[n] for n in EVENT_NAMES if n in events]


def get_event(db: Database, name: str) -> Event:
    clean = check_event(name)
    events = stored.read_all(db)
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
    """Change an event's choices; an empty label string (or '-') clears that label."""
    event = change_event(all_labels(db), get_event(db, name), item_label=item_label, order_label=order_label,
                         fires=fires, notify=notify)
    with db.tx() as conn:
        stored.write(conn, event)
    return get_event(db, event.name)


def restore_defaults(db: Database) -> None:
    with db.tx() as conn:
        load_defaults(conn, overwrite=True)
