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

    def what_is_left(self, retrying: dict[str, str], left: dict[str, int], mine: dict[str, int], due: dict[str, int],
                     problems: dict[str, dict[str, Any]]) -> None:
        """At the end of a run: the records still retrying (uid -> destination, still on the stack), the records
        `left` per destination (`mine`: those this controller drains), the `due` ones a stopped watcher leaves,
        and the stores paused by their circuit breaker (`problems`, as health.shown_problems gives them)."""
        for dest in retrying.values():
            self.tally(dest).retrying += 1
        for dest, n in left.items():
            # An interrupted run names every store it leaves records of, a stopped watcher every
            # store it leaves due records of (nothing may look done).
            if dest in self.stores or dest in due or (self.interrupted and dest in mine):
                self.tally(dest).left = n
        self.due_left = sum(due.values())
        # Records left for a store paused by its circuit breaker are a problem of this run too.
        self.paused = {d: str(p["pause_reason"]) for d, p in sorted(problems.items()) if p["paused"] and d in mine}

    def count(self, outcomes: list[tuple[str, str, str]], retrying: dict[str, str]) -> None:
        """Count written outcomes, (uid, destination, kind): a `wait` is no attempt; `retrying` (uid ->
        destination) keeps the records whose last outcome in this run was a retry."""
        for uid, dest, kind in outcomes:
            t = self.tally(dest)
            retrying.pop(uid, None)
            if kind == "wait":
                continue
            self.attempts += 1
            if kind == "ok":
                t.sent += 1
            elif kind == "failed":
                t.failed += 1
            else:
                retrying[uid] = dest

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
