"""What storage code that holds only a connection needs to know of its backend: the dialect and the clock.

A SQLite connection is a plain `sqlite3.Connection`; the PostgreSQL adapter
(statusctl.storage.postgres) carries `dialect = "postgresql"` and answers `now()`
with the server's clock, so every machine sharing a stack compares leases and due
times against one clock.
"""

from __future__ import annotations

import time
from typing import Any

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def of(conn: Any) -> str:
    """"sqlite" or "postgresql": the backend of a connection from `db.tx()` / `db.reading()`."""
    return getattr(conn, "dialect", SQLITE)


def now(conn: Any) -> float:
    """Epoch seconds by the database's clock (this machine's for SQLite, a file on this machine)."""
    server_now = getattr(conn, "now", None)
    return float(server_now()) if server_now is not None else time.time()
