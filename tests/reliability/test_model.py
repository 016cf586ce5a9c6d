"""Model-based test of the stack: a hypothesis state machine against a tiny in-memory model.

The real core functions (`stack.claim`, `settle`, `release`, `retry`, `drop`) run on a
real database, one connection per simulated controller, with a simulated clock passed
in as `now`; "lease expiry" is the clock moving past a lease. Records are queued the real
way (the change engine toggling an order between Processing and On Hold). The machine
runs once per backend (a SQLite file, and a PostgreSQL database copied from a template
for every sequence), with the same rules and invariants.

The model is a dict of records (state, attempts, owner, lease_until, next_attempt) plus
each order's queue of record ids and the history rows it expects. After every step:

- the stack's rows equal the model's, field by field, and each order's queue order too;
- the records a claim would take now are exactly the heads of their orders that are due
  and not under a live lease (probed with a claim that is rolled back);
- no record, and no order, is in the hands of two controllers with a live lease;
- the history holds exactly the rows the model expects: an acked record is gone and has
  its `ok` row, a dropped one its `dropped` row, every attempt its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from statusctl.core.changes import ChangeSession
from statusctl.core.orders import import_orders
from statusctl.domain.errors import InputError, NotFound
from statusctl.storage import stack
from statusctl.storage.db import Database

from ..backends import SQLITE, Place
from ..helpers import cli_json, dump, error_of
from ..stackhelpers import BACKENDS, fill, setup_db

LEASE = 120.0
SCHEDULE = (10.0, 60.0, 300.0)  # the last step repeats
LONGEST_WAIT = 7 * 86400.0  # no retry waits longer, whatever the cart's Retry-After says
MAX_ATTEMPTS = 3
MAX_IN_FLIGHT = 32  # the default max_in_flight of a store
POISON_CUTS = 5  # claims in a row without an outcome before a record is failed as a poison record
OWNERS = ("ctl-A", "ctl-B", "ctl-C")
ORDERS = {"M1": "s1", "M2": "s1", "M3": "s1", "M4": "s2"}  # order -> store
URL = "http://127.0.0.1:9/hooks/status"  # never contacted
# Steps of the simulated clock: less than a backoff step, one step, past a lease, far past everything.
STEPS = [0.5, 5.0, 11.0, 61.0, LEASE, LEASE + 0.5, 301.0, 5000.0]
NOT_ON_STACK = "su_" + "0" * 20


class FixedJitter:
    """A `random.Random` stand-in: `uniform(a, b)` is always the same point of [a, b]."""

    def __init__(self, where: float) -> None:
        self.where = where

    def uniform(self, a: float, b: float) -> float:
        return a + self.where * (b - a)


@dataclass
class Rec:
    uid: str
    order: str
    destination: str
    next_attempt: float
    state: str = "queued"
    attempts: int = 0
    owner: str | None = None
    lease_until: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_answer: str | None = None
    claims: int = 0  # every claim (with the owner, which claim a settle answers)
    unsettled: int = 0  # claims since the last outcome (cut short by a crash, or in flight)


@dataclass
class Held:
    """A claim a controller holds (what it is sending)."""

    claimed: stack.Claimed
    lease_until: float


@dataclass
class Model:
    records: dict[str, Rec] = field(default_factory=dict)
    queues: dict[str, list[str]] = field(default_factory=lambda: {o: [] for o in ORDERS})
    history: list[tuple[Any, ...]] = field(default_factory=list)
    order_of_queueing: list[str] = field(default_factory=list)  # every uid, in the order queued (seq)

    def head(self, order: str) -> Rec | None:
        q = self.queues[order]
        return self.records[q[0]] if q else None

    def claimable(self, now: float, stores: list[str] | None = None) -> list[Rec]:
        """Heads of their orders, queued, due and not under a live lease; soonest due first."""
        heads = [h for h in (self.head(o) for o in ORDERS) if h is not None]
        due = [
            r for r in heads
            if r.state == "queued" and r.next_attempt <= now and (r.lease_until is None or r.lease_until < now)
            and (not stores or r.destination in stores)
        ]
        return sorted(due, key=lambda r: (r.next_attempt, self.seq(r.uid)))

    def fair_pick(self, now: float, limit: int, stores: list[str] | None = None) -> list[Rec]:
        """What a claim of `limit` takes (DESIGN §5, fair across stores): slot by slot, the destination
        with the fewest live leases (then the soonest due head) gives its soonest due head."""
        live: dict[str, int] = {}
        for r in self.records.values():
            if r.lease_until is not None and r.lease_until >= now:
                live[r.destination] = live.get(r.destination, 0) + 1
        queues: dict[str, list[Rec]] = {}
        for r in self.claimable(now, stores):
            queues.setdefault(r.destination, []).append(r)
        caps = {d: MAX_IN_FLIGHT - live.get(d, 0) for d in queues}
        picked: list[Rec] = []
        while len(picked) < limit:
            open_ = [d for d, q in queues.items() if q and caps[d] > 0]
            if not open_:
                break
            best = min(open_, key=lambda d: (live.get(d, 0), queues[d][0].next_attempt, self.seq(queues[d][0].uid)))
            picked.append(queues[best].pop(0))
            live[best] = live.get(best, 0) + 1
            caps[best] -= 1
        return picked

    def seq(self, uid: str) -> int:
        return self.order_of_queueing.index(uid)

    def remove(self, uid: str) -> None:
        rec = self.records.pop(uid)
        self.queues[rec.order].remove(uid)


def backoff(attempts: int, jitter: FixedJitter) -> float:
    """DESIGN §5: the schedule's step for this attempt (the last step repeats), with jitter."""
    return SCHEDULE[min(attempts, len(SCHEDULE)) - 1] * jitter.uniform(0.8, 1.2)


