"""What the controllers sharing a database know about each destination (the `store_health` table).

- The circuit breaker: after `BREAKER_FAILURES` consecutive network-level failures
  (timeouts, refused or reset connections) the destination is paused as a whole.
  When the pause ends one record is claimed as a probe; another network failure
  pauses it again for longer (StackRetrySchedule's steps, at most `LONGEST_PAUSE_S`),
  any answer from the cart closes the breaker. Sends that fail at the network
  level while the breaker is open do not count as attempts.
- A misconfiguration a controller met (a `--secret-env` variable it does not
  have): the records wait; the row says which controller saw it and why. It is
  cleared when a controller can use the store, and shown only while the
  controller that saw it is alive or for `MISCONFIGURED_KEEP_S` after (a cron
  run's note is seen between its runs; a note of a run that never comes back
  expires).
- The rate limiter's next free start (`next_start`, see statusctl.domain.limits).

A store's row goes when the store is removed or changed (`forget`): its
settings are what a pause or a misconfiguration was about.

Every function runs inside the caller's transaction. On PostgreSQL the claims and
settles that read a row to change it hold the destination's bookkeeping lock
(statusctl.storage.stacklocks); the reads that decide a change also lock the row,
so a caller without that lock cannot lose another's update either.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from statusctl.storage import dialect

BREAKER_FAILURES = 5
LONGEST_PAUSE_S = 300.0
STALE_AFTER_S = 30.0  # a controller whose heartbeat is older than this is gone (it beats every 2 s at most)
MISCONFIGURED_KEEP_S = 3600.0  # how long a misconfiguration noted by a controller now gone is still shown


@dataclass
class Health:
    destination: str
    failures: int = 0
    opened: int = 0  # times paused in a row (0: the breaker is closed)
    paused_until: float | None = None
    reason: str | None = None
    since: float | None = None
    probe_until: float | None = None
    next_start: float | None = None

    def paused(self, now: float) -> bool:
        """No record may be claimed (the pause runs, or the one probe is out)."""
        if not self.opened:
            return False
        if self.paused_until is not None and self.paused_until > now:
            return True
        return self.probe_until is not None and self.probe_until >= now


def read(conn: sqlite3.Connection) -> dict[str, Health]:
    return states(read_cursor(conn))


def read_cursor(conn: sqlite3.Connection) -> Any:
    """The statement of `read`, sent (in a pipeline, not yet waited for): `states` reads its rows."""
    return conn.execute(
        "SELECT destination, failures, opened, paused_until, reason, since, probe_until, next_start FROM store_health")


def states(cursor: Any) -> dict[str, Health]:
    return {r[0]: Health(*r) for r in cursor.fetchall()}


def _ensure(conn: sqlite3.Connection, destination: str) -> None:
    conn.execute("INSERT INTO store_health (destination) VALUES (?) ON CONFLICT (destination) DO NOTHING", (destination,))


def _for_update(conn: sqlite3.Connection) -> str:
    """What a read that decides a change ends with: a row lock on PostgreSQL (SQLite has one writer)."""
    return " FOR UPDATE" if dialect.of(conn) == dialect.POSTGRESQL else ""


def is_open(conn: sqlite3.Connection, destination: str) -> bool:
    row = conn.execute("SELECT opened FROM store_health WHERE destination = ?", (destination,)).fetchone()
    return bool(row and row[0])


def start_probe(conn: sqlite3.Connection, destination: str, owner: str, until: float) -> None:
    conn.execute("UPDATE store_health SET probe_owner = ?, probe_until = ? WHERE destination = ?",
                 (owner, until, destination))


def end_probe(conn: sqlite3.Connection, destination: str, owner: str) -> None:
    """`owner`'s probe went back without a send (a wait, a lease released): the next claim may probe at once."""
    conn.execute("UPDATE store_health SET probe_owner = NULL, probe_until = NULL "
                 "WHERE destination = ? AND probe_owner = ?", (destination, owner))


def note_transport_failure(
    conn: sqlite3.Connection, destination: str, reason: str, *, now: float, schedule: tuple[float, ...]
) -> None:
    """One more network-level failure; pause (again, longer) at the threshold or when a probe failed."""
    _ensure(conn, destination)
    failures, opened, paused_until = conn.execute(
        "SELECT failures, opened, paused_until FROM store_health WHERE destination = ?" + _for_update(conn),
        (destination,)).fetchone()
    failures += 1
    # A send that was in flight when the pause began says nothing new: the pause stays as it is.
    running = opened and paused_until is not None and paused_until > now
    if not running and (opened or failures >= BREAKER_FAILURES):
        step = schedule[min(opened, len(schedule) - 1)] if schedule else 10.0
        wait = min(LONGEST_PAUSE_S, step)
        conn.execute(
            "UPDATE store_health SET failures = ?, opened = ?, paused_until = ?, reason = ?, "
            "since = COALESCE(since, ?), probe_owner = NULL, probe_until = NULL WHERE destination = ?",
            (failures, opened + 1, now + wait, f"{failures} network failures in a row, the last: {reason}", now,
             destination),
        )
    else:
        conn.execute("UPDATE store_health SET failures = ? WHERE destination = ?", (failures, destination))


