"""Order per order through `stack run`: strict queue order inside an order, parallel across orders.

Parallelism and "not held up" are shown with gates and barriers in the
receiver (a serial or over-cautious controller would break the barrier or
starve the gate), never with timings.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest

from statusctl.storage.backends import Target

from .carts.fakeserver import Answer, FakeServer
from .stackhelpers import STORE, Hook, cli, fill, hook_url, serve, setup_db, stack_rows

GUARD = 20.0  # seconds a gate or barrier waits before it declares the test failed (a hang guard)


@pytest.fixture
def hooked(target: Target) -> Iterator[tuple[Hook, FakeServer]]:
    with serve() as (hook, server):
        setup_db(target, {STORE: hook_url(server)})
        yield hook, server


def assert_in_queue_order(hook: Hook, orders: dict[str, list[str]]) -> None:
    for number, uids in orders.items():
        assert hook.accepted_order(number) == uids, f"order {number} arrived out of queue order"
        for earlier, later in itertools.pairwise(uids):
            first_try_of_later = hook.tries(later)[0]
            assert first_try_of_later.arrived >= hook.ok_hit(earlier).answered, (
                f"{later} of order {number} was sent before {earlier} was answered OK")


def test_a_retried_first_record_holds_back_only_its_order(target, hooked):
    hook, _ = hooked
    a = fill(target, records=3, orders=1, prefix="A")
    b = fill(target, records=5, orders=1, prefix="B")
    (a_uids,), (b_uids,) = a.values(), b.values()
    hook.fail(a_uids[0], Answer(500, "first"), Answer(500, "second"))
    b_flowed = threading.Event()

    def gate(uid: str, order: str) -> None:
        # A's first record is answered OK only once all of B is in: B must flow while A waits.
        if uid == a_uids[0] and hook.wait_for(lambda h: set(b_uids) <= h.delivered(), GUARD):
            b_flowed.set()

    hook.before = gate
    r = cli("stack", "run", "--json")
    assert r.code == 0, r.stdout
    assert b_flowed.is_set(), "order B was held up behind order A's retries"
    assert [t.status for t in hook.tries(a_uids[0])] == [500, 500, 204]
    assert_in_queue_order(hook, {**a, **b})
    assert hook.twice() == {}
    assert hook.max_active_per_order == 1
    assert stack_rows(target) == []


def test_orders_go_out_in_parallel_and_each_order_in_sequence(target, hooked):
    hook, _ = hooked
    orders = fill(target, records=24, orders=6)
    firsts = {orders["O00000"][0], orders["O00001"][0]}
    barrier = threading.Barrier(2, timeout=GUARD)

    def meet(uid: str, order: str) -> None:
        if uid in firsts:
            barrier.wait()  # both orders' first records in flight at once, or BrokenBarrierError

    hook.before = meet
    hook.pause = 0.01
    r = cli("stack", "run", "--json", "--concurrency", "4")
    assert r.code == 0, r.stdout
    assert {uid: hook.counts[uid] for uid in firsts} == dict.fromkeys(firsts, 1), "the two orders never overlapped"
    assert hook.max_active >= 2
    assert hook.max_active_per_order == 1, "two records of one order were in flight at the same time"
    assert_in_queue_order(hook, orders)
    assert len(hook.delivered()) == 24 and hook.twice() == {}


def test_concurrency_one_sends_everything_one_at_a_time_in_order(target, hooked):
    hook, _ = hooked
    orders = fill(target, records=12, orders=4)
    hook.pause = 0.005
    r = cli("stack", "run", "--json", "--concurrency", "1")
    assert r.code == 0 and r.json()["stores"][STORE]["sent"] == 12
    assert hook.max_active == 1
    assert_in_queue_order(hook, orders)


@pytest.mark.parametrize(
    ("fault", "state", "by_failed"),
    [
        (Answer(404, "unknown order"), "failed", True),
        (Answer(503, "later", {"Retry-After": "600"}), "retrying", False),
    ],
    ids=["failed", "retrying"],
)
def test_a_held_order_resumes_in_order_once_its_head_goes(target, hooked, fault, state, by_failed):
    hook, _ = hooked
    orders = fill(target, records=9, orders=3)
    held = orders["O00001"]
    hook.fail(held[0], fault)
    r = cli("stack", "run", "--json")
    assert r.code == 3
    assert r.json()["stores"][STORE]["sent"] == 6
    rows = {x["id"]: x for x in cli("stack", "list", "--json").json()}
    assert list(rows) == held
    assert rows[held[0]]["state"] == state
    assert [rows[u]["attempts"] for u in held[1:]] == [0, 0], "records behind the head were sent"
    assert cli("stack", "retry", *(["--failed"] if by_failed else [held[0]])).code == 0
    r = cli("stack", "run", "--json")
    assert r.code == 0 and r.json()["stores"][STORE]["sent"] == 3
    assert_in_queue_order(hook, orders)
    assert stack_rows(target) == []
