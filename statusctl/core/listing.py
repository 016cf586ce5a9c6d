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
from statusctl.storage.db import Database

DEFAULT_LIMIT = 1000


def sql_limit(limit: int) -> int:
    """The LIMIT to give SQLite for `--limit N`: 0 (all) is -1, SQLite's "no limit"."""
    if limit < 0:
        raise InputError(f"--limit must be 0 (all) or a positive number of rows, not {limit}.")
    return limit if limit else -1


def cut_total(rows: Sized, limit: int, count: Callable[[], int]) -> int | None:
    """The number of rows there are when the listing was cut at `limit` (counted only then), else None."""
    if not limit or len(rows) < limit:
        return None
    total = count()
    return total if total > len(rows) else None


def cut_note(shown: int, total: int, *, latest: bool = False) -> str:
    """The line under a cut listing."""
    return f"Showing the {'latest' if latest else 'first'} {shown:,} of {total:,}; use --limit 0 for all."


def stack_total(db: Database, *, failed: bool = False, store: str | None = None, order: str | None = None) -> int:
    """Records `stack list` would show with no limit: from stack_counts, or COUNT(*) through an index."""
    if order:  # the (order_id, seq) index
        sql = ("SELECT COUNT(*) FROM stack WHERE order_id IN (SELECT id FROM orders WHERE number = ?) "
               "AND order_number = ?")
        params: list[object] = [order, order]
    elif failed:  # the (state, next_attempt) index: only the failed rows are read
        sql, params = "SELECT COUNT(*) FROM stack WHERE state = 'failed'", []
    else:  # one counter per destination, kept by triggers
        sql, params = "SELECT TOTAL(records) FROM stack_counts WHERE 1 = 1", []
    if order and failed:
        sql += " AND state = 'failed'"
    if store:
        sql += " AND destination = ?"
        params.append(store)
    row = db.one(sql, tuple(params))
    return int(row[0]) if row is not None else 0


def orders_total(db: Database, *, label: str | None = None, store: str | None = None) -> int:
    """Orders `orders list` would show with no limit (the label and store indexes answer the filters)."""
    sql, params = "SELECT COUNT(*) FROM orders WHERE 1 = 1", []
    for column, value in (("label", label), ("store", store)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    row = db.one(sql, tuple(params))
    return int(row[0]) if row is not None else 0


def history_total(db: Database, *, order: str | None = None, since: float | None = None,
                  store: str | None = None) -> int:
    """Attempts `stack history` would show with no limit."""
    sql, params = "SELECT COUNT(*) FROM stack_history WHERE 1 = 1", []
    for clause, value in (("destination = ?", store), ("order_number = ?", order), ("at >= ?", since)):
        if value is not None and value != "":
            sql += f" AND {clause}"
            params.append(value)
    row = db.one(sql, tuple(params))
    return int(row[0]) if row is not None else 0


Page = tuple[list[dict[str, Any]], int | None]  # the rows, and how many there are when they were cut


def stack_page(db: Database, *, failed: bool = False, store: str | None = None, order: str | None = None,
               limit: int = DEFAULT_LIMIT, count: bool = True) -> Page:
    """`stack list`: the first `limit` records in queue order (see `stack.list_records`)."""
    from statusctl.storage.stack import list_records

    rows = list_records(db, failed=failed, store=store, order=order, limit=sql_limit(limit))
    return rows, cut_total(rows, limit if count else 0, lambda: stack_total(db, failed=failed, store=store, order=order))


def orders_page(db: Database, *, label: str | None = None, store: str | None = None, limit: int = DEFAULT_LIMIT,
                count: bool = True) -> Page:
    """`orders list`: the first `limit` orders (see `orders.list_orders`)."""
    from statusctl.core.orders import list_orders

    rows = list_orders(db, label, store, limit=sql_limit(limit))
    return rows, cut_total(rows, limit if count else 0, lambda: orders_total(db, label=label, store=store))


def history_page(db: Database, *, order: str | None = None, since: float | None = None, store: str | None = None,
                 limit: int = DEFAULT_LIMIT, count: bool = True) -> Page:
    """`stack history`: the latest `limit` attempts, oldest first (see `stack.history`)."""
    from statusctl.storage.stack import history

    rows = history(db, order=order, since=since, store=store, limit=sql_limit(limit))
    return rows, cut_total(rows, limit if count else 0,
                           lambda: history_total(db, order=order, since=since, store=store))
