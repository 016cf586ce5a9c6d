"""Reads that work on a Database (outside a transaction) and on a transaction's connection alike."""

from __future__ import annotations

from typing import Any


def rows(src: Any, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
    """All rows of a read: through `Database.query` (faults become one sentence) or a connection's `execute`."""
    query = getattr(src, "query", None)
    return list(query(sql, params)) if query is not None else src.execute(sql, params).fetchall()


def one(src: Any, sql: str, params: tuple[object, ...] = ()) -> Any:
    """The first row of a read, or None."""
    found = rows(src, sql, params)
    return found[0] if found else None
