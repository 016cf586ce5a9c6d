"""`statusctl init`: create, migrate and load the defaults (idempotent)."""

from __future__ import annotations

from statusctl.storage.db import Database
from statusctl.storage.events import any_stored


def initialize(db: Database) -> None:
    """Load the built-in labels, their mappings and the default events where missing."""
    # Imported here: every command calls ensure_initialized, and only a new database
    # needs the defaults (the cart matrix they pull in costs start-up time).
    from statusctl.core import events, labels

    with db.tx() as conn:
        labels.load_defaults(conn)
        events.load_defaults(conn, overwrite=False)


def ensure_initialized(db: Database) -> None:
    """Load the defaults on a database that never had them (first use without `init`)."""
    if not any_stored(db):
        initialize(db)
