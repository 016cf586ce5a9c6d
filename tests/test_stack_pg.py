"""What only PostgreSQL makes the stack do: several writers at the same moment, and a clock that is the server's.

SQLite lets one writer in at a time; on PostgreSQL two controllers claim, and
two producers queue, at once. Each test holds one transaction open on one
connection while another connection does its part, so the interleaving is
the one that breaks a stack that relies on "nobody else writes meanwhile".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from statusctl.delivery.controller import drain
from statusctl.storage import dialect, stack
from statusctl.storage.backends import open_database
from statusctl.storage.db import Database

from .stackhelpers import STORE, Gate, fill, hook_url, query, serve, setup_db, stack_rows

URL = "http://127.0.0.1:9/hooks/status"  # never contacted where only claims run
LEASE = 120.0
GUARD = 20.0  # seconds a thread may take before the test calls it hung


@pytest.fixture
def dbs(pg_target: str) -> Iterator[tuple[Database, Database]]:
    """Two connections to the test's database, as two machines would hold them."""
    setup_db(pg_target, {STORE: URL, "other": URL, "capped": URL},
             options={"capped": ["max_in_flight=2"]})
    a, b = open_database(pg_target), open_database(pg_target)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


class Background:
    """`work()` on a thread: started now, its result (or error) collected by `result()`."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

        def run() -> None:
            try:
                self.value = work()
            except BaseException as exc:  # pragma: no cover - re-raised by result()
                self.error = exc
            finally:
                self.done.set()

        threading.Thread(target=run, daemon=True).start()

    def blocked(self, seconds: float = 0.5) -> bool:
        """Still running after `seconds` (waiting for a lock the test holds)."""
        return not self.done.wait(seconds)

    def result(self) -> Any:
        assert self.done.wait(GUARD), "the other connection never finished"
        if self.error is not None:
            raise self.error
        return self.value


def claim(db: Database, owner: str, limit: int = 100, **kw: Any) -> list[stack.Claimed]:
    """One claim as the controller makes it: its own transaction, the server's clock."""
    for attempt in db.transactions():
        with attempt as conn:
            got = stack.claim(conn, owner, limit, LEASE, **kw)  # the clock read once its locks are held
    return got


def server_now(target: str) -> float:
    return float(query(target, "SELECT extract(epoch FROM clock_timestamp()) AS now")[0]["now"])


# -- claiming at the same moment ----------------------------------------------------


def test_two_connections_claiming_at_once_get_disjoint_heads(dbs, pg_target):
    a, b = dbs
    orders = fill(pg_target, records=12, orders=6)
    with a.tx() as conn:
        mine = stack.claim(conn, "A", 3, LEASE)
        other = Background(lambda: claim(b, "B"))
        # B must wait for A's bookkeeping lock: it would count A's leases as absent, and may not
        # take A's heads, which it cannot see as leased until A commits.
        assert other.blocked(), "B claimed while A's claim of the same store was not committed"
    theirs = other.result()
    assert len(mine) == 3 and len(theirs) == 3
    heads = {uids[0] for uids in orders.values()}
    assert {c.uid for c in mine} | {c.uid for c in theirs} == heads
    assert not {c.uid for c in mine} & {c.uid for c in theirs}, "a head was claimed by both"
    assert {r["uid"]: r["lease_owner"] for r in stack_rows(pg_target) if r["lease_owner"]} == (
        {c.uid: "A" for c in mine} | {c.uid: "B" for c in theirs})


def test_claims_of_different_stores_do_not_wait_for_each_other(dbs, pg_target):
    a, b = dbs
    fill(pg_target, records=2, orders=2)
    other_orders = fill(pg_target, records=2, orders=2, store="other", prefix="X")
    with a.tx() as conn:
        assert len(stack.claim(conn, "A", 10, LEASE, stores=[STORE])) == 2
        theirs = Background(lambda: claim(b, "B", stores=["other"])).result()  # does not block on A
    assert {c.uid for c in theirs} == {u[0] for u in other_orders.values()}


def test_a_head_another_transaction_has_locked_is_passed_over_not_waited_for(dbs, pg_target):
    a, b = dbs
    orders = fill(pg_target, records=3, orders=3)
    busy = orders["O00001"][0]
    with a.tx() as conn:  # an operator's retry (or a settle) holding that order's head
        conn.execute("SELECT 1 FROM stack_heads WHERE seq = (SELECT seq FROM stack WHERE uid = ?) FOR UPDATE",
                     (busy,))
        got = Background(lambda: claim(b, "B")).result()
    assert {c.uid for c in got} == {orders["O00000"][0], orders["O00002"][0]}
    assert [c.uid for c in claim(b, "B")] == [busy], "once free, the passed-over head is claimed"


