"""What one controller keeps about the destinations it sends to: their limits, its rate pacers,
and the stores it cannot use here (a `--secret-env` variable this process lacks).

The controller asks `skipped()` before each claim, wraps each adapter's client
with `client_for`, and writes `notes` (this controller can or cannot use a store)
in its next transaction, so that `stack status` and the other controllers see them.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from statusctl.core import health, limits

CONFIG_RECHECK_S = 30.0  # how long a store this controller cannot use is left alone before it tries again


class Destinations:
    def __init__(self) -> None:
        self.limits: dict[str, limits.Limits] = {}
        self._pacers: dict[str, limits.Pacer] = {}
        self._unusable: dict[str, float] = {}  # destination -> time.monotonic() it was found unusable
        self._notes: list[tuple[str, str | None]] = []  # (destination, why it cannot be used, or None)

    def reload(self, conn: sqlite3.Connection) -> None:
        """Stores or their options changed: read the limits afresh and try every store again."""
        self.limits = limits.read_all(conn)
        self._pacers.clear()
        self._unusable.clear()

    def client_for(self, destination: str, client: Any) -> Any:
        """The HTTP client an adapter of `destination` gets: paced at the store's `rate`, if it has one."""
        rate = self.limits.get(destination, limits.DEFAULT).rate
        if not rate:
            return client
        return limits.PacedClient(client, self._pacers.setdefault(destination, limits.Pacer(rate)))

    def built(self, destination: str, problem: str | None) -> None:
        """An adapter context was built for `destination` (problem None) or could not be (why)."""
        self._notes.append((destination, problem))

    def cannot_use(self, destination: str) -> None:
        self._unusable[destination] = time.monotonic()

    def skipped(self) -> tuple[list[str], list[str]]:
        """(destinations not to claim now, destinations whose recheck time came: build them afresh)."""
        expired = [d for d, since in self._unusable.items() if time.monotonic() - since >= CONFIG_RECHECK_S]
        for dest in expired:
            del self._unusable[dest]
        return list(self._unusable), expired

    def write(self, conn: sqlite3.Connection, owner: str, *, now: float) -> list[tuple[str, str | None]]:
        """Write the notes inside the caller's transaction; returns them (for the run's report)."""
        notes, self._notes = self._notes, []
        for dest, problem in notes:
            if problem is None:
                health.clear_misconfigured(conn, dest)
            else:
                health.note_misconfigured(conn, dest, problem, owner, now=now)
        return notes
