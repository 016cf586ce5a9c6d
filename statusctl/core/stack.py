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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from statusctl.core.db import Database
from statusctl.core.errors import InputError, NotFound, shown

if TYPE_CHECKING:
    import random

EXCERPT = 300
# The longest wait before a retry: a cart's "Retry-After: 1e300" would park the record for
# ever, and a time that far out cannot even be shown (time_t overflows).
MAX_DELAY_S = 7 * 86400.0


@dataclass
class Claimed:
    seq: int
    uid: str
    order_number: str
    store: str
    destination: str
    payload: dict[str, Any]
    attempts: int  # including this one
    queued: float


@dataclass
class Outcome:
    """How one attempt ended, to be written by `settle`."""

    claimed: Claimed
    kind: str  # ok | retry | failed
    status: int | None = None
    reason: str = ""
    answer: str = ""
    retry_after: float | None = None
    duration_ms: int = 0


_HEAD = "s.seq = (SELECT MIN(t.seq) FROM stack t WHERE t.order_id = s.order_id)"


def claim(
    conn: sqlite3.Connection,
    owner: str,
    limit: int,
    lease_seconds: float,
    *,
    now: float,
    stores: list[str] | None = None,
    skip_orders: set[int] | frozenset[int] = frozenset(),
) -> list[Claimed]:
    """Lease up to `limit` due records, each the head of its order (one UPDATE … RETURNING).

    Runs inside the caller's BEGIN IMMEDIATE transaction.
    """
    where = [
        "s.state = 'queued'",
        "s.next_attempt <= :now",
        "(s.lease_until IS NULL OR s.lease_until < :now)",
        _HEAD,
    ]
    params: dict[str, Any] = {"now": now, "owner": owner, "until": now + lease_seconds, "limit": limit}
    if stores:
        marks = ",".join(f":st{i}" for i in range(len(stores)))
        where.append(f"s.destination IN ({marks})")
        params.update({f"st{i}": s for i, s in enumerate(stores)})
    if skip_orders:
        where.append(f"s.order_id NOT IN ({','.join(str(int(o)) for o in skip_orders)})")
    sql = (
        "UPDATE stack SET lease_owner = :owner, lease_until = :until, attempts = attempts + 1 "
        f"WHERE seq IN (SELECT s.seq FROM stack s WHERE {' AND '.join(where)} "
        "ORDER BY s.next_attempt, s.seq LIMIT :limit) "
        "RETURNING seq, uid, order_number, store, destination, payload, attempts, queued"
    )
    rows = conn.execute(sql, params).fetchall()
    rows.sort(key=lambda r: r["seq"])
    return [
        Claimed(r["seq"], r["uid"], r["order_number"], r["store"], r["destination"], json.loads(r["payload"]),
                r["attempts"], r["queued"])
        for r in rows
    ]


def soonest_due(conn: sqlite3.Connection, *, now: float, stores: list[str] | None = None) -> float | None:
    """Seconds until the next unleased head record is due (0 if one is due now), or None."""
    sql = (
        f"SELECT MIN(s.next_attempt) FROM stack s WHERE s.state = 'queued' "
        f"AND (s.lease_until IS NULL OR s.lease_until < ?) AND {_HEAD}"
    )
    params: list[object] = [now]
    if stores:
        sql += f" AND s.destination IN ({','.join('?' * len(stores))})"
        params += stores
    value = conn.execute(sql, params).fetchone()[0]
    return None if value is None else max(0.0, float(value) - now)


