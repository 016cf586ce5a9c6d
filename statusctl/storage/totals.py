"""How many rows a cut listing left out: from what answers it without reading every row.

The stack's per-destination counters (kept by triggers), or COUNT(*) through an index.
"""

from __future__ import annotations

from typing import Any


def stack_total(db: Any, *, failed: bool = False, store: str | None = None, order: str | None = None) -> int:
    """Records `stack list` would show with no limit."""
    if order:  # the (order_id, seq) index
        sql = ("SELECT COUNT(*) FROM stack WHERE order_id IN (SELECT id FROM orders WHERE number = ?) "
               "AND order_number = ?")
        params: list[object] = [order, order]
    elif failed:  # the (state, next_attempt) index: only the failed rows are read
        sql, params = "SELECT COUNT(*) FROM stack WHERE state = 'failed'", []
    else:  # one counter per destination
        sql, params = "SELECT COALESCE(SUM(records), 0) FROM stack_counts WHERE 1 = 1", []
    if order and failed:
        sql += " AND state = 'failed'"
    if store:
        sql += " AND destination = ?"
        params.append(store)
    row = db.one(sql, tuple(params))
    return int(row[0]) if row is not None else 0


def history_total(db: Any, *, order: str | None = None, since: float | None = None,
                  store: str | None = None) -> int:
    """Attempts `stack history` would show with no limit."""
    sql, params = "SELECT COUNT(*) FROM stack_history WHERE 1 = 1", []
    for clause, value in (("destination = ?", store), ("order_number = ?", order), ("at >= ?", since)):
        if value is not None and value != "":
            sql += f" AND {clause}"
            params.append(value)
    row = db.one(sql, tuple(params))
    return int(row[0]) if row is not None else 0
