"""Contention suite: 4 producer processes queue 5,000 records while 3 controllers drain them.

Each producer is a thread of the test running `statusctl apply FILE` and
`statusctl fire …` processes one after the other on its own 50 orders, every
row toggling an order between Processing and On Hold (one record each) with a
note `ORDER#K` numbering that order's updates. Three `stack run --watch`
controllers drain into one receiver on 127.0.0.1 while a reader runs
`stack status` over and over. Nobody is killed, so:

- every record is delivered exactly once (webhook-id counted by the receiver);
- each order's records arrive in the order they were queued (K = 0, 1, 2, …);
- no process a user could have started prints an error ("database is locked"
  included) or exits non-zero;
- every controller gets a fair part of the work (none starved).

Records per second and each controller's share go to the "reliability figures" summary.

A smaller test holds the write lock longer than the lease while a controller
waits for it: the lease it then gets must still run its whole length.

Both run once per backend (the `backend` fixture: SQLite, and PostgreSQL over TCP
to 127.0.0.1), with the same assertions; their figures are named after the backend.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

from ..backends import Place, hold_write_lock
from ..stackhelpers import (
    STORE,
    Ran,
    fill,
    finish,
    history_rows,
    hook_url,
    run_process,
    serve,
    setup_db,
    spawn,
    stack_rows,
)
from .conftest import Figures
from .receiver import Receiver

PRODUCERS = 4
CONTROLLERS = 3
ORDERS_EACH = 50
UPDATES_PER_ORDER = 25  # 4 × 50 × 25 = 5,000 records
CHUNK = ORDERS_EACH  # one `fire`, then an apply of the next 49 rows (one per order: an apply queues one record per order)
GUARD = 90.0
# A controller's part of the records may not fall below this share of an even split.
FAIR_SHARE_FLOOR = 0.4


def _order(p: int, i: int) -> str:
    return f"P{p}-{i:03d}"


def _import_orders(db: Place) -> None:
    csv = db.dir / "orders.csv"
    lines = ["order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity"]
    lines += [f"{_order(p, i)},2026-11-20,Customer {p}-{i},c{p}x{i}@example.com,90210,SKU-1,Mug,1"
              for p in range(PRODUCERS) for i in range(ORDERS_EACH)]
    csv.write_text("\n".join(lines) + "\n")
    ran = run_process(db.ref, "orders", "import", str(csv), "--store", STORE)
    assert ran.code == 0, ran.stderr


def _event(k: int) -> str:
    return "order-approved" if k % 2 == 0 else "order-on-hold"


class Producer(threading.Thread):
    """Runs one producer's commands in sequence; keeps every command's result."""

    def __init__(self, db: Place, p: int) -> None:
        super().__init__(name=f"producer-{p}", daemon=True)
        self.db = db
        self.p = p
        self.ran: list[tuple[list[str], Ran]] = []
        self.error: BaseException | None = None

    def commands(self) -> list[list[str]]:
        steps = [(_order(self.p, i), k) for k in range(UPDATES_PER_ORDER) for i in range(ORDERS_EACH)]
        out = []
        for start in range(0, len(steps), CHUNK):
            (number, k), *rest = steps[start:start + CHUNK]
            out.append(["fire", _event(k), number, "--note", f"{number}#{k}"])
            csv = self.db.dir / f"apply-{self.p}-{start}.csv"
            csv.write_text("action,event,order,note\n" + "".join(f"fire,{_event(k)},{n},{n}#{k}\n" for n, k in rest))
            out.append(["apply", str(csv)])
        return out

    def run(self) -> None:
        try:
            for args in self.commands():
                self.ran.append((args, run_process(self.db.ref, *args, timeout=GUARD)))
        except BaseException as exc:  # reported by the test
            self.error = exc


class Reader(threading.Thread):
    """`stack status --json` again and again until stopped: an operator watching."""

    def __init__(self, db: Place) -> None:
        super().__init__(name="reader", daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.ran: list[Ran] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.ran.append(run_process(self.db.ref, "stack", "status", "--json", timeout=GUARD))
            self.stop.wait(0.2)


@pytest.mark.slow
def test_4_producers_and_3_controllers_deliver_5000_records_exactly_once_in_order(backend: Place,
                                                                                  figures: Figures) -> None:
    total = PRODUCERS * ORDERS_EACH * UPDATES_PER_ORDER
    with serve(Receiver()) as (hook, server):
        assert isinstance(hook, Receiver)
        setup_db(backend.ref, {STORE: hook_url(server)})
        _import_orders(backend)
        controllers: list[subprocess.Popen[str]] = []
        producers = [Producer(backend, p) for p in range(PRODUCERS)]
        reader = Reader(backend)
        try:
            controllers = [spawn(backend.ref, "stack", "run", "--watch", "--json") for _ in range(CONTROLLERS)]
            started = time.monotonic()
            for t in (*producers, reader):
                t.start()
            for t in producers:
                t.join(GUARD)
            produced = time.monotonic()
            assert hook.wait_for(lambda h: len(h.delivered()) >= total, GUARD), (
                f"only {len(hook.delivered())} of {total} records delivered")
            drained = time.monotonic()
            reader.stop.set()
            reader.join(GUARD)
            for c in controllers:
                c.send_signal(signal.SIGTERM)
            stopped = [finish(c, GUARD) for c in controllers]
        finally:
            reader.stop.set()
            for c in controllers:
                if c.poll() is None:
                    c.kill()

    for t in producers:
        assert t.error is None, f"{t.name}: {t.error!r}"
        assert not t.is_alive(), f"{t.name} did not finish within {GUARD} s"
    for t in producers:
        for args, ran in t.ran:
            assert (ran.code, ran.stderr) == (0, ""), f"{t.name}: statusctl {' '.join(args)} -> {ran.code}: {ran.stderr}"
    for ran in reader.ran:
        assert (ran.code, ran.stderr) == (0, ""), f"stack status -> {ran.code}: {ran.stderr}"
    for ran in stopped:
        assert (ran.code, ran.stderr) == (0, ""), f"a controller -> {ran.code}: {ran.stderr}"

    accepted = hook.accepted()
    assert len(accepted) == total
    assert hook.twice() == {}, "a record was delivered twice"
    assert hook.max_active_per_order == 1, "two sends of one order overlapped"
    notes = hook.notes()
    for p in range(PRODUCERS):
        for i in range(ORDERS_EACH):
            number = _order(p, i)
            assert notes[number] == [f"{number}#{k}" for k in range(UPDATES_PER_ORDER)], f"order {number} out of order"
    assert stack_rows(backend.ref) == []
    history = history_rows(backend.ref)
    assert Counter(h["outcome"] for h in history) == {"ok": total}

    sent = sorted((r.json()["sent"] for r in stopped), reverse=True)
    assert sum(sent) == total
    shares = [round(s / total, 3) for s in sent]
    assert min(sent) >= FAIR_SHARE_FLOOR * total / CONTROLLERS, f"a controller was starved: {sent}"
    figures(f"contention ({backend.kind})", {
        "records": total,
        "producers": PRODUCERS,
        "producer_commands": sum(len(t.ran) for t in producers),
        "controllers": CONTROLLERS,
        "status_reads": len(reader.ran),
        "records_per_s": round(total / (drained - started)),
        "seconds_to_queue": round(produced - started, 1),
        "seconds_to_deliver": round(drained - started, 1),
        "controller_shares": shares,
        "duplicates": sum(n - 1 for n in accepted.values()),
        "out_of_order": 0,
        "locked_errors": 0,
    })


def test_a_lease_granted_after_a_wait_for_the_lock_runs_its_whole_length(backend: Place) -> None:
    """A controller that waited 1.5 s for the lock claims with a 1 s lease: measured from before the
    wait, the lease was over when granted and a second controller could send the same records at once."""
    from statusctl.delivery.controller import Controller

    setup_db(backend.ref, {STORE: "http://127.0.0.1:9/hooks/status"}, settings={"StackLeaseSeconds": "1"})
    fill(backend.ref, records=4, orders=4)
    controller = Controller(backend.ref)  # type: ignore[arg-type]  # the path, or the URL
    try:
        hold_write_lock(backend, 1.5, GUARD)
        claimed = controller._turn([], 4)
        granted = time.time()
        assert len(claimed) == 4
        leases = [r["lease_until"] for r in stack_rows(backend.ref)]
        assert min(leases) - granted > 0.8, f"the lease was {min(leases) - granted:+.2f} s from the claim"
        # The same for a renewal (the heartbeat) that waited for the lock.
        hold_write_lock(backend, 1.5, GUARD)
        controller._heartbeat([c.seq for c in claimed])
        renewed = time.time()
        leases = [r["lease_until"] for r in stack_rows(backend.ref)]
        assert min(leases) - renewed > 0.8, f"the renewed lease was {min(leases) - renewed:+.2f} s from the renewal"
    finally:
        controller.db.close()
