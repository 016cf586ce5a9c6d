"""Claiming: which due records a controller leases next, shared fairly among destinations.

Only an order's head (its lowest-seq record) may be claimed; `stack_heads` holds
the heads (kept by triggers, see migration 0004), so a claim reads only heads,
however many records wait behind failed or retrying ones. Free slots are shared
among the destinations with due heads: each slot goes to the destination with
the fewest records under a live lease (over every controller), soonest due first
on a tie, within its `max_in_flight`, its `rate` (records that would start more
than `RATE_HORIZON_S` ahead are left for later) and its circuit breaker (a paused
destination gets nothing, a half-open one a single probe).

A record whose sends were cut short `POISON_CUTS` times in a row (its controller
died or lost the lease before an outcome) is failed here instead of claimed again:
it may be what kills the controllers.

On SQLite the claim runs inside BEGIN IMMEDIATE (one writer at a time). On
PostgreSQL several controllers claim at the same moment: each takes the
bookkeeping lock of every destination it may claim from (sorted, see
statusctl.storage.stacklocks) before it counts live leases or reads a breaker or
a rate, so `max_in_flight`, `rate` and the one probe hold over all of them, and
reads the heads `FOR UPDATE SKIP LOCKED` with the LIMIT inside a materialised
CTE (as procrastinate, pgqueuer and good_job do), so that a head another
transaction is changing is passed over, not waited for.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from statusctl.domain import limits
from statusctl.storage import dialect, health, stacklocks
from statusctl.storage.stores import read_limits

POISON_CUTS = 5
RATE_HORIZON_S = 1.0
BUSY_RETRY_S = 0.2  # when every due record of a destination waits for another controller's slot


@dataclass
class Claimed:
    seq: int
    uid: str
    order_number: str
    store: str
    destination: str
    payload: dict[str, Any]
    attempts: int  # this attempt's number: the attempts with an outcome so far, plus one
    queued: float
    claims: int = 0  # the record's claim count after this claim: with the owner, which claim this is
    start_at: float = 0.0  # do not send before this time (the destination's rate)


@dataclass
class _Room:
    destination: str
    cap: int
    probe: bool = False
    rate: float | None = None


def _destinations(conn: sqlite3.Connection, stores: Iterable[str] | None, skip: Iterable[str]) -> list[str]:
    names = [r[0] for r in conn.execute("SELECT destination FROM stack_counts WHERE records > 0 ORDER BY destination")]
    return _claimable(names, stores, skip)


def _claimable(names: Iterable[str], stores: Iterable[str] | None, skip: Iterable[str]) -> list[str]:
    """Of `names`, those a claim of `stores` (None: all) that skips `skip` takes from, sorted."""
    wanted = set(stores) if stores else None
    skipped = set(skip)
    return sorted(d for d in names if (wanted is None or d in wanted) and d not in skipped)


def live_leases(conn: sqlite3.Connection, now: float) -> dict[str, int]:
    """Records under a live lease per destination (only heads are ever leased).

    Counted here rather than with GROUP BY, which makes SQLite scan every head
    instead of the few leased ones the partial index `stack_heads_leased` holds.
    """
    return _count_live(conn.execute("SELECT destination FROM stack_heads WHERE lease_until >= ?", (now,)))


def _count_live(rows: Iterable[Any]) -> dict[str, int]:
    live: dict[str, int] = {}
    for (dest,) in rows:
        live[dest] = live.get(dest, 0) + 1
    return live


def _bookkeeping(conn: sqlite3.Connection, now: float) -> tuple[dict[str, int], dict[str, health.Health]]:
    """The live leases per destination and every destination's health, in one round trip on PostgreSQL."""
    with stacklocks.pipelined(conn):  # both sent at once; their rows are read once the pipeline is synced
        leased = conn.execute("SELECT destination FROM stack_heads WHERE lease_until >= ?", (now,))
        states = health.read_cursor(conn)
    return _count_live(leased), health.states(states)