def test_max_in_flight_holds_over_controllers_claiming_at_once(dbs, pg_target):
    a, b = dbs
    fill(pg_target, records=8, orders=8, store="capped", prefix="C")
    with a.tx() as conn:
        mine = stack.claim(conn, "A", 10, LEASE)
        other = Background(lambda: claim(b, "B"))
        assert other.blocked()
    assert len(mine) == 2
    assert other.result() == [], "B claimed past max_in_flight=2: it counted before A's leases were committed"


def test_many_controllers_claiming_in_a_loop_never_exceed_max_in_flight(pg_target):
    setup_db(pg_target, {"capped": URL}, options={"capped": ["max_in_flight=2"]})
    fill(pg_target, records=40, orders=40, store="capped", prefix="C")
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    seen: list[int] = []
    lock = threading.Lock()

    def controller(owner: str) -> None:
        db = open_database(pg_target)
        try:
            start.wait(GUARD)
            idle = 0
            while idle < 20:
                got = claim(db, owner)
                with db.reading() as conn:
                    live = conn.execute("SELECT COUNT(*) FROM stack WHERE lease_until >= ?",
                                        (dialect.now(conn),)).fetchone()[0]
                with lock:
                    seen.append(int(live))
                for attempt in db.transactions():
                    with attempt as conn:
                        stack.settle(conn, [stack.Outcome(c, "ok", status=204) for c in got], owner,
                                     now=dialect.now(conn),
                                     max_attempts=8, schedule=(10.0,))
                idle = 0 if got else idle + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=controller, args=(f"T{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert stack_rows(pg_target) == [], "every record was delivered"
    assert max(seen) <= 2, f"{max(seen)} records of a store with max_in_flight=2 were leased at once"


# -- producers at the same moment ---------------------------------------------------


def rows_for(target: str, number: str, n: int) -> list[tuple[object, ...]]:
    """`n` records for the order `number`, in the shape stack.queue takes."""
    order_id = query(target, "SELECT id FROM orders WHERE number = ?", (number,))[0]["id"]
    now = time.time()
    return [(f"su_{uuid.uuid4().hex[:20]}", order_id, number, STORE, STORE, "{}", now, now) for _ in range(n)]


def last_seq(target: str) -> int:
    """The last seq handed out by stack.seq's identity (seen at once by every session, committed or not)."""
    return int(query(target, "SELECT last_value FROM pg_sequences WHERE sequencename = "
                             "(SELECT relname FROM pg_class WHERE oid = pg_get_serial_sequence('stack', 'seq')::regclass)"
                     )[0]["last_value"])


def test_two_producers_queuing_for_one_order_keep_queue_order(dbs, pg_target):
    a, b = dbs
    fill(pg_target, records=1, orders=1)
    query(pg_target, "DELETE FROM stack")
    first, second = rows_for(pg_target, "O00000", 2), rows_for(pg_target, "O00000", 2)

    def queue_second() -> None:
        for attempt in b.transactions():
            with attempt as conn:
                stack.queue(conn, second)

    with a.tx() as conn:
        stack.queue(conn, first)
        last = int(conn.execute("SELECT MAX(seq) FROM stack").fetchone()[0])
        other = Background(queue_second)
        # B must wait before it takes any seq: one taken now could be committed before A's (a
        # statement that reaches the counters' row first commits first), and a claim would then see
        # B's record as the order's head while A's records are not visible yet.
        assert other.blocked(), "B queued for the order while A's queuing of it was not committed"
        assert last_seq(pg_target) == last, "B took seqs while A's records of the same order were not committed"
    other.result()
    assert [r["uid"] for r in stack_rows(pg_target)] == [r[0] for r in first + second]
    (head,) = query(pg_target, "SELECT h.records, s.uid FROM stack_heads h JOIN stack s ON s.seq = h.seq")
    assert (head["uid"], head["records"]) == (first[0][0], 4)


def test_producers_of_one_store_at_once_keep_heads_and_counters_exact(dbs, pg_target):
    a, b = dbs
    fill(pg_target, records=3, orders=3)
    query(pg_target, "DELETE FROM stack")
    mine = rows_for(pg_target, "O00000", 3) + rows_for(pg_target, "O00002", 2)
    theirs = rows_for(pg_target, "O00001", 2) + rows_for(pg_target, "O00002", 1)

    def queue_theirs() -> None:
        for attempt in b.transactions():
            with attempt as conn:
                stack.queue(conn, theirs)

    with a.tx() as conn:
        stack.queue(conn, mine)
        other = Background(queue_theirs)
        assert other.blocked(), "B queued for O00002 while A's records for it were not committed"
    other.result()
    heads = query(pg_target, "SELECT order_id, seq, records FROM stack_heads ORDER BY order_id")
    truth = query(pg_target, "SELECT order_id, MIN(seq) AS seq, COUNT(*) AS records FROM stack "
                             "GROUP BY order_id ORDER BY order_id")
    assert heads == truth and [h["records"] for h in heads] == [3, 2, 3]
    assert query(pg_target, "SELECT destination, records FROM stack_counts") == [
        {"destination": STORE, "records": 8}]
    o2 = [r["uid"] for r in stack_rows(pg_target) if r["order_number"] == "O00002"]
    assert o2 == [mine[3][0], mine[4][0], theirs[2][0]], "O00002's records are not in commit order"


# -- the server's clock ---------------------------------------------------------------


@pytest.mark.parametrize("skew", [3600.0, -3600.0], ids=["local-clock-ahead", "local-clock-behind"])
def test_leases_and_due_times_follow_the_servers_clock_not_this_machines(pg_target, monkeypatch, skew):
    """This machine's clock is an hour off the server's: records queued here are due at once, and a
    controller's lease runs its whole length by the server's clock (another claimer cannot take it)."""
    gate = Gate(hold=1)
    with serve() as (hook, server):
        setup_db(pg_target, {STORE: hook_url(server)})
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + skew)
        orders = fill(pg_target, records=2, orders=2)
        hook.before = gate
        run = Background(lambda: drain(pg_target, concurrency=2))
        assert hook.wait_for(lambda h: gate.count() == 1, GUARD), "a record queued here was not due at once"
        held = next(r for r in stack_rows(pg_target) if r["uid"] in gate.held)
        left = float(held["lease_until"]) - server_now(pg_target)
        assert LEASE - 20 < left <= LEASE + 1, f"the lease ends {left:.0f} s from the server's now"
        other = open_database(pg_target)
        try:
            assert claim(other, "B") == [], "a lease granted under a skewed local clock was taken by another"
        finally:
            other.close()
        gate.open()
        report = run.result()
    assert report.sent == 2 and stack_rows(pg_target) == []
    assert hook.delivered() == {u for uids in orders.values() for u in uids}
    for h in query(pg_target, "SELECT at FROM stack_history"):
        assert abs(float(h["at"]) - real()) < 60, "history written by this machine's clock, not the server's"


