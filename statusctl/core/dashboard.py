"""What `stack top` shows: one read-only snapshot of the stack, its controllers and recent attempts.

Every function here only reads (plain autocommit SELECTs; WAL lets them run
beside any number of controllers without blocking them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from statusctl.storage import activity
from statusctl.storage.db import Database
from statusctl.storage.stack import counted, status


@dataclass
class Rate:
    """Deliveries (OK answers) and other attempts per time bucket, oldest bucket first."""

    start: float  # the first bucket's start (epoch seconds)
    bucket_seconds: float
    sent: list[int]
    errors: list[int]

    @property
    def per_second(self) -> list[float]:
        return [n / self.bucket_seconds for n in self.sent]

    @property
    def total_sent(self) -> int:
        return sum(self.sent)

    @property
    def total_errors(self) -> int:
        return sum(self.errors)


@dataclass
class Snapshot:
    now: float
    controllers: list[dict[str, Any]]
    stores: list[dict[str, Any]]
    rate: Rate
    errors: list[dict[str, Any]] = field(default_factory=list)
    other_problems: list[dict[str, Any]] = field(default_factory=list)  # paused or misconfigured, nothing queued

    @property
    def alive(self) -> list[dict[str, Any]]:
        return [c for c in self.controllers if c["alive"]]

    @property
    def totals(self) -> dict[str, int]:
        keys = ("queued", "due", "sending", "retrying", "failed")
        return {k: sum(int(s[k]) for s in self.stores) for k in keys}


def send_rate(db: Database, *, now: float, window: float = 300.0, bucket: float = 10.0) -> Rate:
    """OK answers and error outcomes per `bucket` seconds over the last `window` seconds, from stack_history."""
    buckets = max(1, round(window / bucket))
    start = now - buckets * bucket
    sent = [0] * buckets
    errors = [0] * buckets
    for b, ok, bad in activity.outcomes_per_bucket(db, start=start, bucket=bucket, buckets=buckets):
        if 0 <= b < buckets:
            sent[b] = ok
            errors[b] = bad
    return Rate(start, bucket, sent, errors)


def last_errors(db: Database, limit: int = 6) -> list[dict[str, Any]]:
    """The latest attempts that did not end OK (to retry, or failed), newest first, with their reason.

    `counted` is false for a send that was no attempt (a network failure while its store
    was paused): its `attempt` is the number the next counted attempt will have.
    """
    return [{**r, "counted": counted(r["reason"])} for r in activity.last_errors(db, limit)]


def snapshot(
    db: Database,
    *,
    now: float | None = None,
    window: float = 300.0,
    bucket: float = 10.0,
    errors: int = 6,
) -> Snapshot:
    """Controllers, per-store counts, the send rate and the last errors, read now."""
    state = status(db)
    when = state["now"] if now is None else now
    return Snapshot(
        now=when,
        controllers=state["controllers"],
        stores=state["stores"],
        rate=send_rate(db, now=when, window=window, bucket=bucket),
        errors=last_errors(db, errors),
        other_problems=state["other_store_problems"],
    )

