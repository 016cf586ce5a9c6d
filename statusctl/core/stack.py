"""The stack (outbox): claiming with leases, judging outcomes, and the operator's views.

Records of one order go out strictly in queue order: a record is claimable
only while it is the first (lowest seq) record of its order, whatever that
first record's state. So a record waiting for a retry, failed or leased by
another controller holds back only its own order.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from statusctl.core import health
from statusctl.core.claiming import Claimed, claim, live_leases, soonest_due
from statusctl.core.db import Database
from statusctl.core.errors import InputError, NotFound, shown

if TYPE_CHECKING:
    import random

__all__ = ["Claimed", "Outcome", "claim", "soonest_due"]  # claiming lives in statusctl.core.claiming

EXCERPT = 300
# How settle's history row of a send that is no attempt ends its reason (a network failure while the
# store is paused): `stack top` shows such a row as not counted, not as a numbered try.
NOT_COUNTED = " (the store is paused; not counted as an attempt)"
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


def queue(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """Put records on the stack inside the caller's writing transaction: the only way records are queued.

    Each row is (uid, order_id, order_number, store, destination, payload, queued,
    next_attempt), in queue order; the order heads and the per-destination counters
    follow in two set statements for the whole batch.
    """
    if not rows:
        return
    before = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM stack").fetchone()[0]
    conn.executemany(_QUEUE, rows)
    conn.execute(_NEW_HEADS, (before,))
    conn.execute(_NEW_COUNTS, (before,))


def backoff(attempts: int, schedule: tuple[float, ...], rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after `attempts` failed ones, with ±20 % jitter."""
    import random  # here, not at the top: `stack status` and `stack list` never need it

    base = schedule[min(attempts, len(schedule)) - 1] if schedule else 0.0
    jitter = (rng or random).uniform(0.8, 1.2)
    return base * jitter


_OURS = "seq = ? AND lease_owner = ? AND claims = ?"  # our claim still holds: no claim came after it


def settle(
    conn: sqlite3.Connection,
    outcomes: list[Outcome],
    owner: str,
    *,
    now: float,
    max_attempts: int,
    schedule: tuple[float, ...],
    rng: random.Random | None = None,
) -> list[Outcome]:
    """Write the outcomes of finished attempts, inside the caller's BEGIN IMMEDIATE transaction.

    OK deletes the record (unless another controller has since taken it over under a live
    lease: that one settles it, so an order never has two records in flight) and its
    history row goes in the same transaction; retry and failed update the
    record only while our claim still holds its lease. Each outcome counts one attempt
    (a claim cut short by a crash has none and counts nothing), except a network
    failure while the destination is paused and a `wait` (not sent at all).

    Returns the outcomes as written (a retry past StackMaxAttempts becomes failed, a
    paused store's reason says so), for the caller's tally; `outcomes` is left as it
    is, so a turn rolled back and tried again writes the same.
    """
    history = []
    written = []
    for o in outcomes:
        c = o.claimed
        if o.kind == "wait":
            conn.execute("UPDATE stack SET lease_owner = NULL, lease_until = NULL, unsettled = MAX(unsettled - 1, 0) "
                         f"WHERE {_OURS}", (c.seq, owner, c.claims))
            health.end_probe(conn, c.destination, owner)  # not sent: it probed nothing
            written.append(o)
            continue
        if o.transport and health.is_open(conn, c.destination):
            # The destination is paused as a whole (or this was its probe): no attempt is spent.
            health.note_transport_failure(conn, c.destination, o.reason, now=now, schedule=schedule)
            o = replace(o, reason=o.reason + NOT_COUNTED)
            conn.execute("UPDATE stack SET lease_owner = NULL, lease_until = NULL, unsettled = 0, last_status = NULL, "
                         f"last_error = ? WHERE {_OURS}", (o.reason, c.seq, owner, c.claims))
            history.append(_history_row(o, owner, now, "retry"))
            written.append(o)
            continue
        if o.transport:
            health.note_transport_failure(conn, c.destination, o.reason, now=now, schedule=schedule)
        else:
            health.note_answer(conn, c.destination)
        o = _write_outcome(conn, o, owner, now=now, max_attempts=max_attempts, schedule=schedule, rng=rng)
        history.append(_history_row(o, owner, now, o.kind))
        written.append(o)
    conn.executemany(
        "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, status, reason, "
        "answer, duration_ms, controller) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        history,
    )
    return written


