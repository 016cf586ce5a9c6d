"""Listings cut at `--limit N` (0: all): the SQL limit, and the cheap count that says what was left out.

`stack list`, `orders list` and `stack history` show at most DEFAULT_LIMIT rows
unless told otherwise. When a listing is cut, the command says so ("Showing the
first 1,000 of 3,006; use --limit 0 for all."); the total is counted only then,
and from what answers it without reading every row: the stack's per-destination
counters, or COUNT(*) through an index.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any

from statusctl.domain.errors import InputError
from statusctl.storage import totals
from statusctl.storage.db import Database
from statusctl.storage.orders import count_orders

DEFAULT_LIMIT = 1000


def checked(limit: int) -> int:
    """`--limit N`: 0 (all) or a positive number of rows."""
    if limit < 0:
        raise InputError(f"--limit must be 0 (all) or a positive number of rows, not {limit}.")
    return limit


def sql_limit(limit: int) -> int:
    """The LIMIT the stack's listings take for `--limit N`: 0 (all) is -1, SQLite's "no limit"."""
    return checked(limit) or -1


def cut_total(rows: Sized, limit: int, count: Callable[[], int]) -> int | None:
    """The number of rows there are when the listing was cut at `limit` (counted only then), else None."""
    if not limit or len(rows) < limit:
        return None
    total = count()
    return total if total > len(rows) else None


def cut_note(shown: int, total: int, *, latest: bool = False) -> str:
    """The line under a cut listing."""
    return f"Showing the {'latest' if latest else 'first'} {shown:,} of {total:,}; use --limit 0 for all."


Page = tuple[list[dict[str, Any]], int | None]  # the rows, and how many there are when they were cut


def stack_page(db: Database, *, failed: bool = False, store: str | None = None, order: str | None = None,
               limit: int = DEFAULT_LIMIT, count: bool = True) -> Page:
    """`stack list`: the first `limit` records in queue order (see `stack.list_records`)."""
    from statusctl.storage.stack import list_records

    rows = list_records(db, failed=failed, store=store, order=order, limit=sql_limit(limit))
    return rows, cut_total(rows, limit if count else 0,
                           lambda: totals.stack_total(db, failed=failed, store=store, order=order))


def orders_page(db: Database, *, label: str | None = None, store: str | None = None, limit: int = DEFAULT_LIMIT,
                count: bool = True) -> Page:
    """`orders list`: the first `limit` orders (see `orders.list_orders`)."""
    from statusctl.core.orders import list_orders

    rows = list_orders(db, label, store, limit=checked(limit) or None)
    return rows, cut_total(rows, limit if count else 0, lambda: count_orders(db, label, store))


def history_page(db: Database, *, order: str | None = None, since: float | None = None, store: str | None = None,
                 limit: int = DEFAULT_LIMIT, count: bool = True) -> Page:
    """`stack history`: the latest `limit` attempts, oldest first (see `stack.history`)."""
    from statusctl.storage.stack import history

    rows = history(db, order=order, since=since, store=store, limit=sql_limit(limit))
    return rows, cut_total(rows, limit if count else 0,
                           lambda: totals.history_total(db, order=order, since=since, store=store))
