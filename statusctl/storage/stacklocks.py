"""How the stack's writers keep out of each other's way on PostgreSQL (on SQLite they need not).

SQLite's BEGIN IMMEDIATE lets one writer in at a time, so a claim, a settle or a
queue never meets another writer and every function here does nothing there.
PostgreSQL runs several transactions at once (READ COMMITTED), so:

- a queue locks the rows of its orders first, so that the seqs of one order's
  records are handed out in commit order (a sequence number alone is not);
- the per-destination bookkeeping of claims and settles (live leases against
  `max_in_flight`, the rate limiter's next start, the circuit breaker and its
  probe) runs under one transaction-scoped advisory lock per destination;
- a writer that changes records locks their orders' heads before the records
  (the head triggers then find the heads theirs), so that every writer takes
  heads before records and none waits for another in the opposite order.

Every kind of lock is taken in a fixed order (sorted keys), so two writers
never deadlock on them; the few deadlocks left (a transaction queuing in
several batches) are retried whole by `db.transactions()`.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any

from statusctl.storage import dialect

# The advisory lock namespace of destinations (the first key of pg_advisory_xact_lock(int, int)):
# "st" in ASCII, apart from the single-key migration lock.
DESTINATION_LOCKS = 0x7374


def on_postgres(conn: Any) -> bool:
    return dialect.of(conn) == dialect.POSTGRESQL


def _key(destination: str) -> int:
    """A destination's advisory key: a stable 32-bit hash (the same on every machine and run)."""
    return zlib.crc32(destination.encode("utf-8")) - (1 << 31)


def lock_destinations(conn: Any, destinations: Iterable[str]) -> None:
    """Hold the destinations' bookkeeping locks until the transaction ends (taking one already held is free)."""
    if not on_postgres(conn):
        return
    keys = sorted({_key(d) for d in destinations})
    if keys:
        # unnest gives the keys in the array's (sorted) order, one lock after another.
        conn.execute(f"SELECT pg_advisory_xact_lock({DESTINATION_LOCKS}, k) FROM unnest(?::int[]) AS u(k)", (keys,))


def lock_heads(conn: Any, seqs: Iterable[int]) -> None:
    """Lock the heads of the orders of these records (by order id), before the records are changed."""
    wanted = sorted(set(seqs))
    if on_postgres(conn) and wanted:
        conn.execute("SELECT 1 FROM stack_heads WHERE order_id IN (SELECT order_id FROM stack WHERE seq = ANY(?::bigint[])) "
                     "ORDER BY order_id FOR UPDATE", (wanted,))


def lock_orders(conn: Any, order_ids: Iterable[int]) -> None:
    """Lock these orders' rows: the records a producer queues for them get seqs after any committed before."""
    wanted = sorted(set(order_ids))
    if on_postgres(conn) and wanted:
        conn.execute("SELECT 1 FROM orders WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE", (wanted,))


def any_of(conn: Any, column: str, values: list[Any], cast: str) -> tuple[str, object]:
    """`column` is one of `values`, as (SQL, its one parameter): however many values, one placeholder.

    SQLite reads a JSON array (json_each), PostgreSQL an array of type `cast` (e.g. bigint).
    """
    if on_postgres(conn):
        return f"{column} = ANY(?::{cast}[])", list(values)
    return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(values)
