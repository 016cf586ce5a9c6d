"""How the stack's writers keep out of each other's way on PostgreSQL (on SQLite they need not).

SQLite's BEGIN IMMEDIATE lets one writer in at a time, so a claim, a settle or a
queue never meets another writer and every function here does nothing there.
PostgreSQL runs several transactions at once (READ COMMITTED), so:

- a queue locks the rows of its orders first, so that the seqs of one order's
  records are handed out in commit order (a sequence number alone is not);
- a claim counts live leases against `max_in_flight`, takes the rate limiter's
  next start and the circuit breaker's one probe under one transaction-scoped
  advisory lock per destination, which only claims take;
- a writer that changes records (settle, renew, release, retry, drop) locks
  their orders' heads before the records: the head triggers then find the heads
  theirs, a claim passes those heads over (SKIP LOCKED), and no two writers wait
  for each other in opposite orders. Settling needs no destination lock: it only
  ends leases, and each breaker update is one statement or a locked read.

Every kind of lock is taken in a fixed order (sorted keys); the few deadlocks
left (a transaction queuing in several batches, a lease that ran out under a
breaker) are retried whole by `db.transactions()`.
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


def one_transaction_per_turn(db: Any) -> bool:
    """Whether a controller settles and claims in one transaction (SQLite) or in two (PostgreSQL).

    Where one writer holds the whole database, one transaction costs one lock
    and one commit. Where writers work side by side, the settle's row locks (the
    per-destination counters every OK decrements) and the claim's destination
    locks are each held only as long as their own part, so several controllers'
    turns overlap instead of queuing behind each other.
    """
    return dialect.of(db) != dialect.POSTGRESQL


def _key(destination: str) -> int:
    """A destination's advisory key: a stable 32-bit hash (the same on every machine and run)."""
    return zlib.crc32(destination.encode("utf-8")) - (1 << 31)


def lock_destinations(conn: Any, destinations: Iterable[str]) -> float | None:
    """Hold the destinations' bookkeeping locks until the transaction ends (taking one already held is free).

    On PostgreSQL, returns the server's clock read in the same statement once the
    locks are held (None on SQLite, which takes no lock here).
    """
    if not on_postgres(conn):
        return None
    keys = sorted({_key(d) for d in destinations})
    # unnest gives the keys in the array's (sorted) order, one lock after another; the clock is read
    # once the aggregate has taken them all.
    row = conn.execute(
        "SELECT extract(epoch FROM clock_timestamp())::float8, locks.n FROM (SELECT COUNT("
        f"pg_advisory_xact_lock({DESTINATION_LOCKS}, k)) AS n FROM unnest(?::int[]) AS u(k)) AS locks", (keys,)
    ).fetchone()
    return float(row[0])


def lock_heads(conn: Any, seqs: Iterable[int]) -> float | None:
    """Lock the heads of the orders of these records (by order id), before the records are changed.

    On PostgreSQL, returns the server's clock read once they are held (None on SQLite).
    """
    if not on_postgres(conn):
        return None
    row = conn.execute(
        "SELECT extract(epoch FROM clock_timestamp())::float8, heads.n FROM (SELECT COUNT(*) AS n FROM "
        "(SELECT 1 FROM stack_heads WHERE order_id IN (SELECT order_id FROM stack WHERE seq = ANY(?::bigint[])) "
        "ORDER BY order_id FOR UPDATE) AS locked) AS heads", (sorted(set(seqs)),)
    ).fetchone()
    return float(row[0])


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