@pytest.fixture(scope="module", params=BACKENDS)
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    """A database with two webhook stores and the orders of ORDERS, built once per backend: every sequence copies it."""
    directory = tmp_path_factory.mktemp("model-template")
    if request.param == SQLITE:
        place = Place(SQLITE, directory / "template.db", directory)
    else:
        cluster = request.getfixturevalue("pg_server")
        place = Place(request.param, cluster.url(cluster.create_database("model")), directory, cluster)
    setup_db(place.ref, {"s1": URL, "s2": URL})
    header = "order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity"
    db = place.open()
    try:
        for number, store in ORDERS.items():
            csv = directory / f"{number}.csv"
            csv.write_text(f"{header}\n{number},2026-11-20,C {number},c@example.com,90210,SKU-1,Mug,1\n")
            import_orders(db, csv, store)
    finally:
        db.close()
    yield place
    place.drop()


class _Probe(Exception):
    """Raised to roll back a transaction that only looked (what a claim would take now)."""


class StackMachine(RuleBasedStateMachine):
    """Controllers, an operator and the change engine against one stack; see the module docstring."""

    def __init__(self, template: Place, folder: Path) -> None:
        super().__init__()
        self.place = template.clone(folder)
        self.dbs = {owner: self.place.open() for owner in OWNERS}
        self.operator = self.place.open()
        if self.place.kind == SQLITE:
            for d in [*self.dbs.values(), self.operator]:
                d.conn.execute("PRAGMA synchronous = OFF")  # durability is not what this test is about
        self.held: dict[str, list[Held]] = {owner: [] for owner in OWNERS}
        self.model = Model()
        self.next_event = dict.fromkeys(ORDERS, "order-approved")
        self.uids_ever: list[str] = []
        self.handed_over: set[str] = set()  # acked while another controller held a live lease
        self.now = time.time()
        self.jitter = FixedJitter(0.5)

    def teardown(self) -> None:
        for d in [*self.dbs.values(), self.operator]:
            d.close()
        self.place.drop()

    @initialize(where=st.floats(0.0, 1.0))
    def choose_jitter(self, where: float) -> None:
        self.jitter = FixedJitter(where)

    # -- the change engine -----------------------------------------------------

    @rule(order=st.sampled_from(sorted(ORDERS)), by=st.sampled_from(OWNERS))
    def enqueue(self, order: str, by: str) -> None:
        event = self.next_event[order]
        with self.dbs[by].tx() as conn:
            session = ChangeSession(conn)
            result = session.fire(order, event, [])
            session.flush()
        assert result.record is not None, f"{event} on {order} queued nothing"
        self.next_event[order] = "order-on-hold" if event == "order-approved" else "order-approved"
        # A record is queued at the real time; the simulated clock never runs behind that.
        row = self.operator.one("SELECT next_attempt, destination FROM stack WHERE uid = ?", (result.record,))
        assert row is not None
        self.now = max(self.now, time.time(), float(row["next_attempt"]))
        assert row["destination"] == ORDERS[order]
        rec = Rec(result.record, order, ORDERS[order], float(row["next_attempt"]))
        self.model.records[rec.uid] = rec
        self.model.queues[order].append(rec.uid)
        self.model.order_of_queueing.append(rec.uid)
        self.uids_ever.append(rec.uid)

    # -- controllers -----------------------------------------------------------

    @rule(owner=st.sampled_from(OWNERS), limit=st.integers(1, 5),
          only=st.sampled_from([None, ["s1"], ["s2"], ["s1", "s2"]]))
    def claim(self, owner: str, limit: int, only: list[str] | None) -> None:
        picked = self.model.fair_pick(self.now, limit, only)
        poisoned = sorted((r for r in picked if r.unsettled >= POISON_CUTS), key=lambda r: self.model.seq(r.uid))
        expected = [r for r in picked if r.unsettled < POISON_CUTS]
        with self.dbs[owner].tx() as conn:
            got = stack.claim(conn, owner, limit, LEASE, now=self.now, stores=only)
        assert [c.uid for c in got] == sorted((r.uid for r in expected), key=self.model.seq), (
            f"{owner} claimed {[c.uid for c in got]}, the model expected {[r.uid for r in expected]}")
        for rec in poisoned:
            # Its sends were cut short again and again: failed with that reason instead of claimed.
            rec.state, rec.owner, rec.lease_until, rec.unsettled = "failed", None, None, 0
            rec.last_status, rec.last_answer = None, None
            rec.last_error = (
                f"its sends were cut short {POISON_CUTS} times in a row (the controller stopped or crashed before "
                "an outcome): failed so that it cannot stop controllers for ever; `stack retry` sends it again")
            self.model.history.append((self.now, rec.uid, rec.destination, rec.order, rec.attempts, "failed",
                                       None, rec.last_error, None, owner))
        for c in got:
            rec = self.model.records[c.uid]
            rec.claims += 1
            rec.unsettled += 1
            rec.owner, rec.lease_until = owner, self.now + LEASE
            # A claim counts no attempt; the attempt it makes is number attempts + 1.
            assert (c.attempts, c.claims, c.order_number, c.destination) == (
                rec.attempts + 1, rec.claims, rec.order, rec.destination)
            assert c.payload["order"]["number"] == rec.order
            self.held[owner].append(Held(c, self.now + LEASE))

    def _settle(self, owner: str, picks: list[tuple[Held, str, float | None]]) -> None:
        outcomes = []
        for held, kind, retry_after in picks:
            status = {"ok": 200, "retry": 503, "failed": 422}[kind]
            reason = f"{kind} by {owner}"
            outcomes.append(stack.Outcome(held.claimed, kind, status=status, reason=reason,
                                          answer=f"answer to {held.claimed.uid}", retry_after=retry_after))
        with self.dbs[owner].tx() as conn:
            written = stack.settle(conn, outcomes, owner, now=self.now, max_attempts=MAX_ATTEMPTS,
                                   schedule=SCHEDULE, rng=self.jitter)  # type: ignore[arg-type]
        delivered = []
        for (held, asked, retry_after), outcome in zip(picks, written, strict=True):
            c = held.claimed
            self.held[owner].remove(held)
            kind, reason = asked, f"{asked} by {owner}"
            if kind == "retry" and c.attempts >= MAX_ATTEMPTS:
                kind, reason = "failed", f"{reason} (gave up after {c.attempts} attempts)"
            assert (outcome.kind, outcome.reason) == (kind, reason), "the caller's tally must see what was written"
            status = {"ok": 200, "retry": 503, "failed": 422}[asked]
            answer = f"answer to {c.uid}"
            if kind == "ok":
                delivered.append(c)
            else:
                self._settle_attempt(owner, c, kind, status, reason, answer, retry_after)
            self.model.history.append(
                (self.now, c.uid, c.destination, c.order_number, c.attempts, kind, status, reason, answer, owner))
        # The deliveries are judged after the settle's other outcomes: a record one claim delivered and
        # a later claim of the same controller failed or retried is delivered, and no send of it is left.
        for c in delivered:
            rec = self.model.records.get(c.uid)
            # Delivered: gone, unless another claim has taken it over under a live lease
            # (that one settles it, so the order's next record cannot overtake it).
            ours = rec is not None and rec.owner == owner and rec.claims == c.claims
            if rec is not None and (rec.owner is None or (rec.lease_until or 0.0) < self.now or ours):
                self.model.remove(c.uid)
            elif rec is not None:
                self.handed_over.add(c.uid)

    def _settle_attempt(self, owner: str, c: stack.Claimed, kind: str, status: int, reason: str, answer: str,
                        retry_after: float | None) -> None:
        """A counted retry or failure, written only while our claim still holds the record's lease."""
        rec = self.model.records.get(c.uid)
        if rec is None or rec.owner != owner or rec.claims != c.claims:
            return
        rec.owner = rec.lease_until = None
        rec.attempts, rec.unsettled = c.attempts, 0  # the outcome counts the attempt
        rec.last_status, rec.last_error, rec.last_answer = status, reason, answer
        if kind == "retry":
            wait = max(backoff(c.attempts, self.jitter), retry_after or 0.0)
            rec.next_attempt = self.now + min(wait, LONGEST_WAIT)
        else:
            rec.state = "failed"

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        owner = data.draw(st.sampled_from([o for o in OWNERS if self.held[o]]), label="owner")
        hand = self.held[owner]
        chosen = data.draw(st.lists(st.sampled_from(range(len(hand))), min_size=1, max_size=len(hand), unique=True),
                           label="which")
        picks = [
            (hand[i], data.draw(st.sampled_from(["ok", "ok", "retry", "failed"]), label="outcome"),
             data.draw(st.sampled_from([None, None, 0.0, 2.0, 700.0, 1e300]), label="retry_after"))
            for i in chosen
        ]
        self._settle(owner, picks)

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        """A controller stopped before sending: its leases go back, not counted as attempts."""
        owner = data.draw(st.sampled_from([o for o in OWNERS if self.held[o]]), label="owner")
        hand = self.held[owner]
        chosen = data.draw(st.lists(st.sampled_from(hand), min_size=1, max_size=len(hand), unique_by=id),
                           label="which")
        with self.dbs[owner].tx() as conn:
            stack.release(conn, owner, [h.claimed for h in chosen])
        for h in chosen:
            hand.remove(h)
            rec = self.model.records.get(h.claimed.uid)
            # Only a claim that still holds the record: a later claim of ours is being sent.
            if rec is not None and rec.owner == owner and rec.claims == h.claimed.claims:
                rec.owner = rec.lease_until = None
                rec.unsettled = max(rec.unsettled - 1, 0)

    @precondition(lambda self: any(self.held.values()))
    @rule(owner=st.sampled_from(OWNERS))
    def renew(self, owner: str) -> None:
        """The heartbeat: a live controller extends the leases it still holds."""
        hand = self.held[owner]
        with self.dbs[owner].tx() as conn:
            stack.renew(conn, owner, [h.claimed.seq for h in hand], self.now + LEASE)
        for h in hand:
            rec = self.model.records.get(h.claimed.uid)
            if rec is not None and rec.owner == owner:
                rec.lease_until = h.lease_until = self.now + LEASE

    @precondition(lambda self: any(self.held.values()))
    @rule(owner=st.sampled_from(OWNERS))
    def crash(self, owner: str) -> None:
        """A controller dies mid-send: it settles nothing, its leases run out on their own."""
        self.held[owner].clear()

    @rule(seconds=st.sampled_from(STEPS))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    # -- the operator ----------------------------------------------------------

    def _pick_ids(self, data: st.DataObject) -> list[str]:
        pool = [*self.model.records, *self.uids_ever[-3:], NOT_ON_STACK]
        return data.draw(st.lists(st.sampled_from(pool), min_size=0, max_size=3), label="ids")

    def _selected(self, ids: list[str], failed: bool) -> list[Rec] | None:
        """The records `retry`/`drop` act on, or None when an id is not on the stack (NotFound)."""
        if failed:
            return [self.model.records[u] for u in self.model.order_of_queueing
                    if u in self.model.records and self.model.records[u].state == "failed"]
        if any(u not in self.model.records for u in ids):
            return None
        return [self.model.records[u] for u in dict.fromkeys(ids)]  # an id named twice is one record

    @rule(data=st.data(), failed=st.booleans())
    def operator_retry(self, data: st.DataObject, failed: bool) -> None:
        ids = [] if failed else self._pick_ids(data)
        selected = self._selected(ids, failed)
        if not ids and not failed:
            with pytest.raises(InputError):
                stack.retry(self.operator, ids, now=self.now)
            return
        if selected is None:
            with pytest.raises(NotFound):
                stack.retry(self.operator, ids, now=self.now)
            return
        if any(rec.lease_until is not None and rec.lease_until >= self.now for rec in selected):
            # A record named while it is being sent is refused with the reason, as `drop` does.
            with pytest.raises(InputError, match="being sent right now"):
                stack.retry(self.operator, ids, failed=failed, now=self.now)
            return
        changed = stack.retry(self.operator, ids, failed=failed, now=self.now)
        expected = 0
        for rec in selected:
            if rec.lease_until is None or rec.lease_until < self.now:
                rec.state, rec.attempts, rec.unsettled, rec.next_attempt = "queued", 0, 0, self.now
                rec.owner = rec.lease_until = None
                expected += 1
        assert changed == expected

    @rule(data=st.data(), failed=st.booleans())
    def operator_drop(self, data: st.DataObject, failed: bool) -> None:
        ids = [] if failed else self._pick_ids(data)
        selected = self._selected(ids, failed)
        if not ids and not failed:
            with pytest.raises(InputError):
                stack.drop(self.operator, ids, now=self.now)
            return
        if selected is None:
            with pytest.raises(NotFound):
                stack.drop(self.operator, ids, now=self.now)
            return
        if any(r.lease_until is not None and r.lease_until >= self.now for r in selected):
            # Being sent right now: dropping it would let the order's next record overtake it.
            with pytest.raises(InputError, match="is being sent right now"):
                stack.drop(self.operator, ids, now=self.now)
            return
        dropped = stack.drop(self.operator, ids, failed=failed, now=self.now)
        assert dropped == len(selected)
        for rec in selected:
            self.model.remove(rec.uid)
            self.model.history.append((self.now, rec.uid, rec.destination, rec.order, rec.attempts, "dropped",
                                       None, "dropped by the operator", None, "operator"))

    # -- invariants ------------------------------------------------------------

    @invariant()
    def the_stack_equals_the_model(self) -> None:
        rows = self.operator.query("SELECT * FROM stack ORDER BY seq")
        db = {
            r["uid"]: (r["order_number"], r["destination"], r["state"], r["attempts"], r["lease_owner"],
                       r["lease_until"], r["next_attempt"], r["last_status"], r["last_error"], r["last_answer"],
                       r["claims"], r["unsettled"])
            for r in rows
        }
        model = {
            m.uid: (m.order, m.destination, m.state, m.attempts, m.owner, m.lease_until, m.next_attempt,
                    m.last_status, m.last_error, m.last_answer, m.claims, m.unsettled)
            for m in self.model.records.values()
        }
        assert db == model
        per_order: dict[str, list[str]] = {o: [] for o in ORDERS}
        for r in rows:
            per_order[r["order_number"]].append(r["uid"])
        assert per_order == self.model.queues, "an order's records are out of queue order"

    @invariant()
    def the_heads_and_counters_are_the_stack_s(self) -> None:
        """stack_heads (kept by triggers) is each order's first record with its fields; stack_counts its records."""
        heads = self.operator.query(
            "SELECT s.order_id, s.seq, s.destination, s.state, s.next_attempt, s.lease_until, s.queued, "
            "(SELECT COUNT(*) FROM stack c WHERE c.order_id = s.order_id) FROM stack s "
            "WHERE s.seq = (SELECT MIN(t.seq) FROM stack t WHERE t.order_id = s.order_id) ORDER BY s.order_id")
        kept = self.operator.query(
            "SELECT order_id, seq, destination, state, next_attempt, lease_until, queued, records FROM stack_heads "
            "ORDER BY order_id")
        assert [tuple(r) for r in kept] == [tuple(r) for r in heads]
        counted = {r[0]: r[1] for r in self.operator.query("SELECT destination, records FROM stack_counts")
                   if r[1]}
        assert counted == {r[0]: r[1] for r in self.operator.query(
            "SELECT destination, COUNT(*) FROM stack GROUP BY destination")}

    @invariant()
    def claimable_are_the_due_unleased_heads(self) -> None:
        try:
            with self.operator.tx() as probe:
                would = stack.claim(probe, "probe", 1000, LEASE, now=self.now)
                raise _Probe
        except _Probe:
            pass
        with self.operator.reading() as conn:
            soonest = stack.soonest_due(conn, now=self.now)
        assert {c.uid for c in would} == {r.uid for r in self.model.claimable(self.now) if r.unsettled < POISON_CUTS}
        due = [r for h in self.model.queues.values() if h
               for r in [self.model.records[h[0]]]
               if r.state == "queued" and (r.lease_until is None or r.lease_until < self.now)]
        expected = None if not due else max(0.0, min(r.next_attempt for r in due) - self.now)
        assert soonest == expected

    @invariant()
    def no_record_or_order_is_sent_by_two_controllers(self) -> None:
        live: dict[str, set[str]] = {}
        orders: dict[str, set[str]] = {}
        for owner, hand in self.held.items():
            for h in hand:
                rec = self.model.records.get(h.claimed.uid)
                # A send is live while its lease lasts, unless the record went back to the stack
                # or to another owner; a record taken off the stack mid-send is still being sent.
                if h.lease_until >= self.now and (rec is None or rec.owner == owner):
                    live.setdefault(h.claimed.uid, set()).add(owner)
                    orders.setdefault(h.claimed.order_number, set()).add(owner)
        assert all(len(v) == 1 for v in live.values()), f"leased by two owners: {live}"
        assert all(len(v) == 1 for v in orders.values()), f"one order in flight at two controllers: {orders}"
        owners = {r.uid: r.owner for r in self.model.records.values() if r.owner is not None}
        for uid, holders in live.items():
            assert uid not in self.model.records or owners[uid] in holders

    @invariant()
    def the_history_is_every_attempt_and_every_drop(self) -> None:
        rows = self.operator.query(
            "SELECT at, uid, destination, order_number, attempt, outcome, status, reason, answer, controller "
            "FROM stack_history ORDER BY id")
        assert [tuple(r) for r in rows] == self.model.history
        gone_ok = {h[1] for h in self.model.history if h[5] in ("ok", "dropped")}
        on_stack = {r["uid"] for r in self.operator.query("SELECT uid FROM stack")}
        # Once acked (or dropped) a record never comes back, unless it was acked while another
        # controller was sending it again (it stays for that one); every record that left has its row.
        assert not ((gone_ok - self.handed_over) & on_stack)
        assert set(self.uids_ever) - on_stack <= gone_ok


