"""Helpers of the `statusctl db copy` tests: a shop built through the CLI, and readers of both databases."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from ..carts.fakeserver import Answer, FakeServer
from ..helpers import EXAMPLES, cli
from ..stackhelpers import SECRET, STORE, Hook, hook_url

psycopg = pytest.importorskip("psycopg")


def pg_rows(url: str, table: str, order: str, cols: list[str]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}")]


def pg_one(url: str, sql: str) -> Any:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]  # type: ignore[index]


def columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def sqlite_rows(path: Path, table: str, order: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {', '.join(columns(path, table))} FROM {table} ORDER BY {order}").fetchall()
    finally:
        conn.close()


def sql(path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def statusctl_tables(url: str) -> int:
    """How many tables the database at `url` holds (0: as createdb left it)."""
    return int(pg_one(url, "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()"))


def doc(*args: Any, code: int = 0) -> Any:
    """The one JSON document a command printed."""
    return json.loads(cli(*args, code=code).stdout)


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    """A copy that must be refused: exit 1, nothing on stdout, one sentence on stderr; that sentence."""
    result = cli("db", "copy", *args, code=1, env=env)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# -- the shop --------------------------------------------------------------------------


def build_shop(db_file: Path, hook: Hook, server: FakeServer) -> dict[str, list[str]]:
    """Through the CLI: a store, orders, ships; one record delivered after a retry, one failed, some left queued.

    Returns the uids left on the stack per order, in queue order.
    """
    cli("init")
    cli("config", "set", "UseStatusUpdates", "true")
    cli("config", "set", "StackRetrySchedule", "0.01,0.01")
    cli("labels", "add", "Waiting For Stock", "--scope", "both")
    cli("stores", "add", STORE, "--cart", "webhook", "--url", hook_url(server), "--secret", f"secret={SECRET}")
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", STORE)
    cli("ship", "1001", "--tracking", "1Z999", "--carrier", "UPS")
    cli("ship", "1002")
    cli("ship", "1003", "--item", "MUG-1")
    first = {r["order"]: r["id"] for r in doc("stack", "list", "--json")}
    hook.fail(first["1001"], Answer(500, "busy"))
    hook.fail(first["1002"], Answer(410, "gone"))
    assert doc("stack", "run", "--json", code=3)["stores"][STORE]["failed"] == 1
    cli("ship", "1003")  # behind nothing: its order's first record was delivered
    cli("ship", "1005", "--tracking", "TRK-5")
    cli("cancel", "1006")
    cli("fire", "order-approved", "1002")  # queued behind 1002's failed record
    # A controller that stopped long ago without unregistering (a power cut): it is not copied.
    sql(db_file, "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES ('old', 1, 'till', ?, ?, 'once')",
        (time.time() - 7200, time.time() - 3600))
    left: dict[str, list[str]] = {}
    for order, uid in sql(db_file, "SELECT order_number, uid FROM stack ORDER BY seq"):
        left.setdefault(order, []).append(uid)
    return left


def fill_stack(path: Path, records: int) -> None:
    """`records` more records on the source's stack, written straight into its tables (fast)."""
    now = time.time()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt) "
            "VALUES (?, ?, ?, 'bulk', 'bulk', '{}', ?, ?)",
            ((f"su_bulk{i:015d}", 10_000_000 + i, f"B{i}", now, now) for i in range(records)))
        conn.execute("INSERT INTO stack_heads (order_id, seq, destination, state, next_attempt, queued, records) "
                     "SELECT order_id, seq, destination, state, next_attempt, queued, 1 FROM stack "
                     "WHERE destination = 'bulk'")
        conn.execute("INSERT INTO stack_counts (destination, records) VALUES ('bulk', ?)", (records,))
    conn.close()