# -- faults -------------------------------------------------------------------------


def test_a_watcher_waits_out_a_lock_held_past_the_lock_timeout_and_carries_on(pg_target, monkeypatch, caplog):
    import psycopg

    from statusctl.delivery.controller import Controller

    monkeypatch.setenv("STATUSCTL_BUSY_TIMEOUT", "0.5")
    with serve() as (hook, server):
        setup_db(pg_target, {STORE: hook_url(server)})
        orders = fill(pg_target, records=3, orders=3)
        blocker = psycopg.connect(pg_target)  # its first statement opens a transaction that holds the lock
        blocker.execute("LOCK TABLE stack_heads IN EXCLUSIVE MODE")  # reads go on; no claim can lock a head

        async def scenario() -> None:
            controller = Controller(pg_target, watch=True, poll=0.05)
            task = asyncio.create_task(controller.run())
            try:
                await asyncio.sleep(1.5)  # a turn or two meet the lock timeout
                assert hook.delivered() == set()
                blocker.rollback()
                deadline = time.monotonic() + GUARD
                while len(hook.delivered()) < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            finally:
                controller.stop()
                await task

        try:
            with caplog.at_level(logging.WARNING, logger="statusctl.controller"):
                asyncio.run(scenario())
        finally:
            blocker.close()
    assert hook.delivered() == {u for uids in orders.values() for u in uids}
    assert "stayed locked by another transaction for more than 0.5 s; try again when it is free. Trying again in 1 s." \
        in caplog.text
    assert stack_rows(pg_target) == []


def test_a_watcher_carries_on_across_a_server_restart_with_a_send_in_flight(caplog):
    """Every connection is cut while a record is being sent: the watcher reconnects, settles it, sends the rest."""
    from statusctl.delivery.controller import Controller

    from .pgcluster import Unavailable, start_cluster

    try:
        cluster = start_cluster()
    except Unavailable as exc:
        pytest.skip(str(exc))
    gate = Gate(hold=1)
    try:
        url = cluster.url(cluster.create_database())
        with serve() as (hook, server):
            setup_db(url, {STORE: hook_url(server)})
            orders = fill(url, records=4, orders=2)
            hook.before = gate

            async def scenario() -> None:
                controller = Controller(url, watch=True, poll=0.05)
                task = asyncio.create_task(controller.run())
                try:
                    while gate.count() < 1:
                        await asyncio.sleep(0.02)
                    await asyncio.to_thread(cluster.restart)
                    gate.open()
                    deadline = time.monotonic() + GUARD
                    while len(hook.delivered()) < 4 and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)
                finally:
                    controller.stop()
                    await task

            with caplog.at_level(logging.WARNING, logger="statusctl.controller"):
                asyncio.run(scenario())
        assert hook.delivered() == {u for uids in orders.values() for u in uids}
        assert hook.twice() == {} and hook.max_active_per_order == 1
        assert stack_rows(url) == []
    finally:
        cluster.stop()