def _history_row(o: Outcome, owner: str, now: float, kind: str) -> tuple[object, ...]:
    c = o.claimed
    return (now, c.uid, c.store, c.destination, c.order_number, c.attempts, kind, o.status, o.reason,
            o.answer[:EXCERPT], o.duration_ms, owner)


def _write_outcome(
    conn: sqlite3.Connection, o: Outcome, owner: str, *, now: float, max_attempts: int, schedule: tuple[float, ...],
    rng: random.Random | None,
) -> Outcome:
    """Write one counted outcome to its record; returns the outcome written (a retry may become failed)."""
    c = o.claimed
    if o.kind == "ok":
        # Delivered. But if a later claim is sending it again, leave the record to that one:
        # deleting it would let the order's next record go out while this one is still in
        # flight, and perhaps arrive after it.
        conn.execute(
            "DELETE FROM stack WHERE seq = ? AND (lease_owner IS NULL OR lease_until < ? "
            "OR (lease_owner = ? AND claims = ?))",
            (c.seq, now, owner, c.claims),
        )
        return o
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
    conn.executemany(
        "UPDATE stack SET lease_until = ? WHERE seq = ? AND lease_owner = ?",
        [(until, s, owner) for s in seqs],
    )


def release(conn: sqlite3.Connection, owner: str, seqs: list[int]) -> None:
    """Give back leases of records claimed but not sent (inside the caller's transaction); not counted as attempts.

    A probe among them probed nothing: its destination may be probed again at once.
    """
    if not seqs:
        return
    dests = [r[0] for r in conn.execute(
        "SELECT DISTINCT destination FROM stack WHERE seq IN (SELECT value FROM json_each(?)) AND lease_owner = ?",
        (json.dumps(seqs), owner))]
    conn.executemany(
        "UPDATE stack SET lease_owner = NULL, lease_until = NULL, unsettled = MAX(unsettled - 1, 0) "
        "WHERE seq = ? AND lease_owner = ?",
        [(s, owner) for s in seqs],
    )
    for dest in dests:
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


def due_left(conn: sqlite3.Connection, left: dict[str, int], *, now: float) -> dict[str, int]:
    """Of `left` (destination -> records), the destinations with records due now, and how many (as `status` counts)."""
    sending = live_leases(conn, now)
    due = {d: _destination_counts(conn, d, n, now, sending.get(d, 0))["due"] for d, n in left.items()}
    return {d: n for d, n in due.items() if n}


def still_on_stack(conn: sqlite3.Connection, uids: list[str]) -> set[str]:
    """Those of `uids` that are still on the stack (not delivered or dropped meanwhile)."""
    if not uids:
        return set()
    rows = conn.execute("SELECT uid FROM stack WHERE uid IN (SELECT value FROM json_each(?))", (json.dumps(uids),))
    return {r[0] for r in rows}


# -- the operator's views ----------------------------------------------------


SHORT_ID = 11  # "su_" and 8 hex digits: what the tables show; stack retry/drop take it


def short_id(uid: str) -> str:
    return uid[:SHORT_ID]


# A queued record behind its order's head when that head failed or waits for a retry (one lookup).
_HELD_BACK = (
    "EXISTS (SELECT 1 FROM stack_heads h WHERE h.order_id = s.order_id AND h.seq < s.seq "
    "AND (h.state = 'failed' OR h.next_attempt > :now))"
)


