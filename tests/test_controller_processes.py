"""Real controller processes on one database: watchers and cron runs together, SIGKILL mid-send, SIGTERM.

Every controller is `python -m statusctl --db PATH stack run …`; the receiver
runs in the test process and counts deliveries by webhook-id. Waits are hang
guards only.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from .carts.fakeserver import Answer
from .stackhelpers import (
    STORE,
    Gate,
    Hook,
    cli,
    explain,
    fill,
    finish,
    history_rows,
    hook_url,
    run_process,
    serve,
    setup_db,
    spawn,
    stack_rows,
    statusctl_cmd,
)

pytestmark = pytest.mark.slow
GUARD = 45.0


def signal_taken(pid: int, sig: int, guard: float = 10.0) -> None:
    """Wait until the process has taken the signal off its pending sets, then give its loop a moment."""
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + guard
    bit = 1 << (sig - 1)
    while status.exists() and time.monotonic() < deadline:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            break
        if not any(int(fields.get(k, "0").strip(), 16) & bit for k in ("SigPnd", "ShdPnd")):
            break
        time.sleep(0.01)
    time.sleep(0.5)  # the asyncio loop runs its handler on its next turn


def wait_until(predicate: Callable[[], bool], guard: float = GUARD) -> bool:
    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def controllers() -> list[dict[str, object]]:
    return cli("stack", "status", "--json").json()["controllers"]


def assert_each_order_in_queue_order(hook: Hook, orders: dict[str, list[str]]) -> None:
    for number, uids in orders.items():
        assert hook.accepted_order(number) == uids, f"order {number} arrived out of queue order"


def test_two_watchers_and_a_cron_run_deliver_2000_records_once_each(db_file):
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)})
        orders = fill(db_file, records=1500, orders=150, prefix="A")
        watchers = [spawn(db_file, "stack", "run", "--watch", "--json") for _ in range(2)]
        try:
            cron = spawn(db_file, "stack", "run", "--json")
            assert wait_until(lambda: {c["pid"] for c in controllers() if c["alive"] and c["mode"] == "watch"}
                              >= {w.pid for w in watchers}), (
                "the watchers never showed in stack status: " + explain(*watchers))
            # Records queued while they run are picked up by the watchers' poll.
            orders.update(fill(db_file, records=500, orders=50, prefix="L"))
            everything = {u for uids in orders.values() for u in uids}
            assert len(everything) == 2000
            assert hook.wait_for(lambda h: h.delivered() >= everything, GUARD), (
                f"only {len(hook.delivered())} of 2000 delivered: " + explain(*watchers, cron))
            ran = finish(cron)
            for w in watchers:
                w.send_signal(signal.SIGTERM)
            stopped = [finish(w) for w in watchers]
        finally:
            for w in watchers:
                if w.poll() is None:
                    w.kill()
    assert ran.code == 0, ran.stderr
    assert [s.code for s in stopped] == [0, 0], [s.stderr for s in stopped]
    assert hook.twice() == {}, "a record was delivered twice"
    assert hook.delivered() == everything
    assert hook.max_active_per_order == 1
    assert_each_order_in_queue_order(hook, orders)
    reports = [r.json() for r in (ran, *stopped)]
    assert sum(r["sent"] for r in reports) == 2000
    assert all(r["ok"] for r in reports)
    assert stack_rows(db_file) == []
    history = history_rows(db_file)
    assert Counter(h["outcome"] for h in history) == {"ok": 2000}
    assert len({h["controller"] for h in history}) >= 2, "one controller did all the work"
    assert controllers() == [], "a controller stayed registered after it exited"


def test_a_controller_killed_mid_send_loses_nothing(db_file):
    gate = Gate(hold=1, lose=True)
    with serve(Hook()) as (hook, server):
        hook.before = gate
        setup_db(db_file, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "2"})
        orders = fill(db_file, records=6, orders=3)
        victim = spawn(db_file, "stack", "run", "--watch", "--concurrency", "1")
        try:
            assert wait_until(lambda: gate.count() == 1), "the first send never arrived: " + explain(victim)
            victim.send_signal(signal.SIGKILL)
            victim.wait(GUARD)
        finally:
            if victim.poll() is None:
                victim.kill()
        gate.open()  # the receiver never answered it: the killed send did not count
        (killed,) = gate.held
        number = next(n for n, uids in orders.items() if killed in uids)
        assert orders[number][0] == killed
        row = next(r for r in stack_rows(db_file) if r["uid"] == killed)
        # The cut claim is counted as a claim without an outcome, not as an attempt (issue 11.5).
        assert row["lease_owner"] is not None and (row["attempts"], row["unsettled"]) == (0, 1)
        assert any(c["pid"] == victim.pid for c in controllers()), "the dead controller should still be listed"
        # Once the lease runs out, any run delivers it.
        assert wait_until(lambda: next(r for r in cli("stack", "list", "--json").json()
                                       if r["id"] == killed)["state"] != "sending"), "the lease never ran out"
        ran = run_process(db_file, "stack", "run", "--json")
    assert ran.code == 0, ran.stderr
    everything = {u for uids in orders.values() for u in uids}
    assert hook.delivered() == everything, "a record was lost"
    assert hook.counts[killed] == 1
    assert [t.status for t in hook.tries(killed)] == [500, 204]
    assert_each_order_in_queue_order(hook, orders)
    (ok,) = history_rows(db_file, killed)
    assert ok["outcome"] == "ok" and ok["attempt"] == 1, "the killed send is no attempt: it had no outcome"
    assert f":{victim.pid}:" not in ok["controller"]
    assert stack_rows(db_file) == []


def test_sigterm_lets_in_flight_sends_finish_and_exits_3_with_due_records_left(db_file):
    gate = Gate()
    with serve(Hook()) as (hook, server):
        hook.before = gate
        setup_db(db_file, {STORE: hook_url(server)})
        orders = fill(db_file, records=10, orders=10)
        watcher = spawn(db_file, "stack", "run", "--watch", "--json", "--concurrency", "2")
        try:
            assert wait_until(lambda: gate.count() == 2), "two sends never arrived: " + explain(watcher)
            watcher.send_signal(signal.SIGTERM)
            signal_taken(watcher.pid, signal.SIGTERM)
            gate.open()
            stopped = finish(watcher, GUARD)
        finally:
            if watcher.poll() is None:
                watcher.kill()
    # Its normal stop (in-flight sends settled, so not interrupted), but 8 due records are left on the
    # stack: not ok, exit 3 (issue 13.3; it said "ok": true with exit 0). A watcher that leaves nothing
    # due exits 0 (test_two_watchers_and_a_cron_run_deliver_2000_records_once_each).
    assert stopped.code == 3, stopped.stderr
    report = stopped.json()
    assert report["stores"][STORE] == {"sent": 2, "retrying": 0, "failed": 0, "left": 8}
    assert report["interrupted"] is False and report["ok"] is False
    in_flight = set(gate.held)
    assert hook.delivered() == in_flight, "the in-flight sends did not finish, or it kept claiming"
    rows = stack_rows(db_file)
    assert len(rows) == 8
    assert all(r["lease_owner"] is None and r["lease_until"] is None for r in rows), "records left leased"
    assert all(r["attempts"] == 0 for r in rows)
    assert controllers() == []
    assert {u for uids in orders.values() for u in uids} - in_flight == {r["uid"] for r in rows}


def test_a_second_signal_cancels_in_flight_sends_and_gives_their_leases_back(db_file):
    gate = Gate(hold=2, lose=True)
    with serve(Hook()) as (hook, server):
        hook.before = gate
        setup_db(db_file, {STORE: hook_url(server)})
        orders = fill(db_file, records=6, orders=6)
        watcher = spawn(db_file, "stack", "run", "--watch", "--json", "--concurrency", "2")
        try:
            assert wait_until(lambda: gate.count() == 2), "two sends never arrived: " + explain(watcher)
            watcher.send_signal(signal.SIGTERM)
            signal_taken(watcher.pid, signal.SIGTERM)
            watcher.send_signal(signal.SIGINT)
            stopped = finish(watcher, GUARD)
        finally:
            if watcher.poll() is None:
                watcher.kill()
            gate.open()
        # Cut short by its second signal: 128 + the first signal's number, and not ok (records are left).
        assert stopped.code == 128 + signal.SIGTERM, stopped.stderr
        assert stopped.json()["interrupted"] is True and stopped.json()["ok"] is False
        rows = stack_rows(db_file)
        assert len(rows) == 6
        assert all(r["lease_owner"] is None and r["attempts"] == 0 for r in rows), "leases were not given back"
        assert controllers() == []
        # Nothing is lost: the next run sends all six, the two cancelled ones included.
        ran = run_process(db_file, "stack", "run", "--json")
    assert ran.code == 0 and ran.json()["sent"] == 6
    assert hook.delivered() == set(itertools.chain.from_iterable(orders.values()))
    assert hook.twice() == {}


def test_stack_run_without_watch_exits_when_the_due_records_are_sent(db_file):
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)})
        orders = fill(db_file, records=30, orders=5)
        ran = run_process(db_file, "stack", "run", "--json", timeout=GUARD)
    assert ran.code == 0
    assert ran.json()["stores"][STORE] == {"sent": 30, "retrying": 0, "failed": 0, "left": 0}
    assert hook.delivered() == set(itertools.chain.from_iterable(orders.values()))


def test_python_m_statusctl_stack_run_nothing_due(db_file):
    setup_db(db_file, {})
    ran = run_process(db_file, "stack", "run")
    assert (ran.code, ran.stderr) == (0, "")
    assert "Nothing was due." in ran.stdout


def test_sigterm_stops_a_watcher_that_leaves_failed_records_with_exit_3(db_file):
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)})
        orders = fill(db_file, records=2, orders=2)
        bad, good = orders["O00000"][0], orders["O00001"][0]
        hook.fail(bad, Answer(404, "no such order"))
        watcher = spawn(db_file, "stack", "run", "--watch", "--json")
        try:
            assert wait_until(lambda: [r["state"] for r in cli("stack", "list", "--json").json()] == ["failed"]), explain(watcher)
            assert hook.delivered() == {good}
            watcher.send_signal(signal.SIGTERM)
            stopped = finish(watcher, GUARD)
        finally:
            if watcher.poll() is None:
                watcher.kill()
    # A normal stop (in-flight sends settled) that leaves a failed record: exit 3 with "ok": false, as a
    # one-shot run (issue 13.3: "ok": false with exit 0 told a service manager all was well).
    assert stopped.code == 3, stopped.stdout
    assert stopped.json()["stores"][STORE]["failed"] == 1
    assert stopped.json()["ok"] is False and stopped.json()["interrupted"] is False


def test_stack_run_on_a_terminal_shows_progress_and_the_summary(db_file):
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)})
        fill(db_file, records=20, orders=4)
        leader, follower = os.openpty()
        try:
            proc = subprocess.Popen(statusctl_cmd(db_file, "stack", "run"), stdin=subprocess.DEVNULL,
                                    stdout=follower, stderr=subprocess.PIPE, text=True,
                                    env=dict(os.environ, COLUMNS="120"))
            os.close(follower)
            out = b""
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            err = proc.communicate(timeout=GUARD)[1]
        finally:
            os.close(leader)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, err
    assert "Sending" in text and "20/20" in text
    assert "Stack run" in text and "Traceback" not in err
    assert len(hook.delivered()) == 20


def test_a_send_paused_by_a_rate_limit_keeps_its_lease(db_file):
    """Lease 3 s > timeout 2.5 s, as StackLeaseSeconds asks; a 2 s rate-limit pause before a send must not
    let the lease run out under it, or a second controller sends the same record at the same time."""
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "3"},
                 options={STORE: ["timeout=2.5"]})
        (a1,) = fill(db_file, records=1, orders=1, prefix="A")["A00000"]
        (b1,) = fill(db_file, records=1, orders=1, prefix="B")["B00000"]
        hook.fail(a1, Answer(429, "slow down", {"X-Rate-Limit-Time-Reset-Ms": "2000"}))
        held = threading.Event()

        def hold_b1(uid: str, order: str) -> None:
            # Keep the first controller's B1 in flight (within its timeout) while a second one polls.
            if uid == b1 and not held.is_set():
                held.set()
                hook.wait_for(lambda h: len(h.tries(b1)) > 1, 2.2)

        hook.before = hold_b1
        first = spawn(db_file, "stack", "run", "--watch", "--concurrency", "1", "--json")
        second = None
        try:
            assert hook.wait_for(lambda h: bool(h.tries(a1)), GUARD), explain(first)
            second = spawn(db_file, "stack", "run", "--watch", "--json")
            assert hook.wait_for(lambda h: {a1, b1} <= h.delivered(), GUARD), explain(first, second)
            for proc in (first, second):
                proc.send_signal(signal.SIGTERM)
            ran = [finish(p) for p in (first, second)]
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
    assert [r.code for r in ran] == [0, 0], [(r.code, r.stdout[-2000:], r.stderr[-1000:]) for r in ran]  # why, if not
    assert len(hook.tries(b1)) == 1, "B1 was sent by two controllers at the same time"
    assert hook.twice() == {}


def test_a_watcher_uses_a_mapping_added_while_it_runs(db_file):
    """`stack retry` after fixing the cause works without restarting a long-running watcher."""
    from .carts.fake_woocommerce import KEY, ORDER_ID, SECRET, WooFake
    from .carts.fakeserver import FakeServer
    from .helpers import EXAMPLES

    fake = WooFake()
    with FakeServer(fake) as server:
        cli("config", "set", "UseStatusUpdates", "true")
        cli("config", "set", "StackRetrySchedule", "0.01")
        cli("stores", "add", "shop", "--cart", "woocommerce", "--url", server.base_url,
            "--secret", f"key={KEY}", "--secret", f"secret={SECRET}")
        cli("orders", "import", str(EXAMPLES / "orders.csv"), "--store", "shop")
        cli("labels", "add", "Awaiting Pickup", "--scope", "order")
        cli("events", "set", "order-on-hold", "--order-label", "Awaiting Pickup", "--fire", "--notify-cart")
        cli("fire", "order-on-hold", "1001")
        watcher = spawn(db_file, "stack", "run", "--watch", "--json")
        try:
            def failed() -> list[dict[str, object]]:
                return [r for r in cli("stack", "list", "--json").json() if r["state"] == "failed"]

            assert wait_until(lambda: bool(failed())), explain(watcher)
            assert "no mapping for cart type woocommerce" in str(failed()[0]["last_error"])
            cli("labels", "add", "Awaiting Pickup", "--scope", "order", "--map", "woocommerce=on-hold")
            cli("stack", "retry", "--failed")
            assert wait_until(lambda: stack_rows(db_file) == []), (explain(watcher), cli("stack", "list", "--json").stdout)
            assert fake.orders[ORDER_ID]["status"] == "on-hold"
            watcher.send_signal(signal.SIGTERM)
            stopped = finish(watcher, GUARD)
        finally:
            if watcher.poll() is None:
                watcher.kill()
    assert stopped.code == 0, stopped.stderr
