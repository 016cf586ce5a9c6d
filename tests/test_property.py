"""Property: records queued == commands that changed a label through an event with notify on.

Any sequence of fire / ship / cancel commands on any orders (including unknown orders and
SKUs, and events switched off), under any fires/notify settings of the events. The oracle
is read from the database, not from the change engine: label snapshots before and after
each command, and the label history rows it wrote. Firing the same event (or repeating the
same cancel) right away must change nothing and queue nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from statusctl.core import actions, events, stores
from statusctl.core.init import initialize
from statusctl.core.orders import import_orders
from statusctl.core.settings import set_value
from statusctl.domain.errors import InputError, StatusctlError
from statusctl.domain.events import DEFAULT_EVENTS
from statusctl.storage.db import Database

from .helpers import CSV_ORDERS, EXAMPLES, JSON_ORDERS, WEBHOOK_SECRET

ORDERS = {**CSV_ORDERS, **JSON_ORDERS}
EVENT_NAMES = [e[0] for e in DEFAULT_EVENTS]
ITEM_EVENTS = {e[0] for e in DEFAULT_EVENTS if e[2]}
MOSTLY_ON = st.sampled_from([True, True, True, False])  # fires / notify cart of each event


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shop (defaults, updates on, a webhook store, both example files) built once."""
    path = tmp_path_factory.mktemp("property") / "template.db"
    db = Database.open(path)
    try:
        initialize(db)
        set_value(db, "UseStatusUpdates", "true")
        stores.add_store(db, "web", "webhook", "http://127.0.0.1:9/h", [f"secret={WEBHOOK_SECRET}"], [], [])
        import_orders(db, EXAMPLES / "orders.csv", "web")
        import_orders(db, EXAMPLES / "orders.json", "web")
    finally:
        db.close()
    return path


def copy_of(template: Path, directory: str) -> Database:
    target = Path(directory) / "shop.db"
    src, dst = sqlite3.connect(template), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return Database.open(target)


@dataclass(frozen=True)
class Command:
    kind: str  # fire | ship | cancel
    order: str
    event: str = ""
    items: tuple[str, ...] = ()

    def run(self, db: Database) -> None:
        if self.kind == "fire":
            actions.fire(db, self.event, self.order, list(self.items))
        elif self.kind == "ship":
            # No tracking numbers: a new one is news even without a label change (test_changes).
            actions.ship(db, self.order, list(self.items), None, None)
        else:
            actions.cancel(db, self.order, list(self.items))


@st.composite
def commands(draw: st.DrawFn) -> Command:
    # Mostly real orders and SKUs; now and then an unknown one (the command must fail cleanly).
    order = draw(st.sampled_from([*ORDERS] * 4 + ["9999"]))
    real = ORDERS.get(order, ["MUG-1"])
    skus = real * 4 + ["NOPE"]
    some = st.lists(st.sampled_from(skus), max_size=3, unique=True).map(tuple)
    kind = draw(st.sampled_from(["fire", "fire", "ship", "cancel"]))
    if kind == "fire":
        name = draw(st.sampled_from(EVENT_NAMES))
        # Items for the events that assign an item label, none for the others; sometimes the
        # wrong way round (a refused command).
        wants_items = name in ITEM_EVENTS
        if draw(st.integers(0, 9)) == 0:
            wants_items = not wants_items
        return Command("fire", order, name, draw(some.filter(bool)) if wants_items else ())
    if kind == "ship":
        items = draw(st.lists(
            st.tuples(st.sampled_from(skus), st.one_of(st.none(), st.integers(1, 3))),
            max_size=3, unique_by=lambda t: t[0],
        ))
        return Command("ship", order, items=tuple(s if q is None else f"{s}:{q}" for s, q in items))
    return Command("cancel", order, items=draw(some))


Snapshot = dict[tuple[str, int], str | None]


def snapshot(db: Database) -> Snapshot:
    labels: Snapshot = {("order", r["id"]): r["label"] for r in db.query("SELECT id, label FROM orders")}
    labels.update({("item", r["id"]): r["label"] for r in db.query("SELECT id, label FROM items")})
    return labels


def stack_size(db: Database) -> int:
    return int(db.query("SELECT COUNT(*) FROM stack")[0][0])


