"""History retention: attempts older than StackHistoryDays leave `stack_history` in small batches.

Each batch is its own short transaction (a few hundred rows through the `at`
index), so pruning never holds the write lock for long; a watcher and `stack
run` call `prune` now and then and a backlog of millions goes away over a few
turns.
"""

from __future__ import annotations

from statusctl.storage.db import Database

BATCH = 500
BATCHES_PER_CALL = 20
DAY_S = 86400.0


def prune(db: Database, days: int, *, now: float | None = None, batches: int = BATCHES_PER_CALL) -> int:
    """Delete up to `batches` × BATCH history rows older than `days` days; returns how many went."""
    cutoff = (db.now() if now is None else now) - days * DAY_S
    gone = 0
    for _ in range(batches):
        for attempt in db.transactions():  # two controllers may prune at once on PostgreSQL
            with attempt as conn:
                deleted = conn.execute(
                    "DELETE FROM stack_history WHERE id IN (SELECT id FROM stack_history WHERE at < ? ORDER BY at LIMIT ?)",
                    (cutoff, BATCH),
                ).rowcount
        gone += max(deleted, 0)
        if deleted < BATCH:
            break
    return gone


def reach(db: Database) -> tuple[float | None, int]:
    """When the oldest history row was written (None: the history is empty), and StackHistoryDays."""
    from statusctl.storage.settings import stack_settings

    row = db.one("SELECT MIN(at) AS at FROM stack_history")
    oldest = None if row is None or row["at"] is None else float(row["at"])
    return oldest, stack_settings(db).history_days
