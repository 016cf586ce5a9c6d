"""Status labels: loading the built-ins, adding, mapping and removing labels by the rules.

The label itself and its name and mapping rules are domain (statusctl.domain.labels);
the statements are statusctl.storage.labels.
"""

from __future__ import annotations

from typing import Any

from statusctl.domain.errors import InputError, shown
from statusctl.domain.labels import (
    BUILTIN_LABELS,
    SCOPES,
    Label,
    check_name,
    find_label,
    parse_mapping,
)
from statusctl.domain.matrix import DEFAULT_MAPPINGS
from statusctl.storage import labels as stored
from statusctl.storage.db import Database


def load_defaults(conn: Any) -> None:
    """Insert the built-in labels and their mappings where missing (idempotent)."""
    stored.insert_builtins(
        conn, BUILTIN_LABELS,
        [(label, cart, value) for label, maps in DEFAULT_MAPPINGS.items() for cart, value in maps.items()],
    )


def all_labels(db: Database) -> list[Label]:
    return stored.read_all(db)


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
        row = stored.named(conn, clean)
        if row and scope is not None and row["scope"] != scope:
            raise InputError(f"Label {shown(row['name'])} already exists with scope {row['scope']}; "
                             "leave out --scope to set only its cart values.")
        if row is None:
            stored.insert(conn, clean, scope or "both")
        stored.set_mappings(conn, row["name"] if row else clean, pairs)
    return get_label(db, clean)


def remove_label(db: Database, name: str) -> str:
    """Remove a user label that nothing uses; refuses built-ins and labels in use."""
    label = get_label(db, name)
    if label.builtin:
        raise InputError(f"Label {shown(label.name)} is built in and cannot be removed.")
    with db.tx() as conn:
        for what, count in stored.uses(conn, label.name):
            if count:
                noun = what if count != 1 else what[:-1]
                raise InputError(f"Label {shown(label.name)} is in use by {count} {noun} and cannot be removed.")
        stored.delete(conn, label.name)
    return label.name
