"""Several machines, one PostgreSQL stack: controllers as separate processes over TCP, one of them frozen.

Three `stack run --watch` processes share one PostgreSQL database through
127.0.0.1 (TCP, as from other machines) and drain 600 records into one receiver.
One of them, F, is started first with room for one send; the receiver holds F's
first request, the test freezes F (SIGSTOP) and only then answers it: F's answer
waits unread in its socket while its lease runs out (StackLeaseSeconds 2). The
other two start; one of them, G, claims that record again and the receiver holds
G's request. Now F is resumed (SIGCONT): it reads its OK and settles it. Since G
has claimed the record since, F must not settle it for G: the record stays on the
stack under G's lease, and its order's next record is not sent, until G's send
ends. Then everything drains.

At the end every record was delivered; the frozen one twice (F's send and G's,
the one resend the freeze explains), every other exactly once; never two requests
of one record, or of one order, at the same time; each order in queue order; the
history has F's late OK for that record before G's.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from ..backends import POSTGRESQL, Place, idle_in_transaction
from ..stackhelpers import (
    STORE,
    fill,
    finish,
    history_rows,
    hook_url,
    query,
    serve,
    setup_db,
    spawn,
    stack_rows,
)
from .conftest import Figures
from .receiver import HoldNth, Receiver

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("target", [POSTGRESQL], indirect=True)]

RECORDS = 600
ORDERS = 60
LEASE_S = 2
GUARD = 60.0


class HoldUid:
    """A `Hook.before` that holds the next request of one record until released (always with an OK)."""

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.held = threading.Event()
        self.released = threading.Event()

    def __call__(self, uid: str, order: str) -> None:
        if uid != self.uid or self.held.is_set():
            return
        self.held.set()
        self.released.wait(GUARD)


def _owner(db: Place, pid: int) -> str:
    rows = query(db.ref, "SELECT id FROM controllers WHERE pid = ? ORDER BY started DESC", (pid,))
    assert rows, f"controller pid {pid} never registered"
    return str(rows[0]["id"])


def _freeze_outside_a_transaction(proc: subprocess.Popen[str], db: Place) -> None:
    """SIGSTOP `proc` at a moment it is not inside a transaction (its heartbeat's, say), which would hold row locks."""
    for _ in range(50):
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.05)
        if idle_in_transaction(db) == 0:
            return
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the controller was always caught inside a transaction")


def _wait(what: str, predicate: Callable[[], bool], guard: float = GUARD) -> None:
    deadline = time.monotonic() + guard
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {guard} s"
        time.sleep(0.02)


def _tcp_sessions(db: Place) -> int:
    """statusctl's sessions on the database that came over TCP from 127.0.0.1."""
    rows = query(db.ref, "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                         "AND client_addr = '127.0.0.1' AND application_name = 'statusctl' "
                         "AND pid <> pg_backend_pid()")
    return int(rows[0]["n"])


