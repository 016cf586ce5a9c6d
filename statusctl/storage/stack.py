"""The stack (outbox): queueing, claiming with leases, judging outcomes.

Records of one order go out strictly in queue order: a record is claimable
only while it is the first (lowest seq) record of its order, whatever that
first record's state. So a record waiting for a retry, failed or leased by
another controller holds back only its own order.

Claiming lives in statusctl.storage.claiming, the operator's views (list, status,
history, retry, drop) in statusctl.storage.stackview; both are imported from here too.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from statusctl.storage import dialect, health, stacklocks
from statusctl.storage.claiming import Claimed, begin_turn, claim, soonest_due
from statusctl.storage.stackview import (
    SHORT_ID,
    count_selected,
    drop,
    due_left,
    history,
    list_records,
    retry,
    short_id,
    status,
)

if TYPE_CHECKING:
    import random

__all__ = [  # what claiming and the views (their own modules) give through this one too
    "SHORT_ID", "Claimed", "Outcome", "begin_turn", "claim", "count_selected", "drop", "due_left", "history", "list_records",
    "retry", "short_id", "soonest_due", "status",
]

EXCERPT = 300
# How settle's history row of a send that is no attempt ends its reason (a network failure while the
# store is paused): `stack top` shows such a row as not counted, not as a numbered try.
NOT_COUNTED = " (the store is paused; not counted as an attempt)"


def counted(reason: str | None) -> bool:
    """Whether a history row with this reason was an attempt (a send while its store was paused is not)."""
    return not (reason or "").endswith(NOT_COUNTED)
# The longest wait before a retry: a cart's "Retry-After: 1e300" would park the record for
# ever, and a time that far out cannot even be shown (time_t overflows).
MAX_DELAY_S = 7 * 86400.0


@dataclass
class Outcome:
    """How one attempt ended, to be written by `settle`.

    kind: ok | retry | failed, or wait: the record was not sent (this controller
    cannot use the store: a missing secret variable) and goes back uncounted.
    `transport`: the attempt failed at the network level (timeout, refused, reset),
    which the destination's circuit breaker counts.
    """

    claimed: Claimed
    kind: str
    status: int | None = None
    reason: str = ""
    answer: str = ""
    retry_after: float | None = None
    duration_ms: int = 0
    transport: bool = False


_QUEUE = (
    "INSERT INTO stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The heads and counters of the records queued after seq ?, in one statement each (see migration 0004);
# NOT INDEXED keeps SQLite to the rowid range of the new records instead of scanning a whole index.
# (Only under SQLite's single writer are the records after the highest seq read before all ours.)
_NEW_HEADS = (
    "INSERT INTO stack_heads (order_id, seq, destination, state, next_attempt, lease_until, queued, records) "
    "SELECT s.order_id, s.seq, s.destination, s.state, s.next_attempt, s.lease_until, s.queued, n.records "
    "FROM (SELECT order_id, MIN(seq) AS first, COUNT(*) AS records FROM stack NOT INDEXED WHERE seq > ? "
    "GROUP BY order_id) AS n "
    "JOIN stack s ON s.seq = n.first WHERE true "
    "ON CONFLICT (order_id) DO UPDATE SET records = records + excluded.records"
)
_NEW_COUNTS = (
    "INSERT INTO stack_counts (destination, records) "
    "SELECT destination, COUNT(*) FROM stack NOT INDEXED WHERE seq > ? GROUP BY destination HAVING true "
    "ON CONFLICT (destination) DO UPDATE SET records = records + excluded.records"
)
# PostgreSQL: one statement for the whole batch. The records go in in the batch's order (their seqs
# follow it), and the heads and counters are made from exactly the rows inserted (RETURNING), not
# from "every seq above the highest one read before", which another producer's records interleave.
# The unreferenced counters' insert runs after the heads' one: heads are locked before counters.
_PG_QUEUE = (
    "WITH new AS ("
    " INSERT INTO stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt)"
    " SELECT uid, order_id, order_number, store, destination, payload, ?, ? + delay"
    " FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::float8[])"
    " WITH ORDINALITY AS r(uid, order_id, order_number, store, destination, payload, delay, n) ORDER BY n"
    " RETURNING seq, order_id, destination, state, next_attempt, lease_until, queued"
    "), counts AS ("
    " INSERT INTO stack_counts (destination, records)"
    " SELECT destination, COUNT(*) FROM new GROUP BY destination ORDER BY destination"
    " ON CONFLICT (destination) DO UPDATE SET records = stack_counts.records + excluded.records) "
    "INSERT INTO stack_heads (order_id, seq, destination, state, next_attempt, lease_until, queued, records) "
    "SELECT s.order_id, s.seq, s.destination, s.state, s.next_attempt, s.lease_until, s.queued, n.records "
    "FROM (SELECT order_id, MIN(seq) AS first, COUNT(*) AS records FROM new GROUP BY order_id) AS n "
    "JOIN new s ON s.seq = n.first ORDER BY s.order_id "
    "ON CONFLICT (order_id) DO UPDATE SET records = stack_heads.records + excluded.records"
)


def queue(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """Put records on the stack inside the caller's writing transaction: the only way records are queued.

    Each row is (uid, order_id, order_number, store, destination, payload, queued,
    next_attempt), in queue order; the order heads and the per-destination counters
    follow in two set statements for the whole batch. On PostgreSQL the orders' rows
    are locked first (queue order per order is commit order, whichever machine
    queues), and `queued` is the server's clock (next_attempt keeps its distance
    from it): a producer whose clock is off neither delays nor hurries its records.
    """
    if not rows:
        return
    if stacklocks.on_postgres(conn):
        _queue_pg(conn, rows)
        return
    before = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM stack").fetchone()[0]
    conn.executemany(_QUEUE, rows)
    conn.execute(_NEW_HEADS, (before,))
    conn.execute(_NEW_COUNTS, (before,))


def _queue_pg(conn: Any, rows: list[tuple[object, ...]]) -> None:
    stacklocks.lock_orders(conn, [int(r[1]) for r in rows])  # type: ignore[call-overload]
    now = dialect.now(conn)
    columns = [[r[i] for r in rows] for i in range(6)]
    delays = [float(r[7]) - float(r[6]) for r in rows]  # type: ignore[arg-type]
    conn.execute(_PG_QUEUE, (now, now, *columns, delays))


def backoff(attempts: int, schedule: tuple[float, ...], rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after `attempts` failed ones, with ±20 % jitter."""
    import random  # here, not at the top: `stack status` and `stack list` never need it

    base = schedule[min(attempts, len(schedule)) - 1] if schedule else 0.0
    jitter = (rng or random).uniform(0.8, 1.2)
    return base * jitter