def _rooms(
    conn: sqlite3.Connection, dests: list[str], live: dict[str, int], *, now: float,
    store_limits: dict[str, limits.Limits] | None, states: dict[str, health.Health] | None = None,
) -> tuple[list[_Room], dict[str, health.Health]]:
    """Per destination: how many records it may have claimed now (`live`: its live leases), and whether
    that one is a probe (`states`: the destinations' health, read here if not given)."""
    lims = store_limits if store_limits is not None else read_limits(conn)
    states = health.read(conn) if states is None else states
    rooms = []
    for dest in dests:
        lim = lims.get(dest, limits.DEFAULT)
        room = _Room(dest, lim.max_in_flight - live.get(dest, 0), rate=lim.rate)
        h = states.get(dest)
        if h is not None and h.opened:
            room.cap = 0 if h.paused(now) else min(room.cap, 1)
            room.probe = True
        if lim.rate and room.cap > 0:
            first = max(now, (h.next_start if h else None) or 0.0)
            room.cap = min(room.cap, int((now + RATE_HORIZON_S - first) * lim.rate) + 1 if first <= now + RATE_HORIZON_S else 0)
        rooms.append(room)
    return rooms, states


_DUE_HEADS = (
    "SELECT seq, next_attempt FROM stack_heads WHERE destination = ? AND state = 'queued' "
    "AND next_attempt <= ? AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt, seq LIMIT ?"
)
# The rows are locked as the LIMIT reads them (a plain subquery could be inlined and lock more).
_PG_DUE_HEADS = f"WITH h AS MATERIALIZED ({_DUE_HEADS} FOR UPDATE SKIP LOCKED) SELECT * FROM h ORDER BY next_attempt, seq"


def _heads(conn: sqlite3.Connection, dest: str, now: float, count: int) -> list[tuple[int, float]]:
    """Up to `count` claimable heads of a destination, (seq, next_attempt), soonest due first (locked on PostgreSQL)."""
    sql = _PG_DUE_HEADS if stacklocks.on_postgres(conn) else _DUE_HEADS
    return [(int(s), float(n)) for s, n in conn.execute(sql, (dest, now, now, count))]


def share(rooms: list[_Room], candidates: dict[str, deque[tuple[int, float]]], levels: dict[str, int],
          limit: int) -> dict[str, list[int]]:
    """Give `limit` slots one at a time to the destination with the fewest live leases (then the soonest due)."""
    taken: dict[str, list[int]] = {r.destination: [] for r in rooms}
    caps = {r.destination: r.cap for r in rooms}
    level = dict(levels)
    for _ in range(limit):
        open_ = [d for d, q in candidates.items() if q and len(taken[d]) < caps[d]]
        if not open_:
            break
        best = min(open_, key=lambda d: (level.get(d, 0), candidates[d][0][1], candidates[d][0][0]))
        taken[best].append(candidates[best].popleft()[0])
        level[best] = level.get(best, 0) + 1
    return {d: seqs for d, seqs in taken.items() if seqs}


def _fail_poisoned(conn: sqlite3.Connection, seqs: list[int], *, now: float, owner: str) -> None:
    """Fail the records among `seqs` whose sends were cut short POISON_CUTS times in a row."""
    marks = ",".join("?" * len(seqs))
    rows = conn.execute(
        f"SELECT seq, uid, store, destination, order_number, attempts, unsettled FROM stack "
        f"WHERE seq IN ({marks}) AND unsettled >= ?", (*seqs, POISON_CUTS)
    ).fetchall()
    for seq, uid, store, dest, number, attempts, cuts in rows:
        reason = (f"its sends were cut short {cuts} times in a row (the controller stopped or crashed before an "
                  "outcome): failed so that it cannot stop controllers for ever; `stack retry` sends it again")
        conn.execute(
            "UPDATE stack SET state = 'failed', lease_owner = NULL, lease_until = NULL, unsettled = 0, "
            "last_status = NULL, last_error = ?, last_answer = NULL WHERE seq = ?", (reason, seq))
        conn.execute(
            "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, reason, "
            "controller) VALUES (?, ?, ?, ?, ?, ?, 'failed', ?, ?)",
            (now, uid, store, dest, number, attempts, reason, owner))


