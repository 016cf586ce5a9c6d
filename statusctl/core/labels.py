"""Status labels: built-ins, scope, name rules and per-cart mappings."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from statusctl.domain.errors import InputError, NotFound, shown
from statusctl.domain.mapvalues import validate_mapping
from statusctl.domain.matrix import CART_TYPES, DEFAULT_MAPPINGS
from statusctl.storage.db import Database

SCOPES = ("item", "order", "both")

BUILTIN_LABELS: list[tuple[str, str]] = [
    ("Order Received", "order"),
    ("Payment Received", "order"),
    ("Processing", "order"),
    ("On Hold", "order"),
    ("Partially Shipped", "order"),
    ("Order Shipped", "order"),
    ("Cancelled", "order"),
    ("Backordered", "item"),
    ("Drop Ship Ordered", "item"),
    ("Item Shipped", "item"),
    ("Item Cancelled", "item"),
    ("Item Returned", "item"),
]


@dataclass
class Label:
    name: str
    scope: str
    builtin: bool
    mappings: dict[str, str] = field(default_factory=dict)

    def fits(self, kind: str) -> bool:
        """Whether this label may be assigned to an `item` or an `order`."""
        return self.scope in (kind, "both")


def check_name(name: str) -> str:
    """1–50 characters, surrounding spaces trimmed, no control characters.

    Quotes are allowed (the original refused them): every statement is parameterised
    and every cart encodes its fields, so "Customer's pickup" arrives as it is.
    """
    clean = name.strip()
    if not 1 <= len(clean) <= 50:
        raise InputError(f"Label name {shown(name)} must be 1 to 50 characters long.")
    if any(ord(ch) < 32 for ch in clean):
        raise InputError(f"Label name {shown(name)} must not contain control characters.")
    return clean


def parse_mapping(text: str) -> tuple[str, str]:
    """`CART=VALUE` with CART from the cart matrix."""
    cart, sep, value = text.partition("=")
    cart = cart.strip().lower()
    if not sep or not value.strip():
        raise InputError(f"--map {shown(text)} must look like CART=VALUE, e.g. woocommerce=completed.")
    if cart not in CART_TYPES:
        raise InputError(f"--map {shown(text)}: unknown cart type {shown(cart)}; cart types: {', '.join(CART_TYPES)}.")
    if len(value.strip()) > 100 or "\x00" in value:
        raise InputError(f"--map {shown(text)}: the value must be at most 100 characters, without NUL.")
    problem = validate_mapping(cart, value)
    if problem:
        raise InputError(f"--map {shown(text)}: {problem}.")
    return cart, value.strip()


def load_defaults(conn: sqlite3.Connection) -> None:
    """Insert the built-in labels and their mappings where missing (idempotent)."""
    conn.executemany(
        "INSERT INTO labels (name, scope, builtin) VALUES (?, ?, 1) ON CONFLICT(name) DO UPDATE SET builtin = 1",
        BUILTIN_LABELS,
    )
    conn.executemany(
        "INSERT OR IGNORE INTO label_maps (label, cart, value) VALUES (?, ?, ?)",
        [(label, cart, value) for label, maps in DEFAULT_MAPPINGS.items() for cart, value in maps.items()],
    )


def all_labels(db: Database) -> list[Label]:
    maps: dict[str, dict[str, str]] = {}
    for row in db.query("SELECT label, cart, value FROM label_maps ORDER BY cart"):
        maps.setdefault(row["label"].lower(), {})[row["cart"]] = row["value"]
    return [
        Label(r["name"], r["scope"], bool(r["builtin"]), maps.get(r["name"].lower(), {}))
        for r in db.query("SELECT name, scope, builtin FROM labels ORDER BY builtin DESC, rowid")
    ]


def unmapped_labels(labels: list[Label], cart: str) -> list[str]:
    """The order labels (scope order or both) with no value for `cart`, in the labels' order."""
    return [label.name for label in labels if label.fits("order") and cart not in label.mappings]


def find_label(labels: list[Label], name: str) -> Label:
    """The label called `name` (case-insensitive) among `labels`, or NotFound."""
    for label in labels:
        if label.name.lower() == name.strip().lower():
            return label
    raise NotFound(f"Unknown label {shown(name)}; `statusctl labels list` shows them.")


def get_label(db: Database, name: str) -> Label:
    """The label called `name` (case-insensitive), or NotFound."""
    return find_label(all_labels(db), name)


def add_label(db: Database, name: str, scope: str | None, mappings: list[str]) -> Label:
    """Add a user label (scope `both` unless given), or set the mappings of an existing one.

    For an existing label the scope is checked only when given: `--map` alone sets the mapping.
    """
    clean = check_name(name)
    if scope is not None and scope not in SCOPES:
        raise InputError(f"Scope {shown(scope)} is not one of {', '.join(SCOPES)}.")
    pairs = [parse_mapping(m) for m in mappings]
    with db.tx() as conn:
        row = conn.execute("SELECT name, scope FROM labels WHERE name = ?", (clean,)).fetchone()
        if row and scope is not None and row["scope"] != scope:
            raise InputError(f"Label {shown(row['name'])} already exists with scope {row['scope']}; "
                             "leave out --scope to set only its cart values.")
        if row is None:
            conn.execute("INSERT INTO labels (name, scope, builtin) VALUES (?, ?, 0)", (clean, scope or "both"))
        conn.executemany(
            "INSERT INTO label_maps (label, cart, value) VALUES (?, ?, ?) "
            "ON CONFLICT(label, cart) DO UPDATE SET value = excluded.value",
            [(row["name"] if row else clean, cart, value) for cart, value in pairs],
        )
    return get_label(db, clean)


def remove_label(db: Database, name: str) -> str:
    """Remove a user label that nothing uses; refuses built-ins and labels in use."""
    label = get_label(db, name)
    if label.builtin:
        raise InputError(f"Label {shown(label.name)} is built in and cannot be removed.")
    with db.tx() as conn:
        uses = [
            ("events", "SELECT COUNT(*) FROM events WHERE item_label = ? OR order_label = ?", 2),
            ("orders", "SELECT COUNT(*) FROM orders WHERE label = ?", 1),
            ("items", "SELECT COUNT(*) FROM items WHERE label = ?", 1),
        ]
        for what, sql, n in uses:
            count = conn.execute(sql, (label.name,) * n).fetchone()[0]
            if count:
                noun = what if count != 1 else what[:-1]
                raise InputError(f"Label {shown(label.name)} is in use by {count} {noun} and cannot be removed.")
        conn.execute("DELETE FROM labels WHERE name = ?", (label.name,))
    return label.name
