"""Rules of the stack that hold whatever a caller does: a record keeps its order, destination and seq;
settling does not change the outcomes it is given (a rolled-back turn is written the same when retried)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from statusctl.core.db import Database

from .stackhelpers import STORE, fill, query, setup_db, stack_rows

URL = "http://127.0.0.1:9/hooks/status"  # never contacted


@pytest.fixture
def db(db_file: Path) -> Iterator[Database]:
    setup_db(db_file, {STORE: URL, "other": URL})
    d = Database.open(db_file)
    yield d
    d.close()


def snapshot(db_file: Path) -> tuple[object, ...]:
    return (stack_rows(db_file), query(db_file, "SELECT * FROM stack_heads ORDER BY order_id"),
            query(db_file, "SELECT * FROM stack_counts ORDER BY destination"))


@pytest.mark.parametrize("change", [
    "order_id = order_id + 1000",
    "destination = 'other'",
    "seq = seq + 1000",
])
def test_moving_a_record_is_refused_and_changes_nothing(db, db_file, change):
    fill(db_file, records=4, orders=2)
    before = snapshot(db_file)
    with pytest.raises(sqlite3.IntegrityError, match="keeps its order, destination and seq"), db.tx() as conn:
        conn.execute(f"UPDATE stack SET {change} WHERE seq = (SELECT MIN(seq) FROM stack)")
    assert snapshot(db_file) == before
    # What the stack itself updates still goes through (a no-op write of a key included).
    with db.tx() as conn:
        conn.execute("UPDATE stack SET destination = destination, next_attempt = next_attempt + 1")
    assert len(stack_rows(db_file)) == 4