def test_a_controller_frozen_past_its_lease_settles_nothing_another_has_claimed(backend: Place,
                                                                                 figures: Figures) -> None:
    started = time.monotonic()
    procs: list[subprocess.Popen[str]] = []
    with serve(Receiver(pause=0.005)) as (hook, server):
        assert isinstance(hook, Receiver)
        setup_db(backend.ref, {STORE: hook_url(server)},
                 settings={"StackLeaseSeconds": str(LEASE_S), "StackMaxAttempts": "100"})
        orders = fill(backend.ref, records=RECORDS, orders=ORDERS)
        everything = {u for uids in orders.values() for u in uids}
        order_of = {u: number for number, uids in orders.items() for u in uids}
        try:
            first = HoldNth(1, guard=GUARD)
            hook.before = first
            frozen = spawn(backend.ref, "stack", "run", "--watch", "--json", "--concurrency", "1")
            procs.append(frozen)
            assert first.held.wait(GUARD), "the frozen controller's first request never came"
            uid = first.uid
            assert uid is not None
            f_owner = _owner(backend, frozen.pid)
            _freeze_outside_a_transaction(frozen, backend)
            froze = time.monotonic()
            (row,) = query(backend.ref, "SELECT lease_owner, lease_until FROM stack WHERE uid = ?", (uid,))
            assert row["lease_owner"] == f_owner
            f_lease_until = row["lease_until"]
            again = HoldUid(uid)
            hook.before = again
            first.release(ok=True)  # the cart has it; F's OK waits unread in its socket
            _wait("the receiver's OK to the frozen controller", lambda: hook.accepted().get(uid) == 1)

            procs += [spawn(backend.ref, "stack", "run", "--watch", "--json") for _ in range(2)]
            assert again.held.wait(GUARD), "nobody sent the frozen controller's record again"
            (row,) = query(backend.ref, "SELECT lease_owner, lease_until FROM stack WHERE uid = ?", (uid,))
            frozen_for = time.monotonic() - froze
            g_owner = row["lease_owner"]
            assert g_owner not in (None, f_owner), f"the record's lease is {g_owner}'s"
            # G's lease (one claim, a renewal at most since) began after F's had ended.
            assert row["lease_until"] - LEASE_S >= f_lease_until, "claimed again under the frozen one's live lease"

            frozen.send_signal(signal.SIGCONT)
            _wait("the resumed controller's late settle",
                  lambda: any(h["controller"] == f_owner for h in history_rows(backend.ref, uid)))
            time.sleep(1.0)  # a few turns of the resumed controller, all while G's send is held
            owners = [r["lease_owner"] for r in query(backend.ref, "SELECT lease_owner FROM stack WHERE uid = ?", (uid,))]
            assert owners == [g_owner], f"the resumed controller settled a record G had claimed (now {owners})"
            with hook.lock:
                sent_of_order = [a.uid for a in hook.arrivals if a.order == order_of[uid]]
            assert sent_of_order == [uid, uid], f"the order's next record overtook the held one: {sent_of_order}"
            tcp = _tcp_sessions(backend)
            again.released.set()

            _wait("every record delivered", lambda: hook.delivered() >= everything)
            _wait("the stack emptied", lambda: not stack_rows(backend.ref))
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            ran = [finish(proc, GUARD) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                    proc.wait()

    for r in ran:
        assert (r.code, r.stderr) == (0, ""), f"a controller -> {r.code}: {r.stderr[-2000:]}"
    assert tcp >= 3, f"only {tcp} statusctl sessions over TCP while three controllers ran"
    accepted = hook.accepted()
    assert set(accepted) == everything
    assert {u: n for u, n in accepted.items() if n > 1} == {uid: 2}, "a resend the freeze does not explain"
    assert hook.max_open_per_uid == 1, "one record was sent twice at the same time"
    assert hook.max_active_per_order == 1, "two sends of one order overlapped"
    arrived = hook.arrival_order()
    for number, uids in orders.items():
        assert arrived[number] == uids, f"order {number} arrived out of queue order"
    history = history_rows(backend.ref)
    oks = [(h["uid"], h["controller"]) for h in history if h["outcome"] == "ok"]
    assert Counter(u for u, _ in oks) == Counter({**dict.fromkeys(everything, 1), uid: 2})
    assert [c for u, c in oks if u == uid] == [f_owner, g_owner], "the late OK and then G's, in that order"
    shares = sorted((r.json()["sent"] for r in ran), reverse=True)
    figures(f"machines ({backend.kind})", {
        "records": RECORDS,
        "controllers_over_tcp": len(procs),
        "frozen_s": round(frozen_for, 1),
        "lease_s": LEASE_S,
        "resends": sum(accepted.values()) - len(accepted),
        "sent_twice_at_once": hook.max_open_per_uid - 1,
        "controller_sends": shares,
        "lost": len(everything - set(accepted)),
        "seconds": round(time.monotonic() - started, 1),
    })