_OURS = "seq = ? AND lease_owner = ? AND claims = ?"  # our claim still holds: no claim came after it
_UNCUT = "CASE WHEN unsettled > 1 THEN unsettled - 1 ELSE 0 END"  # a claim given back was no cut-short send


def settle(
    conn: sqlite3.Connection,
    outcomes: list[Outcome],
    owner: str,
    *,
    now: float | None = None,
    max_attempts: int,
    schedule: tuple[float, ...],
    rng: random.Random | None = None,
) -> list[Outcome]:
    """Write the outcomes of finished attempts, inside the caller's writing transaction.

    OK deletes the record (unless another claim has since taken it over under a live
    lease: that one settles it, so an order never has two records in flight) and its
    history row goes in the same transaction. The deletes are judged after the settle's
    other outcomes: a record that one claim delivered and a later claim of ours, settled
    here too, failed or retried is delivered, with no send of it left. Retry and failed
    update the record only while our claim still holds its lease. Each outcome counts one attempt
    (a claim cut short by a crash has none and counts nothing), except a network
    failure while the destination is paused and a `wait` (not sent at all).

    Returns the outcomes as written (a retry past StackMaxAttempts becomes failed, a
    paused store's reason says so), for the caller's tally; `outcomes` is left as it
    is, so a turn rolled back and tried again writes the same. On PostgreSQL the
    records' heads are locked first (statusctl.storage.stacklocks). Without `now`, the
    database's clock.
    """
    seqs = [o.claimed.seq for o in outcomes]
    # On PostgreSQL the statements go out in one pipeline: one round trip for all that are not reads
    # (a transport failure's reads of the breaker wait for what was sent before them).
    with stacklocks.pipelined(conn):
        if now is None:
            now = stacklocks.lock_heads(conn, seqs) or dialect.now(conn)
        else:
            stacklocks.lock_heads(conn, seqs, clock=False)
        history, written, batch = [], [], _Batch()
        for given in outcomes:
            o, row = _settle_one(conn, given, owner, batch, now=now, max_attempts=max_attempts,
                                 schedule=schedule, rng=rng)
            written.append(o)
            if row is not None:
                history.append(row)
        # Delivered. But if a later claim is sending it again, leave the record to that one: deleting it
        # would let the order's next record go out while this one is still in flight, and perhaps arrive
        # after it.
        conn.executemany(
            "DELETE FROM stack WHERE seq = ? AND (lease_owner IS NULL OR lease_until < ? "
            "OR (lease_owner = ? AND claims = ?))",
            batch.deletes,
        )
        conn.executemany(
            "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, status, "
            "reason, answer, duration_ms, controller) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            history,
        )
    return written