def list_records(
    db: Database, *, failed: bool = False, store: str | None = None, order: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Records on the stack in queue order, each with where it stands (the states `status` counts)."""
    if store:
        _known_store(db, store)
    now = time.time()
    sql = f"SELECT s.*, {_HELD_BACK} AS held FROM stack s WHERE 1 = 1"
    params: dict[str, object] = {"now": now, "limit": limit}
    if failed:
        sql += " AND s.state = 'failed'"
    if store:
        sql += " AND s.destination = :store"
        params["store"] = store
    if order:
        # Through the order's id, so that the (order_id, seq) index answers it.
        sql += " AND s.order_id IN (SELECT id FROM orders WHERE number = :order) AND s.order_number = :order"
        params["order"] = order
    sql += " ORDER BY s.seq LIMIT :limit"
    out = []
    for r in db.query(sql, params):
        state = r["state"]
        if state == "queued":
            if r["lease_until"] is not None and r["lease_until"] >= now:
                state = "sending"
            elif r["attempts"] and r["next_attempt"] > now:
                state = "retrying"
            elif r["held"]:
                state = "held"
        out.append(
            {
                "id": r["uid"], "order": r["order_number"], "store": r["store"], "destination": r["destination"],
                "state": state, "attempts": r["attempts"], "queued": r["queued"], "next_attempt": r["next_attempt"],
                "last_status": r["last_status"], "last_error": r["last_error"], "last_answer": r["last_answer"],
                "events": json.loads(r["payload"]).get("events", []),
            }
        )
    return out


def _destination_counts(conn: sqlite3.Connection, dest: str, records: int, now: float, sending: int) -> dict[str, Any]:
    """One destination's counts from its heads (only failed and retrying heads are read, through indexes).

    Only a head can be failed, retrying or sending; the records behind a failed or
    retrying head are held; every other record is due.
    """
    failed, held_f = conn.execute(
        "SELECT COUNT(*), TOTAL(records - 1) FROM stack_heads WHERE destination = ? AND state = 'failed'", (dest,)
    ).fetchone()
    retrying, held_r = conn.execute(
        "SELECT COUNT(*), TOTAL(records - 1) FROM stack_heads WHERE destination = ? AND state = 'queued' "
        "AND next_attempt > ?", (dest, now)
    ).fetchone()
    # A head is the oldest record of its order (records are queued in order).
    oldest = conn.execute("SELECT MIN(queued) FROM stack_heads WHERE destination = ?", (dest,)).fetchone()
    held = int(held_f + held_r)
    return {"store": dest, "queued": records, "due": max(0, records - failed - retrying - sending - held),
            "held": held, "retrying": retrying, "sending": sending, "failed": failed,
            "oldest_age": round(now - oldest[0], 1) if oldest[0] is not None else 0.0}


def status(db: Database, *, stale_after: float = health.STALE_AFTER_S) -> dict[str, Any]:
    """Controllers (alive or gone) and, per destination, the records by where they stand.

    queued: all records; due: a run now would send them (nothing earlier in
    their order is failed or waiting for a retry); held: waiting behind such
    an earlier record of their order; sending: leased by a controller;
    retrying: waiting for their next attempt; failed; oldest age; and a
    destination's pause (its circuit breaker) or misconfiguration, with why.
    Read from counters and the heads table: the cost does not grow with the records.
    """
    now = time.time()
    with db.reading() as conn:
        conn.execute("BEGIN")  # one snapshot for all the reads below
        try:
            sending = live_leases(conn, now)
            counts = conn.execute(
                "SELECT destination, records FROM stack_counts WHERE records > 0 ORDER BY destination").fetchall()
            stores = [_destination_counts(conn, d, int(n), now, sending.get(d, 0)) for d, n in counts]
            problems = health.shown_problems(conn, now=now)
            controllers = [
                {"id": c["id"], "pid": c["pid"], "host": c["host"], "mode": c["mode"], "started": c["started"],
                 "heartbeat": c["heartbeat"], "sent": c["sent"], "alive": now - c["heartbeat"] <= stale_after}
                for c in conn.execute("SELECT * FROM controllers ORDER BY started")
            ]
        finally:
            conn.execute("COMMIT")
    for s in stores:
        s.update(problems.pop(s["store"], health.NO_PROBLEM))
    return {"controllers": controllers, "stores": stores, "now": now,
            "other_store_problems": [{"store": d, **p} for d, p in sorted(problems.items())]}


def history(
    db: Database, *, order: str | None = None, since: float | None = None, store: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM stack_history WHERE 1 = 1"
    params: list[object] = []
    if store:
        # A store removed since still has its history; any other unknown name is a typo.
        if db.one("SELECT 1 FROM stack_history WHERE destination = ? LIMIT 1", (store,)) is None:
            _known_store(db, store)
        sql += " AND destination = ?"
        params.append(store)
    if order:
        sql += " AND order_number = ?"
        params.append(order)
    if since is not None:
        sql += " AND at >= ?"
        params.append(since)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    rows = [dict(r) for r in db.query(sql, tuple(params))]
    rows.reverse()
    for r in rows:
        r.pop("id", None)
    return rows


def _known_store(db: Database, name: str) -> None:
    """A filter naming an unknown store is refused: a typo must not look like an empty stack."""
    from statusctl.core.stores import get_store

    get_store(db, name)


def _select(conn: sqlite3.Connection, ids: list[str], failed: bool) -> list[sqlite3.Row]:
    if failed:
        return conn.execute(
            "SELECT seq, uid, order_number, store, destination, attempts, lease_until FROM stack WHERE state = 'failed' "
            "ORDER BY seq"
        ).fetchall()
    columns = "seq, uid, order_number, store, destination, attempts, lease_until"
    rows: dict[str, sqlite3.Row] = {}  # an id given twice is one record (dropped once, counted once)
    for given in ids:
        row = conn.execute(f"SELECT {columns} FROM stack WHERE uid = ?", (given,)).fetchone()
        if row is None and len(given) >= SHORT_ID - 2:
            # The short id the tables show, or any unique beginning of an id.
            prefix = given.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            found = conn.execute(
                f"SELECT {columns} FROM stack WHERE uid LIKE ? ESCAPE '\\' LIMIT 2", (prefix + "%",)
            ).fetchall()
            if len(found) > 1:
                raise InputError(f"Record id {shown(given)} is the beginning of several ids; give more of it.")
            row = found[0] if found else None
        if row is None:
            raise NotFound(f"No record {shown(given)} on the stack; `statusctl stack list` shows them.")
        rows[row["uid"]] = row
    return list(rows.values())


def retry(db: Database, ids: list[str], *, failed: bool = False, now: float | None = None) -> int:
    """Make records due now with a fresh attempt count (failed ones become queued again)."""
    if not ids and not failed:
        raise InputError("Name record ids or use --failed.")
    now = time.time() if now is None else now
    with db.tx() as conn:
        rows = _select(conn, ids, failed)
        # A record under a live lease is being sent right now: freeing it would let a
        # second controller send it at the same time, so it is refused (and, should a
        # claim race this, left alone by the WHERE below).
        _refuse_busy(rows, now, "retry")
        cur = conn.executemany(
            "UPDATE stack SET state = 'queued', attempts = 0, unsettled = 0, next_attempt = ?, lease_owner = NULL, "
            "lease_until = NULL "
            "WHERE seq = ? AND (lease_until IS NULL OR lease_until < ?)",
            [(now, r["seq"], now) for r in rows],
        )
    return max(cur.rowcount, 0)


def drop(
    db: Database, ids: list[str], *, failed: bool = False, who: str = "operator", now: float | None = None
) -> int:
    """Delete records from the stack, keeping a history row for each."""
    if not ids and not failed:
        raise InputError("Name record ids or use --failed.")
    now = time.time() if now is None else now
    with db.tx() as conn:
        rows = _select(conn, ids, failed)
        # Deleting a record while a controller sends it would let the order's next record
        # go out at the same time, maybe first: the order per order would be broken.
        _refuse_busy(rows, now, "drop")
        conn.executemany("DELETE FROM stack WHERE seq = ?", [(r["seq"],) for r in rows])
        conn.executemany(
            "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, reason, controller) "
            "VALUES (?, ?, ?, ?, ?, ?, 'dropped', 'dropped by the operator', ?)",
            [(now, r["uid"], r["store"], r["destination"], r["order_number"], r["attempts"], who) for r in rows],
        )
    return len(rows)


def _refuse_busy(rows: list[sqlite3.Row], now: float, verb: str) -> None:
    """Refuse to `verb` a record a controller is sending right now (its lease is live)."""
    for r in rows:
        if r["lease_until"] is not None and r["lease_until"] >= now:
            raise InputError(
                f"Record {r['uid']} is being sent right now; {verb} it when that send is over "
                f"(its lease ends within {max(1, math.ceil(r['lease_until'] - now))} s)."
            )


def count_selected(db: Database, ids: list[str], *, failed: bool) -> int:
    with db.tx() as conn:
        return len(_select(conn, ids, failed))
