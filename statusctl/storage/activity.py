"""What `stack top` reads from the delivery history (table `stack_history`): send rate and last errors."""

from __future__ import annotations

from typing import Any

from statusctl.storage import dialect


def outcomes_per_bucket(db: Any, *, start: float, bucket: float, buckets: int) -> list[tuple[int, int, int]]:
    """(bucket number from `start`, OK answers, retries and failures) for each bucket that has any."""
    # The bucket is the whole part of a non-negative number: SQLite's CAST truncates,
    # PostgreSQL's rounds, so there it is floored first.
    whole = "CAST(FLOOR((at - ?) / ?) AS INTEGER)" if dialect.of(db) == "postgresql" else "CAST((at - ?) / ? AS INTEGER)"
    rows = db.query(
        f"SELECT {whole} AS b, "
        "SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END) AS ok, "
        "SUM(CASE WHEN outcome IN ('retry', 'failed') THEN 1 ELSE 0 END) AS bad "
        "FROM stack_history WHERE at >= ? AND at < ? GROUP BY b",
        (start, bucket, start, start + buckets * bucket),
    )
    return [(int(r["b"]), int(r["ok"] or 0), int(r["bad"] or 0)) for r in rows]


def last_errors(db: Any, limit: int) -> list[dict[str, Any]]:
    """The latest attempts that did not end OK (to retry, or failed), newest first."""
    rows = db.query(
        "SELECT at, uid, destination, order_number, attempt, outcome, status, reason, answer "
        "FROM stack_history WHERE outcome IN ('retry', 'failed') ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [dict(r) for r in rows]