@dataclass
class _Batch:
    """What one settle writes at its end in one statement, and the answers it already noted."""

    deletes: list[tuple[object, ...]] = field(default_factory=list)  # the delivered records' DELETE parameters
    answered: set[str] = field(default_factory=set)  # destinations whose latest news here is an answer


def _settle_one(
    conn: sqlite3.Connection, o: Outcome, owner: str, batch: _Batch, *, now: float, max_attempts: int,
    schedule: tuple[float, ...], rng: random.Random | None,
) -> tuple[Outcome, tuple[object, ...] | None]:
    """Write one outcome: (the outcome as written, its history row; none for a record that was not sent).

    A delivered record's DELETE joins `batch`; an answer right after an answer of the
    same destination changes nothing in its health, so it is not written again.
    """
    c = o.claimed
    if o.kind == "wait":
        conn.execute(f"UPDATE stack SET lease_owner = NULL, lease_until = NULL, unsettled = {_UNCUT} "
                     f"WHERE {_OURS}", (c.seq, owner, c.claims))
        health.end_probe(conn, c.destination, owner)  # not sent: it probed nothing
        return o, None
    if o.transport and health.is_open(conn, c.destination):
        # The destination is paused as a whole (or this was its probe): no attempt is spent.
        batch.answered.discard(c.destination)
        health.note_transport_failure(conn, c.destination, o.reason, now=now, schedule=schedule)
        o = replace(o, reason=o.reason + NOT_COUNTED)
        conn.execute("UPDATE stack SET lease_owner = NULL, lease_until = NULL, unsettled = 0, last_status = NULL, "
                     f"last_error = ? WHERE {_OURS}", (o.reason, c.seq, owner, c.claims))
        return o, _history_row(o, owner, now, "retry")
    if o.transport:
        batch.answered.discard(c.destination)
        health.note_transport_failure(conn, c.destination, o.reason, now=now, schedule=schedule)
    elif c.destination not in batch.answered:
        batch.answered.add(c.destination)
        health.note_answer(conn, c.destination)
    if o.kind == "ok":
        batch.deletes.append((c.seq, now, owner, c.claims))
        return o, _history_row(o, owner, now, "ok")
    o = _write_outcome(conn, o, owner, now=now, max_attempts=max_attempts, schedule=schedule, rng=rng)
    return o, _history_row(o, owner, now, o.kind)


def _history_row(o: Outcome, owner: str, now: float, kind: str) -> tuple[object, ...]:
    c = o.claimed
    return (now, c.uid, c.store, c.destination, c.order_number, c.attempts, kind, o.status, o.reason,
            o.answer[:EXCERPT], o.duration_ms, owner)


def _write_outcome(
    conn: sqlite3.Connection, o: Outcome, owner: str, *, now: float, max_attempts: int, schedule: tuple[float, ...],
    rng: random.Random | None,
) -> Outcome:
    """Write one counted retry or failure to its record; returns the outcome written (a retry may become failed)."""
    c = o.claimed
    if o.kind == "retry" and c.attempts >= max_attempts:
        # The outcome itself changes, so the caller's tally counts it as failed too.
        o = replace(o, kind="failed", reason=f"{o.reason} (gave up after {c.attempts} attempts)")
    if o.kind == "retry":
        delay = min(max(backoff(c.attempts, schedule, rng), o.retry_after or 0.0), MAX_DELAY_S)
        conn.execute(
            "UPDATE stack SET next_attempt = ?, attempts = ?, unsettled = 0, lease_owner = NULL, lease_until = NULL, "
            f"last_status = ?, last_error = ?, last_answer = ? WHERE {_OURS}",
            (now + delay, c.attempts, o.status, o.reason, o.answer[:EXCERPT], c.seq, owner, c.claims),
        )
    else:
        conn.execute(
            "UPDATE stack SET state = 'failed', attempts = ?, unsettled = 0, lease_owner = NULL, lease_until = NULL, "
            f"last_status = ?, last_error = ?, last_answer = ? WHERE {_OURS}",
            (c.attempts, o.status, o.reason, o.answer[:EXCERPT], c.seq, owner, c.claims),
        )
    return o