def last_history_id(db: Database) -> int:
    return int(db.query("SELECT COALESCE(MAX(id), 0) FROM label_history")[0][0])


def check(db: Database, command: Command, notify: dict[str, bool]) -> tuple[bool, bool]:
    """Run one command; check records against label changes. Returns (succeeded, queued)."""
    labels, queued, last = snapshot(db), stack_size(db), last_history_id(db)
    try:
        command.run(db)
        ok = True
    except StatusctlError:
        ok = False
    after = snapshot(db)
    rows = db.query("SELECT * FROM label_history WHERE id > ? ORDER BY id", (last,))
    added = stack_size(db) - queued
    if not ok:
        assert (after, rows, added) == (labels, [], 0), "a failed command changed something"
        return False, False
    # The history rows are exactly the label changes seen in the snapshots.
    assert all(r["from_label"] != r["to_label"] for r in rows)
    first: dict[tuple[str, int], str | None] = {}
    last_to: dict[tuple[str, int], str | None] = {}
    for r in rows:
        key = ("item", r["item_id"]) if r["item_id"] is not None else ("order", r["order_id"])
        first.setdefault(key, r["from_label"])
        last_to[key] = r["to_label"]
    from_history = {k: (first[k], last_to[k]) for k in first if first[k] != last_to[k]}
    from_snapshots = {k: (labels[k], after[k]) for k in after if labels[k] != after[k]}
    assert from_history == from_snapshots
    expected = any(notify[r["event"]] for r in rows)
    assert added == int(expected), (command, [r["event"] for r in rows], added)
    return True, expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    config=st.fixed_dictionaries({name: st.tuples(MOSTLY_ON, MOSTLY_ON) for name in EVENT_NAMES}),
    sequence=st.lists(commands(), min_size=1, max_size=40),
)
def test_records_queued_equal_commands_that_changed_a_notifying_label(
    template: Path, config: dict[str, tuple[bool, bool]], sequence: list[Command]
):
    with tempfile.TemporaryDirectory(dir=template.parent) as directory:
        db = copy_of(template, directory)
        try:
            for name, (fires, notify) in config.items():
                events.set_event(db, name, fires=fires, notify=notify)
            notify_of = {name: notify for name, (_, notify) in config.items()}
            expected_total = succeeded = 0
            for command in sequence:
                ok, queued = check(db, command, notify_of)
                expected_total += queued
                succeeded += ok
                if ok and command.kind in ("fire", "cancel"):
                    # The same event again on the same order: no change, no second record. It may be
                    # refused (a whole-order cancel whose event does not fire leaves what looks like an
                    # order cancelled item by item, which a second cancel calls fully shipped).
                    before, records, last = snapshot(db), stack_size(db), last_history_id(db)
                    refusal = (InputError,) if command.kind == "cancel" else ()
                    with contextlib.suppress(*refusal):
                        command.run(db)
                    assert (snapshot(db), stack_size(db), last_history_id(db)) == (before, records, last)
            assert stack_size(db) == expected_total
            event(f"records queued: {min(expected_total, 5)}{'+' if expected_total >= 5 else ''}")
            event(f"commands that succeeded: {round(10 * succeeded / len(sequence)) * 10}%")
            # One record per command per order: never two records from one command.
            assert db.query("SELECT COUNT(*) FROM stack")[0][0] <= len(sequence)
        finally:
            db.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.sampled_from(EVENT_NAMES), order=st.sampled_from(list(ORDERS)), times=st.integers(2, 5))
def test_firing_the_same_event_repeatedly_queues_at_most_one_record(
    template: Path, event: str, order: str, times: int
):
    with tempfile.TemporaryDirectory(dir=template.parent) as directory:
        db = copy_of(template, directory)
        try:
            for name in EVENT_NAMES:
                events.set_event(db, name, fires=True, notify=True)
            skus = ORDERS[order][:1]
            event_def = events.get_event(db, event)
            items = skus if event_def.item_label and not event_def.order_label else []
            results = [actions.fire(db, event, order, items) for _ in range(times)]
            assert all(r.record is None and not r.changes for r in results[1:])
            assert stack_size(db) == (1 if results[0].changes else 0)
        finally:
            db.close()
