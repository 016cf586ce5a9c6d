"""The operator's views of the stack: `stack list`, `stack status`, `stack history`, retry and drop.

Every count is read from the heads table and the per-destination counters kept
by migration 0004's triggers (see statusctl.storage.stack), so the views cost the
same however many records wait. Where a record stands is judged by the database's
clock (the server's on PostgreSQL), as the controllers judge leases and due times.
statusctl.storage.stack re-exports these names.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from statusctl.domain.errors import InputError, NotFound, shown
from statusctl.storage import dialect, health, stacklocks
from statusctl.storage.claiming import live_leases
from statusctl.storage.db import Database

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
    now = db.now()
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
    sql += " ORDER BY s.seq" + (" LIMIT :limit" if limit >= 0 else "")  # a negative limit: all (PostgreSQL has no LIMIT -1)
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


_HELD = "CAST(COALESCE(SUM(records - 1), 0) AS BIGINT)"  # the records behind these heads (0 for none)


def _destination_counts(conn: sqlite3.Connection, dest: str, records: int, now: float, sending: int) -> dict[str, Any]:
    """One destination's counts from its heads (only failed and retrying heads are read, through indexes).

    Only a head can be failed, retrying or sending; the records behind a failed or
    retrying head are held; every other record is due.
    """
    failed, held_f = conn.execute(
        f"SELECT COUNT(*), {_HELD} FROM stack_heads WHERE destination = ? AND state = 'failed'", (dest,)
    ).fetchone()
    retrying, held_r = conn.execute(
        f"SELECT COUNT(*), {_HELD} FROM stack_heads WHERE destination = ? AND state = 'queued' "
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
    with db.reading() as conn:
        # One snapshot for all the reads below (PostgreSQL's READ COMMITTED takes one per statement).
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if stacklocks.on_postgres(conn) else "BEGIN")
        try:
            now = dialect.now(conn)
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
    sql += " ORDER BY id DESC"
    if limit >= 0:  # a negative limit: all (PostgreSQL has no LIMIT -1)
        sql += " LIMIT ?"
        params.append(limit)
    rows = [dict(r) for r in db.query(sql, tuple(params))]
    rows.reverse()
    for r in rows:
        r.pop("id", None)
    return rows


def _known_store(db: Database, name: str) -> None:
    """A filter naming an unknown store is refused: a typo must not look like an empty stack."""
    from statusctl.storage.stores import get_store

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
    for attempt in db.transactions():
        with attempt as conn:
            when = dialect.now(conn) if now is None else now
            # A record under a live lease is being sent right now: freeing it would let a
            # second controller send it at the same time, so it is refused (and, should a
            # claim race this, left alone by the WHERE below).
            rows = _not_busy(conn, ids, failed, when, "retry")
            cur = conn.executemany(
                "UPDATE stack SET state = 'queued', attempts = 0, unsettled = 0, next_attempt = ?, lease_owner = NULL, "
                "lease_until = NULL "
                "WHERE seq = ? AND (lease_until IS NULL OR lease_until < ?)",
                [(when, r["seq"], when) for r in rows],
            )
            changed = max(cur.rowcount, 0)
    return changed


def drop(
    db: Database, ids: list[str], *, failed: bool = False, who: str = "operator", now: float | None = None
) -> int:
    """Delete records from the stack, keeping a history row for each."""
    for attempt in db.transactions():
        with attempt as conn:
            when = dialect.now(conn) if now is None else now
            # Deleting a record while a controller sends it would let the order's next record
            # go out at the same time, maybe first: the order per order would be broken.
            rows = _not_busy(conn, ids, failed, when, "drop")
            conn.executemany("DELETE FROM stack WHERE seq = ?", [(r["seq"],) for r in rows])
            conn.executemany(
                "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, reason, "
                "controller) VALUES (?, ?, ?, ?, ?, ?, 'dropped', 'dropped by the operator', ?)",
                [(when, r["uid"], r["store"], r["destination"], r["order_number"], r["attempts"], who) for r in rows],
            )
    return len(rows)


def _not_busy(conn: sqlite3.Connection, ids: list[str], failed: bool, now: float, verb: str) -> list[sqlite3.Row]:
    """The records named (or every failed one); refuses to `verb` any a controller is sending right now.

    On PostgreSQL the records are read again once their orders' heads are locked
    (statusctl.storage.stacklocks): a claim holding one is waited for, and a claim
    after passes it over, so none slips in between the check and the change.
    """
    if not ids and not failed:
        raise InputError("Name record ids or use --failed.")
    rows = _select(conn, ids, failed)
    if stacklocks.on_postgres(conn) and rows:
        stacklocks.lock_heads(conn, [r["seq"] for r in rows])
        rows = _select(conn, ids, failed)
    for r in rows:
        if r["lease_until"] is not None and r["lease_until"] >= now:
            raise InputError(
                f"Record {r['uid']} is being sent right now; {verb} it when that send is over "
                f"(its lease ends within {max(1, math.ceil(r['lease_until'] - now))} s)."
            )
    return rows


def count_selected(db: Database, ids: list[str], *, failed: bool) -> int:
    with db.tx() as conn:
        return len(_select(conn, ids, failed))


def due_left(conn: sqlite3.Connection, left: dict[str, int], *, now: float) -> dict[str, int]:
    """Of `left` (destination -> records), the destinations with records due now, and how many (as `status` counts)."""
    sending = live_leases(conn, now)
    due = {d: _destination_counts(conn, d, n, now, sending.get(d, 0))["due"] for d, n in left.items()}
    return {d: n for d, n in due.items() if n}