def note_answer(conn: sqlite3.Connection, destination: str) -> None:
    """The cart answered (whatever it said): the breaker closes, and the store is plainly usable here."""
    conn.execute(
        "UPDATE store_health SET failures = 0, opened = 0, paused_until = NULL, reason = NULL, since = NULL, "
        "probe_owner = NULL, probe_until = NULL, misconfigured = NULL, misconfigured_by = NULL, "
        "misconfigured_at = NULL WHERE destination = ? AND (failures > 0 OR opened > 0 OR misconfigured IS NOT NULL)",
        (destination,),
    )


def note_misconfigured(conn: sqlite3.Connection, destination: str, reason: str, who: str, *, now: float) -> None:
    _ensure(conn, destination)
    conn.execute(
        "UPDATE store_health SET misconfigured = ?, misconfigured_by = ?, misconfigured_at = ? WHERE destination = ?",
        (reason, who, now, destination),
    )


def clear_misconfigured(conn: sqlite3.Connection, destination: str) -> None:
    conn.execute(
        "UPDATE store_health SET misconfigured = NULL, misconfigured_by = NULL, misconfigured_at = NULL "
        "WHERE destination = ? AND misconfigured IS NOT NULL",
        (destination,),
    )


def misconfigured_notes(conn: sqlite3.Connection) -> dict[str, str]:
    """destination -> the controller that noted it misconfigured."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT destination, misconfigured_by FROM store_health WHERE misconfigured IS NOT NULL")}


def forget(conn: sqlite3.Connection, destination: str) -> None:
    """Drop what is known about a destination whose store was removed or changed (pause, notes, rate)."""
    conn.execute("DELETE FROM store_health WHERE destination = ?", (destination,))


def take_starts(conn: sqlite3.Connection, destination: str, count: int, rate: float, *, now: float) -> list[float]:
    """Start times for `count` sends at `rate` per second from the destination's next free start."""
    _ensure(conn, destination)
    row = conn.execute("SELECT next_start FROM store_health WHERE destination = ?" + _for_update(conn),
                       (destination,)).fetchone()
    first = max(now, row[0] or 0.0)
    starts = [first + i / rate for i in range(count)]
    conn.execute("UPDATE store_health SET next_start = ? WHERE destination = ?",
                 (first + count / rate, destination))
    return starts


NO_PROBLEM: dict[str, Any] = {
    "paused": False, "paused_until": None, "pause_reason": None, "paused_since": None,
    "misconfigured": None, "misconfigured_by": None, "misconfigured_at": None,
}


def shown_problems(conn: sqlite3.Connection, *, now: float) -> dict[str, dict[str, Any]]:
    """destination -> {paused, paused_until, reason, misconfigured, ...} for the destinations that have one.

    A misconfiguration is shown while the controller that noted it is alive, or
    for MISCONFIGURED_KEEP_S after it was noted (see the module docstring).
    """
    out: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        "SELECT h.destination, h.opened, h.paused_until, h.reason, h.since, h.misconfigured, h.misconfigured_by, "
        "h.misconfigured_at, h.misconfigured_at >= ? OR EXISTS (SELECT 1 FROM controllers c "
        "WHERE c.id = h.misconfigured_by AND c.heartbeat >= ?) FROM store_health h "
        "WHERE h.opened > 0 OR h.misconfigured IS NOT NULL", (now - MISCONFIGURED_KEEP_S, now - STALE_AFTER_S)
    ):
        shown = r[5] is not None and bool(r[8])
        if not (r[1] or shown):
            continue
        out[r[0]] = {
            "paused": bool(r[1]), "paused_until": r[2] if r[1] else None, "pause_reason": r[3] if r[1] else None,
            "paused_since": r[4] if r[1] else None,
            **({"misconfigured": r[5], "misconfigured_by": r[6], "misconfigured_at": r[7]} if shown else {
                "misconfigured": None, "misconfigured_by": None, "misconfigured_at": None}),
        }
    return out
