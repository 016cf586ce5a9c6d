"""Which database a connection talks to, for the few statements that must differ."""

from __future__ import annotations

from typing import Any


def of(conn: Any) -> str:
    """"sqlite" or "postgresql" (a connection without a `dialect` attribute is SQLite's)."""
    return getattr(conn, "dialect", "sqlite")
