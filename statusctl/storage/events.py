"""The stored status events (table `events`): the user's choices for each of the fixed set."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from statusctl.domain.events import Event
from statusctl.storage.rows import rows


def insert(conn: Any, events: Iterable[Event], *, overwrite: bool) -> None:
    """Insert the events missing; with `overwrite`, replace the choices of those present too."""
    on_conflict = ("DO UPDATE SET item_label = excluded.item_label, order_label = excluded.order_label, "
                   "fires = excluded.fires, notify = excluded.notify") if overwrite else "DO NOTHING"
    conn.executemany(
        "INSERT INTO events (name, item_label, order_label, fires, notify) VALUES (?, ?, ?, ?, ?) "
        f"ON CONFLICT(name) {on_conflict}",
        [(e.name, e.item_label, e.order_label, int(e.fires), int(e.notify)) for e in events],
    )


def read_all(src: Any) -> dict[str, Event]:
    """The stored events by name (on a Database or inside a transaction)."""
    return {r["name"]: Event(r["name"], r["item_label"], r["order_label"], bool(r["fires"]), bool(r["notify"]))
            for r in rows(src, "SELECT * FROM events")}


def write(conn: Any, event: Event) -> None:
    """Save an event's choices inside the caller's writing transaction."""
    conn.execute(
        "UPDATE events SET item_label = ?, order_label = ?, fires = ?, notify = ? WHERE name = ?",
        (event.item_label, event.order_label, int(event.fires), int(event.notify), event.name),
    )


def any_stored(src: Any) -> bool:
    """Whether the events were ever loaded (a database `init` has seen)."""
    return bool(rows(src, "SELECT 1 FROM events LIMIT 1"))
