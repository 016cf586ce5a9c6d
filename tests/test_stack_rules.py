"""Rules of the stack that hold whatever a caller does: a record keeps its order, destination and seq;
settling does not change the outcomes it is given (a rolled-back turn is written the same when retried)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from statusctl.storage import health, stack
from statusctl.storage.backends import Target
from statusctl.storage.db import Database

from .stackhelpers import STORE, fill, history_rows, integrity_errors, opened, query, stack_rows

URL = "http://127.0.0.1:9/hooks/status"  # never contacted


@pytest.fixture
def db(target: Target) -> Iterator[Database]:
    yield from opened(target, {STORE: URL, "other": URL})


def snapshot(target: Target) -> tuple[object, ...]:
    return (stack_rows(target), query(target, "SELECT * FROM stack_heads ORDER BY order_id"),
            query(target, "SELECT * FROM stack_counts ORDER BY destination"))


@pytest.mark.parametrize("change", [
    "order_id = order_id + 1000",
    "destination = 'other'",
    "seq = seq + 1000",
])
def test_moving_a_record_is_refused_and_changes_nothing(db, target, change):
    fill(target, records=4, orders=2)
    before = snapshot(target)
    with pytest.raises(integrity_errors(), match="keeps its order, destination and seq"), db.tx() as conn:
        conn.execute(f"UPDATE stack SET {change} WHERE seq = (SELECT MIN(seq) FROM stack)")
    assert snapshot(target) == before
    # What the stack itself updates still goes through (a no-op write of a key included).
    with db.tx() as conn:
        conn.execute("UPDATE stack SET destination = destination, next_attempt = next_attempt + 1")
    assert len(stack_rows(target)) == 4


class Rollback(Exception):
    pass


def test_settling_the_same_outcomes_again_after_a_rollback_writes_the_same(db, target):
    """A turn rolled back (a locked or full database) is tried again with the same outcomes: settle
    must not have changed them, or the reasons would carry their suffixes twice."""
    fill(target, records=1, orders=1)
    fill(target, records=1, orders=1, store="other", prefix="P")
    now = time.time()
    with db.tx() as conn:
        gives_up, paused = sorted(stack.claim(conn, "A", 10, 120.0, now=now), key=lambda c: c.destination != STORE)
        for _ in range(health.BREAKER_FAILURES):  # "other" is paused while its send is out
            health.note_transport_failure(conn, "other", "timed out (ReadTimeout)", now=now, schedule=(60.0,))
    outcomes = [stack.Outcome(gives_up, "retry", status=500, reason="HTTP 500"),
                stack.Outcome(paused, "retry", reason="timed out (ReadTimeout)", transport=True)]
    given = [replace(o) for o in outcomes]

    def settle() -> list[stack.Outcome]:
        return stack.settle(conn, outcomes, "A", now=now + 1, max_attempts=1, schedule=(10.0,),
                            rng=random.Random(1))

    with pytest.raises(Rollback), db.tx() as conn:
        settle()
        raise Rollback
    assert outcomes == given, "settle changed the outcomes it was given"
    with db.tx() as conn:
        written = settle()
    assert outcomes == given
    assert [(o.kind, o.reason) for o in written] == [
        ("failed", "HTTP 500 (gave up after 1 attempts)"),
        ("retry", "timed out (ReadTimeout) (the store is paused; not counted as an attempt)"),
    ]
    errors = {r["uid"]: r["last_error"] for r in stack_rows(target)}
    assert errors == {gives_up.uid: written[0].reason, paused.uid: written[1].reason}
    assert sorted(h["reason"] for h in history_rows(target)) == sorted(o.reason for o in written)