def backoff(attempts: int, schedule: tuple[float, ...], rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after `attempts` failed ones, with ±20 % jitter."""
    import random  # here, not at the top: `stack status` and `stack list` never need it

    base = schedule[min(attempts, len(schedule)) - 1] if schedule else 0.0
    jitter = (rng or random).uniform(0.8, 1.2)
    return base * jitter


def settle(
    conn: sqlite3.Connection,
    outcomes: list[Outcome],
    owner: str,
    *,
    now: float,
    max_attempts: int,
    schedule: tuple[float, ...],
    rng: random.Random | None = None,
) -> None:
    """Write the outcomes of finished attempts, inside the caller's BEGIN IMMEDIATE transaction.

    OK deletes the record (unless another controller has since taken it over under a live
    lease: that one settles it, so an order never has two records in flight) and its
    history row goes in the same transaction; retry and failed update the
    record only while our claim still holds its lease.
    """
    history = []
    for o in outcomes:
        c = o.claimed
        kind = o.kind
        # A live lease is still ours only if no claim came after ours (each claim counts an attempt):
        # after our lease ran out, another controller — or this one — may have claimed it again.
        if kind == "ok":
            # Delivered. But if a later claim is sending it again, leave the record to that one:
            # deleting it would let the order's next record go out while this one is still in
            # flight, and perhaps arrive after it.
            conn.execute(
                "DELETE FROM stack WHERE seq = ? AND (lease_owner IS NULL OR lease_until < ? "
                "OR (lease_owner = ? AND attempts = ?))",
                (c.seq, now, owner, c.attempts),
            )
        else:
            if kind == "retry" and c.attempts >= max_attempts:
                # The outcome itself changes, so the caller's tally counts it as failed too.
                kind = o.kind = "failed"
                o.reason = f"{o.reason} (gave up after {c.attempts} attempts)"
            if kind == "retry":
                delay = min(max(backoff(c.attempts, schedule, rng), o.retry_after or 0.0), MAX_DELAY_S)
                conn.execute(
                    "UPDATE stack SET next_attempt = ?, lease_owner = NULL, lease_until = NULL, last_status = ?, "
                    "last_error = ?, last_answer = ? WHERE seq = ? AND lease_owner = ? AND attempts = ?",
                    (now + delay, o.status, o.reason, o.answer[:EXCERPT], c.seq, owner, c.attempts),
                )
            else:
                conn.execute(
                    "UPDATE stack SET state = 'failed', lease_owner = NULL, lease_until = NULL, last_status = ?, "
                    "last_error = ?, last_answer = ? WHERE seq = ? AND lease_owner = ? AND attempts = ?",
                    (o.status, o.reason, o.answer[:EXCERPT], c.seq, owner, c.attempts),
                )
        history.append(
            (now, c.uid, c.store, c.destination, c.order_number, c.attempts, kind, o.status, o.reason,
             o.answer[:EXCERPT], o.duration_ms, owner)
        )
    conn.executemany(
        "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, status, reason, "
        "answer, duration_ms, controller) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        history,
    )


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
    """Give back leases of records claimed but not sent (inside the caller's transaction); not counted as attempts."""
    conn.executemany(
        "UPDATE stack SET lease_owner = NULL, lease_until = NULL, attempts = MAX(attempts - 1, 0) "
        "WHERE seq = ? AND lease_owner = ?",
        [(s, owner) for s in seqs],
    )


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
    """Records left per destination, and failed records (of `stores`, or all)."""
    left = {d: n for d, n in conn.execute("SELECT destination, COUNT(*) FROM stack GROUP BY destination")}
    sql = "SELECT COUNT(*) FROM stack WHERE state = 'failed'"
    params: tuple[object, ...] = ()
    if stores:
        sql += f" AND destination IN ({','.join('?' * len(stores))})"
        params = tuple(stores)
    return left, int(conn.execute(sql, params).fetchone()[0])


# -- the operator's views ----------------------------------------------------


SHORT_ID = 11  # "su_" and 8 hex digits: what the tables show; stack retry/drop take it


def short_id(uid: str) -> str:
    return uid[:SHORT_ID]


# A queued record behind an earlier record of its order that failed or waits for a retry.
_HELD_BACK = (
    "EXISTS (SELECT 1 FROM stack h WHERE h.order_id = s.order_id AND h.seq < s.seq "
    "AND (h.state = 'failed' OR h.next_attempt > :now))"
)


def list_records(
    db: Database, *, failed: bool = False, store: str | None = None, order: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Records on the stack in queue order, each with where it stands (the states `status` counts)."""
    now = time.time()
    sql = f"SELECT s.*, {_HELD_BACK} AS held FROM stack s WHERE 1 = 1"
    params: dict[str, object] = {"now": now, "limit": limit}
    if failed:
        sql += " AND s.state = 'failed'"
    if store:
        sql += " AND s.destination = :store"
        params["store"] = store
    if order:
        sql += " AND s.order_number = :order"
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


def status(db: Database, *, stale_after: float = 30.0) -> dict[str, Any]:
    """Controllers (alive or gone) and, per destination, the records by where they stand.

    queued: all records; due: a run now would send them (nothing earlier in
    their order is failed or waiting for a retry); held: waiting behind such
    an earlier record of their order; sending: leased by a controller;
    retrying: waiting for their next attempt; failed; oldest age.
    """
    now = time.time()
    held_back = _HELD_BACK
    stores = []
    for r in db.query(
        "SELECT destination, COUNT(*) AS queued, "
        "SUM(state = 'queued' AND next_attempt <= :now AND (lease_until IS NULL OR lease_until < :now) "
        f"AND NOT {held_back}) AS due, "
        f"SUM(state = 'queued' AND {held_back}) AS held, "
        "SUM(state = 'queued' AND attempts > 0 AND next_attempt > :now) AS retrying, "
        "SUM(state = 'queued' AND lease_until >= :now) AS sending, "
        "SUM(state = 'failed') AS failed, MIN(queued) AS oldest "
        "FROM stack s GROUP BY destination ORDER BY destination",
        {"now": now},
    ):
        stores.append(
            {"store": r["destination"], "queued": r["queued"], "due": r["due"] or 0, "held": r["held"] or 0,
             "retrying": r["retrying"] or 0, "sending": r["sending"] or 0, "failed": r["failed"] or 0,
             "oldest_age": round(now - r["oldest"], 1)}
        )
    controllers = [
        {"id": c["id"], "pid": c["pid"], "host": c["host"], "mode": c["mode"], "started": c["started"],
         "heartbeat": c["heartbeat"], "sent": c["sent"], "alive": now - c["heartbeat"] <= stale_after}
        for c in db.query("SELECT * FROM controllers ORDER BY started")
    ]
    return {"controllers": controllers, "stores": stores, "now": now}


def history(db: Database, *, order: str | None = None, since: float | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    sql = "SELECT * FROM stack_history WHERE 1 = 1"
    params: list[object] = []
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
            "UPDATE stack SET state = 'queued', attempts = 0, next_attempt = ?, lease_owner = NULL, lease_until = NULL "
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