_LEASE = "UPDATE stack SET lease_owner = ?, lease_until = ?, claims = claims + 1, unsettled = unsettled + 1 "
_LEASED = "seq, uid, order_number, store, destination, payload, attempts, queued, claims"
# One destination on PostgreSQL: its heads locked and leased in one statement (all of them are the
# plan: `share` gives a lone destination every head up to its cap); a head left out by `unsettled`
# comes back with NULLs, to be failed.
_PG_LEASE_HEADS = (
    f"WITH h AS MATERIALIZED ({_DUE_HEADS} FOR UPDATE SKIP LOCKED), "
    f"u AS ({_LEASE} FROM h WHERE stack.seq = h.seq AND stack.unsettled < ? RETURNING stack.{_LEASED}) "
    "SELECT h.seq, u.uid, u.order_number, u.store, u.destination, u.payload, u.attempts, u.queued, u.claims "
    "FROM h LEFT JOIN u ON u.seq = h.seq"
)


def _lease(conn: sqlite3.Connection, rooms: list[_Room], live: dict[str, int], owner: str, limit: int, *,
           now: float, until: float) -> list[Any]:
    """Lease the heads `share` plans for `rooms` until `until`: the leased records' rows (`_LEASED`).

    A record cut short POISON_CUTS times is not leased; it is failed here (rare: read only then).
    """
    if len(rooms) == 1 and stacklocks.on_postgres(conn):
        room = rooms[0]
        got = conn.execute(_PG_LEASE_HEADS, (room.destination, now, now, min(room.cap, limit), owner, until,
                                             POISON_CUTS)).fetchall()
        rows = [r for r in got if r[1] is not None]
        chosen = [int(r[0]) for r in got]
    else:
        candidates = {r.destination: deque(_heads(conn, r.destination, now, min(r.cap, limit))) for r in rooms}
        chosen = [s for seqs in share(rooms, candidates, live, limit).values() for s in seqs]
        if not chosen:
            return []
        rows = conn.execute(
            f"{_LEASE}WHERE seq IN ({','.join('?' * len(chosen))}) AND unsettled < ? RETURNING {_LEASED}",
            (owner, until, *chosen, POISON_CUTS),
        ).fetchall()
    if len(rows) < len(chosen):
        leased = {int(r[0]) for r in rows}
        _fail_poisoned(conn, [s for s in chosen if s not in leased], now=now, owner=owner)
    return rows


