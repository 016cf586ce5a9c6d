"""How the stack's writers keep out of each other's way on PostgreSQL (on SQLite they need not).

SQLite's BEGIN IMMEDIATE lets one writer in at a time, so a claim, a settle or a
queue never meets another writer and every function here does nothing there.
PostgreSQL runs several transactions at once (READ COMMITTED), so:

- a queue locks the rows of its orders first, so that the seqs of one order's
  records are handed out in commit order (a sequence number alone is not);
- the per-destination bookkeeping of claims (live leases against
  `max_in_flight`, the rate limiter's next start, the circuit breaker's one
  probe) runs under one transaction-scoped advisory lock per destination; a
  controller's turn takes the locks of every destination it settles or may
  claim from at its start, before any row lock;
- a writer that changes records (settle, renew, release, retry, drop) locks
  their orders' heads before the records: the head triggers then find the heads
  theirs, a claim passes those heads over (SKIP LOCKED), and no two writers wait
  for each other in opposite orders.

Every kind of lock is taken in a fixed order (sorted keys); the few deadlocks
left (a transaction queuing in several batches, a lease that ran out under a
breaker) are retried whole by `db.transactions()`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from statusctl.storage import dialect

# The advisory lock namespace of destinations (the first key of pg_advisory_xact_lock(int, int)):
# "st" in ASCII, apart from the single-key migration lock.
DESTINATION_LOCKS = 0x7374


def on_postgres(conn: Any) -> bool:
    return dialect.of(conn) == dialect.POSTGRESQL


# The destinations (the claimable ones with records, and `also`) locked in the order of their keys
# (hashtext: the server's, so the same for every machine), with the server's clock read once the
# aggregate has taken every lock; a single statement, and the names come back with it: all of them,
# the claimable ones apart, and the stores' config_version (what a controller's turn reads next).
_LOCK_DESTINATIONS = (
    "SELECT extract(epoch FROM clock_timestamp())::float8, l.names, l.claimable,"
    " (SELECT value FROM meta WHERE key = 'config_version') FROM ("
    " SELECT array_agg(d.destination) AS names, array_agg(d.destination) FILTER (WHERE d.c) AS claimable,"
    f" COUNT(pg_advisory_xact_lock({DESTINATION_LOCKS}, hashtext(d.destination)))"
    " FROM (SELECT destination, bool_or(c) AS c FROM ("
    "  SELECT destination, true AS c FROM stack_counts WHERE ? = 1 AND records > 0"
    "   AND (?::text[] IS NULL OR destination = ANY(?::text[])) AND destination <> ALL(?::text[])"
    "  UNION ALL SELECT unnest(?::text[]), false) AS u GROUP BY destination ORDER BY hashtext(destination)) AS d) AS l"
)


@dataclass
class Locked:
    """What `lock_destinations` took: every name locked, the claimable ones among them, the server's clock
    once they were held, and the config_version read in the same statement."""

    names: list[str]
    claimable: list[str]
    clock: float
    config_version: int


def lock_destinations(
    conn: Any, also: Iterable[str] = (), *, claimable: bool = False, stores: Iterable[str] | None = None,
    skip: Iterable[str] = (),
) -> Locked | None:
    """Hold the bookkeeping locks of destinations until the transaction ends (one already held is free).

    Locks `also`, and with `claimable` every destination with records a claim of
    `stores` (None: all) that skips `skip` may take from. On SQLite nothing is
    locked (BEGIN IMMEDIATE holds the database) and this is None.
    """
    if not on_postgres(conn):
        return None
    wanted = sorted(set(stores)) if stores else None
    row = conn.execute(_LOCK_DESTINATIONS, (int(claimable), wanted, wanted or [], sorted(set(skip)), sorted(set(also)))
                       ).fetchone()
    return Locked(sorted(row[1] or []), sorted(row[2] or []), float(row[0]), int(row[3] or 0))


def lock_heads(conn: Any, seqs: Iterable[int], *, clock: bool = True) -> float | None:
    """Lock the heads of the orders of these records (by order id), before the records are changed.

    On PostgreSQL, returns the server's clock read once they are held (None on SQLite). Without
    `clock` the statement's result is not waited for: in a pipeline (`pipelined`) it then costs
    no round trip of its own.
    """
    if not on_postgres(conn):
        return None
    cur = conn.execute(
        "SELECT extract(epoch FROM clock_timestamp())::float8, heads.n FROM (SELECT COUNT(*) AS n FROM "
        "(SELECT 1 FROM stack_heads WHERE order_id IN (SELECT order_id FROM stack WHERE seq = ANY(?::bigint[])) "
        "ORDER BY order_id FOR UPDATE) AS locked) AS heads", (sorted(set(seqs)),)
    )
    return float(cur.fetchone()[0]) if clock else None


def pipelined(conn: Any) -> contextlib.AbstractContextManager[Any]:
    """Inside, PostgreSQL's statements go out without waiting for each one's result (psycopg's pipeline
    mode): a run of writes whose results are not read costs one round trip, not one each. A read inside
    waits for everything sent before it. Yields the `postgres.Stream` (its `sync()` ends a batch without
    waiting); nothing, and None, on SQLite."""
    return conn.stream() if on_postgres(conn) else contextlib.nullcontext()


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
