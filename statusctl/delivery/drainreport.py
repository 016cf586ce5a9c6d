"""What a controller's run did and left: per store sent, retrying, failed and left, and why it is not ok."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StoreTally:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    left: int = 0


@dataclass
class DrainReport:
    stores: dict[str, StoreTally] = field(default_factory=dict)
    attempts: int = 0
    failed_on_stack: int = 0
    interrupted: bool = False
    due_left: int = 0  # records of a stopped watcher's stores that were due when it stopped (not in the JSON)
    misconfigured: dict[str, str] = field(default_factory=dict)  # store -> why this controller cannot use it
    paused: dict[str, str] = field(default_factory=dict)  # store with records left -> why it is paused

    def tally(self, store: str) -> StoreTally:
        return self.stores.setdefault(store, StoreTally())

    @property
    def sent(self) -> int:
        return sum(t.sent for t in self.stores.values())

    @property
    def problems(self) -> bool:
        """Failed records on the stack, records this run tried that wait for a retry, records an
        interrupted run left, due records a stopped watcher left, or records waiting for a store
        this run cannot use or that is paused.

        What the stack holds at the end counts, not what happened on the way: a
        watcher's record that failed and was retried and delivered since is no problem.
        """
        return self.failed_on_stack > 0 or self.due_left > 0 or bool(self.misconfigured) or bool(self.paused) or any(
            t.retrying or (self.interrupted and t.left) for t in self.stores.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "stores": {name: vars(t) for name, t in sorted(self.stores.items())},
            "sent": self.sent,
            "attempts": self.attempts,
            "failed_on_stack": self.failed_on_stack,
            "interrupted": self.interrupted,
            "misconfigured": dict(sorted(self.misconfigured.items())),
            "paused": self.paused,
            "ok": not self.problems,
        }


Progress = Callable[[DrainReport], None]