def claim(
    conn: sqlite3.Connection,
    owner: str,
    limit: int,
    lease_seconds: float,
    *,
    now: float | None = None,
    stores: list[str] | None = None,
    skip_destinations: Iterable[str] = (),
    store_limits: dict[str, limits.Limits] | None = None,
    turn: Turn | None = None,
) -> list[Claimed]:
    """Lease up to `limit` due heads, shared fairly among destinations (see the module docstring).

    Runs inside the caller's writing transaction. Without `now`, the database's
    clock is read once the destinations' locks are held (PostgreSQL), so a lease
    is measured from when it is granted, not from before a wait for another
    controller's claim. The claim counts no attempt: only an outcome does (`settle`).
    With the `turn` of `begin_turn(claiming=True)` (same `stores` and skips), the
    destinations it locked are the ones claimed from, without locking them again.
    """
    if limit <= 0:
        return []
    if turn is not None and turn.locked is not None:
        dests = turn.locked.claimable  # begin_turn(claiming=True) locked them, for these stores and skips
    elif stacklocks.on_postgres(conn):
        locked = stacklocks.lock_destinations(conn, claimable=True, stores=stores, skip=skip_destinations)
        assert locked is not None
        dests, now = locked.claimable, locked.clock if now is None else now
    else:
        dests = _destinations(conn, stores, skip_destinations)
    now = dialect.now(conn) if now is None else now
    live, states = _bookkeeping(conn, now)
    rooms, _ = _rooms(conn, dests, live, now=now, store_limits=store_limits, states=states)
    rooms = [r for r in rooms if r.cap > 0]
    rows = _lease(conn, rooms, live, owner, limit, now=now, until=now + lease_seconds)
    if not rows:
        return []
    rows.sort(key=lambda r: r[0])
    out = [Claimed(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6] + 1, r[7], r[8]) for r in rows]
    by_room = {r.destination: r for r in rooms}
    for dest in sorted({c.destination for c in out}):
        room = by_room[dest]
        mine = [c for c in out if c.destination == dest]
        if room.probe:
            health.start_probe(conn, dest, owner, now + lease_seconds)
        if room.rate:
            for c, start in zip(mine, health.take_starts(conn, dest, len(mine), room.rate, now=now), strict=True):
                c.start_at = start
    return out


@dataclass
class Turn:
    """What `begin_turn` found: the database's clock for the turn and, on PostgreSQL, what it locked
    (with the stores' config_version, read in the same statement)."""

    now: float
    locked: stacklocks.Locked | None = None

    @property
    def config_version(self) -> int | None:
        return None if self.locked is None else self.locked.config_version


def begin_turn(
    conn: sqlite3.Connection,
    touched: Iterable[str],
    *,
    claiming: bool,
    stores: list[str] | None = None,
    skip_destinations: Iterable[str] = (),
) -> Turn:
    """Start a controller's turn (settle, then claim, in one transaction): the database's clock for it.

    On PostgreSQL the bookkeeping locks of every destination the turn may touch
    (`touched`: the outcomes' and notes' destinations; with `claiming`, those it
    may claim from) are taken at once, in one order, before any row lock: taken
    one part at a time, a settle's row locks could cross another turn's claim.
    The clock is read once they are held, so that a lease is measured from when
    it is granted, not from before a wait for another controller's turn.
    """
    locked = stacklocks.lock_destinations(conn, touched, claimable=claiming, stores=stores, skip=skip_destinations)
    if locked is None:
        return Turn(dialect.now(conn))
    return Turn(locked.clock, locked if claiming else None)


def soonest_due(
    conn: sqlite3.Connection,
    *,
    now: float,
    stores: list[str] | None = None,
    skip_destinations: Iterable[str] = (),
    store_limits: dict[str, limits.Limits] | None = None,
) -> float | None:
    """Seconds until a claim could take a record (0: now), or None when no unleased head is left.

    A destination's first unleased head counts from when it is due, its pause
    ends or its rate allows the next start.
    """
    dests = _destinations(conn, stores, skip_destinations)
    rooms, states = _rooms(conn, dests, live_leases(conn, now), now=now, store_limits=store_limits)
    soonest: float | None = None
    for room in rooms:
        row = conn.execute(
            "SELECT next_attempt FROM stack_heads WHERE destination = ? AND state = 'queued' "
            "AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt LIMIT 1",
            (room.destination, now),
        ).fetchone()
        if row is None:
            continue
        at = float(row[0])
        h = states.get(room.destination)
        if room.cap <= 0 and at <= now:
            if h is not None and h.opened and h.paused(now):
                at = h.paused_until if h.paused_until and h.paused_until > now else (h.probe_until or now) + BUSY_RETRY_S
            elif room.rate and h is not None and h.next_start:
                at = max(now, h.next_start - RATE_HORIZON_S)
            else:
                at = now + BUSY_RETRY_S  # all its slots are taken: one frees when a send ends
        soonest = at if soonest is None else min(soonest, at)
    return None if soonest is None else max(0.0, soonest - now)