def renew(conn: sqlite3.Connection, owner: str, seqs: list[int], until: float) -> None:
    """Extend the leases we still hold on records being sent (inside the caller's transaction).

    A send may outlast one lease (a rate-limit pause before it, several requests
    per record); a crashed controller renews nothing, so its records still come back.
    """
    stacklocks.lock_heads(conn, seqs)
    conn.executemany(
        "UPDATE stack SET lease_until = ? WHERE seq = ? AND lease_owner = ?",
        [(until, s, owner) for s in seqs],
    )


def renew_for(conn: sqlite3.Connection, owner: str, seqs: list[int], lease_seconds: float) -> float:
    """`renew` for `lease_seconds` from the database's clock, read once the records' heads are locked
    (the heartbeat: a wait for another writer must not shorten the leases); returns that clock."""
    locked_at = stacklocks.lock_heads(conn, seqs)
    now = dialect.now(conn) if locked_at is None else locked_at
    renew(conn, owner, seqs, now + lease_seconds)
    return now


def release(conn: sqlite3.Connection, owner: str, claims: list[Claimed]) -> None:
    """Give back the leases of these claims of ours, not sent (inside the caller's transaction); not counted as attempts.

    Only a claim that still holds its record is given back: a later claim of the same record
    (ours too, after this one's lease ran out) is being sent, and keeps its lease. A probe
    among them probed nothing: its destination may be probed again at once.
    """
    if not claims:
        return
    seqs = [c.seq for c in claims]
    stacklocks.lock_heads(conn, seqs)
    wanted = {(c.seq, c.claims) for c in claims}  # a record may be among them twice: an old claim and ours now
    among, listed = stacklocks.any_of(conn, "seq", sorted(set(seqs)), "bigint")
    ours = [(r[0], r[2]) for r in conn.execute(
        f"SELECT seq, claims, destination FROM stack WHERE {among} AND lease_owner = ?", (listed, owner))
        if (r[0], r[1]) in wanted]
    conn.executemany(
        f"UPDATE stack SET lease_owner = NULL, lease_until = NULL, unsettled = {_UNCUT} WHERE seq = ?",
        [(seq,) for seq, _ in ours],
    )
    for dest in sorted({dest for _, dest in ours}):
        health.end_probe(conn, dest, owner)


# -- controllers ---------------------------------------------------------------


def register_controller(conn: sqlite3.Connection, owner: str, pid: int, host: str, mode: str, *, now: float) -> None:
    """Announce a controller (and forget ones silent for a day)."""
    conn.execute("DELETE FROM controllers WHERE heartbeat < ?", (now - 86400,))
    conn.execute(
        "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES (?, ?, ?, ?, ?, ?)",
        (owner, pid, host, now, now, mode),
    )


def beat(conn: sqlite3.Connection, owner: str, sent: int, *, now: float) -> None:
    conn.execute("UPDATE controllers SET heartbeat = ?, sent = ? WHERE id = ?", (now, sent, owner))


def unregister_controller(conn: sqlite3.Connection, owner: str) -> None:
    conn.execute("DELETE FROM controllers WHERE id = ?", (owner,))


def config_version(conn: sqlite3.Connection) -> int:
    """A counter that triggers raise on every change to stores or label mappings."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'config_version'").fetchone()
    return int(row[0]) if row else 0


def label_mappings(conn: sqlite3.Connection) -> dict[str, dict[str, str]]:
    """label.lower() -> cart -> value."""
    mappings: dict[str, dict[str, str]] = {}
    for label, cart, value in conn.execute("SELECT label, cart, value FROM label_maps"):
        mappings.setdefault(label.lower(), {})[cart] = value
    return mappings


def left_on_stack(conn: sqlite3.Connection, stores: list[str] | None = None) -> tuple[dict[str, int], int]:
    """Records left per destination, and failed records (of `stores`, or all): read from the counters."""
    left = {d: int(n) for d, n in conn.execute("SELECT destination, records FROM stack_counts WHERE records > 0")}
    failed = 0
    for dest in (stores or list(left)):
        failed += int(conn.execute("SELECT COUNT(*) FROM stack_heads WHERE destination = ? AND state = 'failed'",
                                   (dest,)).fetchone()[0])
    return left, failed


def still_on_stack(conn: sqlite3.Connection, uids: list[str]) -> set[str]:
    """Those of `uids` that are still on the stack (not delivered or dropped meanwhile)."""
    if not uids:
        return set()
    among, listed = stacklocks.any_of(conn, "uid", uids, "text")
    return {r[0] for r in conn.execute(f"SELECT uid FROM stack WHERE {among}", (listed,))}
