"""What one controller keeps per destination: adapters, limits, and whether it can use the store.

Adapters are built once per destination and HTTP client, on one Context per
destination (so a rate-limit hold noted by one applies to all), and afresh
when stores or label mappings change. A store this controller cannot use (a
`--secret-env` variable it lacks) is skipped for `CONFIG_RECHECK_S`, then
tried again; what it found is noted in `store_health` for the other
controllers and `stack status`, and a note another controller left is cleared
when this one can use the store.
"""

from __future__ import annotations

import time
from typing import Any

from statusctl.delivery.pacing import PacedClient, Pacer
from statusctl.domain import limits
from statusctl.domain.errors import StatusctlError
from statusctl.storage import health, stack
from statusctl.storage.db import Database
from statusctl.storage.stores import get_store, read_limits

CONFIG_RECHECK_S = 30.0  # how long a store this controller cannot use (a missing secret variable) is left alone


class Destinations:
    """One controller's per-destination state; `owner` is the controller's id in the controllers table."""

    def __init__(self, db: Database, owner: str) -> None:
        self.db = db
        self.owner = owner
        self.limits: dict[str, limits.Limits] = {}
        self._version = -1
        self._mappings: dict[str, dict[str, str]] = {}
        self._targets: dict[tuple[str, int], Any] = {}
        self._contexts: dict[str, Any] = {}
        self._pacers: dict[str, Pacer] = {}
        self._unusable: dict[str, float] = {}  # destination -> monotonic time it was found unusable
        self._notes: list[tuple[str, str | None]] = []  # (destination, reason or None: usable) to write

    def reload(self, conn: Any, version: int | None = None) -> None:
        """When stores or label mappings changed (a counter kept by triggers), build adapters afresh.

        A watcher runs for weeks: after `labels add --map` or a store's
        re-creation, `stack retry` must find the new settings in use. `version`:
        the counter as this transaction already read it (else it is read here).
        """
        version = stack.config_version(conn) if version is None else version
        if version != self._version:
            self._version = version
            self._mappings = stack.label_mappings(conn)
            self.limits = read_limits(conn)
            self._pacers.clear()
            self._contexts.clear()
            self._targets.clear()
            self._unusable.clear()

    def target(self, client: Any, destination: str) -> Any:
        """The adapter for a destination on this client (the StatusctlError if the store cannot be used here)."""
        key = (destination, id(client))
        if key not in self._targets:
            from statusctl.carts.base import adapter_class

            ctx = self.context(destination)
            if isinstance(ctx, StatusctlError):
                raise ctx
            rate = self.limits.get(destination, limits.DEFAULT).rate
            if rate:  # every request of this store's adapters waits for its turn at the store's rate
                client = PacedClient(client, self._pacers.setdefault(destination, Pacer(rate)))
            self._targets[key] = adapter_class(ctx.store.cart)(client, ctx)
        return self._targets[key]

    def context(self, destination: str) -> Any:
        """The destination's adapter Context, or the StatusctlError that makes it unusable here (cached);
        a fresh one is noted for the next `write_notes`."""
        ctx = self._contexts.get(destination)
        if ctx is None:
            from statusctl.carts.base import Context

            try:
                store = get_store(self.db, destination)
                ctx = Context(store, store.resolve_secrets(), self._mappings)
            except StatusctlError as exc:
                ctx = exc
            self._contexts[destination] = ctx
            self._notes.append((destination, str(ctx) if isinstance(ctx, StatusctlError) else None))
        return ctx

    def found_unusable(self, destination: str) -> None:
        """A send found the store unusable here: skip it for CONFIG_RECHECK_S."""
        self._unusable[destination] = time.monotonic()

    def skipped(self) -> list[str]:
        """Destinations this controller cannot use now; each is tried again after CONFIG_RECHECK_S."""
        for dest, since in list(self._unusable.items()):
            if time.monotonic() - since >= CONFIG_RECHECK_S:
                del self._unusable[dest]
                self._contexts.pop(dest, None)
                self._targets = {k: v for k, v in self._targets.items() if k[0] != dest}
        return list(self._unusable)

    def check_notes_of_others(self) -> None:
        """A store another controller found misconfigured (a cron run without a secret variable) is
        cleared by this one when it can use it: its note would otherwise stay while this controller
        sends that store's records with its cached adapters. Written by the next `write_notes`."""
        with self.db.reading() as conn:
            noted = health.misconfigured_notes(conn)
        for dest, by in noted.items():
            if by != self.owner and not isinstance(self.context(dest), StatusctlError):
                self._notes.append((dest, None))

    def pending_notes(self) -> list[tuple[str, str | None]]:
        """The notes to write in the next turn: (destination, why it is unusable here, or None: usable)."""
        return list(self._notes)

    def write_notes(self, conn: Any, notes: list[tuple[str, str | None]], now: float) -> None:
        """Tell the other controllers and `stack status` which stores this one can or cannot use (inside the
        caller's transaction, which may run again: `notes_written` forgets them once it committed)."""
        for dest, reason in notes:
            if reason is None:
                health.clear_misconfigured(conn, dest)
            else:
                health.note_misconfigured(conn, dest, reason, self.owner, now=now)

    def notes_written(self, notes: list[tuple[str, str | None]], misconfigured: dict[str, str]) -> None:
        """The turn that wrote `notes` committed: forget them; a store usable again leaves `misconfigured`
        (the run's report)."""
        for note in notes:
            self._notes.remove(note)
            if note[1] is None:
                misconfigured.pop(note[0], None)