def _settings(examples: int, steps: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# Sequences per run (the fast run's, the slow run's), per backend. A step costs PostgreSQL a dozen
# round trips to its server where SQLite's are calls into the process, and each sequence a fresh
# database: PostgreSQL runs fewer sequences, so that both take about as long.
EXAMPLES = {"sqlite": (300, 600), "postgresql": (30, 100)}


def test_the_stack_behaves_as_the_model(template: Place, tmp_path: Path) -> None:
    examples = EXAMPLES[template.kind][0]
    run_state_machine_as_test(lambda: StackMachine(template, tmp_path), settings=_settings(examples, 50))


@pytest.mark.slow
def test_the_stack_behaves_as_the_model_over_longer_runs(template: Place, tmp_path: Path) -> None:
    examples = EXAMPLES[template.kind][1]
    run_state_machine_as_test(lambda: StackMachine(template, tmp_path), settings=_settings(examples, 80))


def stack_cli_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = cli_json("stack", "list")
    return rows


def test_stack_drop_refuses_a_record_being_sent(db_file: Path) -> None:
    """What the machine found: dropping an order's head mid-send let its next record overtake it."""
    setup_db(db_file, {"s1": URL})
    (uids,) = fill(db_file, records=2, orders=1, store="s1").values()
    db = Database.open(db_file)
    try:
        with db.tx() as conn:
            (sending,) = stack.claim(conn, "ctl-A", 5, LEASE, now=time.time())
    finally:
        db.close()
    assert sending.uid == uids[0]
    before = dump(db_file)
    message = error_of("stack", "drop", sending.uid, "--yes")
    assert f"Record {sending.uid} is being sent right now" in message
    assert dump(db_file) == before
    # The next record of the order stays behind the one being sent.
    assert [r["id"] for r in stack_cli_rows()] == uids
