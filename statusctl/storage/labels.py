"""The stored labels (tables `labels`, `label_maps`): read, add, map and remove.

Label names compare case-insensitively on both backends (SQLite's COLLATE NOCASE,
PostgreSQL's nondeterministic `nocase` collation on the same columns), so the
statements compare names with a plain `=`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from statusctl.domain.labels import Label


def insert_builtins(conn: Any, labels: Iterable[tuple[str, str]], mappings: Iterable[tuple[str, str, str]]) -> None:
    """The built-in labels (marked built in when a user label had the name) and mappings not set yet."""
    conn.executemany(
        "INSERT INTO labels (name, scope, builtin) VALUES (?, ?, 1) ON CONFLICT(name) DO UPDATE SET builtin = 1",
        list(labels),
    )
    conn.executemany(
        "INSERT INTO label_maps (label, cart, value) VALUES (?, ?, ?) ON CONFLICT(label, cart) DO NOTHING",
        list(mappings),
    )


def read_all(db: Any) -> list[Label]:
    """Every label with its mappings: built-ins first, then the user's in the order they were added."""
    maps: dict[str, dict[str, str]] = {}
    for row in db.query("SELECT label, cart, value FROM label_maps ORDER BY cart"):
        maps.setdefault(row["label"].lower(), {})[row["cart"]] = row["value"]
    # The order of adding: SQLite's rowid (on PostgreSQL a column of that name, migration 0006).
    return [
        Label(r["name"], r["scope"], bool(r["builtin"]), maps.get(r["name"].lower(), {}))
        for r in db.query("SELECT name, scope, builtin FROM labels ORDER BY builtin DESC, rowid")
    ]


def named(conn: Any, name: str) -> Any:
    """The row (name, scope) of the label called `name`, or None."""
    return conn.execute("SELECT name, scope FROM labels WHERE name = ?", (name,)).fetchone()


def insert(conn: Any, name: str, scope: str) -> None:
    conn.execute("INSERT INTO labels (name, scope, builtin) VALUES (?, ?, 0)", (name, scope))


def set_mappings(conn: Any, name: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Set (or replace) the label's value for each cart of `pairs`."""
    conn.executemany(
        "INSERT INTO label_maps (label, cart, value) VALUES (?, ?, ?) "
        "ON CONFLICT(label, cart) DO UPDATE SET value = excluded.value",
        [(name, cart, value) for cart, value in pairs],
    )


def uses(conn: Any, name: str) -> list[tuple[str, int]]:
    """How many events, orders and items use the label, as (what, count)."""
    counts = [
        ("events", "SELECT COUNT(*) FROM events WHERE item_label = ? OR order_label = ?", 2),
        ("orders", "SELECT COUNT(*) FROM orders WHERE label = ?", 1),
        ("items", "SELECT COUNT(*) FROM items WHERE label = ?", 1),
    ]
    return [(what, int(conn.execute(sql, (name,) * n).fetchone()[0])) for what, sql, n in counts]


def delete(conn: Any, name: str) -> None:
    conn.execute("DELETE FROM labels WHERE name = ?", (name,))
