"""`statusctl init`: create, migrate and load the defaults (idempotent)."""

from __future__ import annotations

from statusctl.core import events, labels
from statusctl.core.db import Database


def initialize(db: Database) -> None:
    """Load the built-in labels, their mappings and the default events where missing."""
    with db.tx() as conn:
        labels.load_defaults(conn)
        events.load_defaults(conn, overwrite=False)


def ensure_initialized(db: Database) -> None:
    """Load the defaults on a database that never had them (first use without `init`)."""
    if db.one("SELECT 1 FROM events LIMIT 1") is None:
        initialize(db)
