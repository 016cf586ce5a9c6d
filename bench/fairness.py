"""Fairness across stores: when a fast store's last record arrives beside a slow or a hanging store.

Issue 12's two cases, each against the same fast store alone, in one run:

  slow     200 records for a store whose cart answers in 0.5 s, queued first, then
           10 records for a fast store (answers at once);
  hanging  100 records for a store whose cart answers after 25 s (store option
           timeout=10), queued first, then 100 records for the fast store.

Every cart is bench/receiver.py in its own process, logging each request's
arrival; one `statusctl stack run` (default concurrency 8) drains the stack. It
prints when the fast store's last record arrived, counted from the start of
`stack run`, beside the other store and alone, and the difference. On main the
fast store waited 13 s behind the slow backlog and had not started after 6 s
beside the hanging store.

    python bench/fairness.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from drain import SECRET, start_receiver  # noqa: E402

from statusctl.core import settings, stores  # noqa: E402
from statusctl.core.changes import ChangeSession  # noqa: E402
from statusctl.core.events import set_event  # noqa: E402
from statusctl.core.init import initialize  # noqa: E402
from statusctl.core.orders import import_orders  # noqa: E402
from statusctl.storage.db import Database  # noqa: E402

GUARD_S = 120.0


def queue(db: Database, tmp: Path, store: str, records: int) -> None:
    """One record on each of `records` new orders of `store` (through the change engine)."""
    numbers = [f"{store}-{i}" for i in range(records)]
    csv = tmp / f"{store}.csv"
    csv.write_text("order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity\n"
                   + "".join(f"{n},2026-11-20,Bench Customer,b@example.com,90210,SKU-1,Mug,1\n" for n in numbers))
    import_orders(db, csv, store)
    with db.tx() as conn:
        session = ChangeSession(conn)
        session.load(numbers)
        for n in numbers:
            assert session.fire(n, "order-on-hold", []).record
        session.flush()


def fast_store_finishes(tmp: Path, fast: int, other: tuple[float, int, str] | None) -> float:
    """Seconds from `stack run`'s start to the fast store's last record, beside `other` (latency ms, records, timeout)."""
    tag = time.monotonic_ns()
    log = tmp / f"fast-{tag}.log"
    log.touch()
    receivers = []
    path = tmp / f"fair-{tag}.db"
    db = Database.open(path)
    try:
        initialize(db)
        settings.set_value(db, "UseStatusUpdates", "true")
        set_event(db, "order-on-hold", fires=True, notify=True)
        if other is not None:
            latency, records, timeout = other
            proc, url = start_receiver(tmp, latency)
            receivers.append(proc)
            stores.add_store(db, "other", "webhook", url, [f"secret={SECRET}"], [], [f"timeout={timeout}"])
            queue(db, tmp, "other", records)  # the backlog is queued first
        proc, url = start_receiver(tmp, 0, log)
        receivers.append(proc)
        stores.add_store(db, "fast", "webhook", url, [f"secret={SECRET}"], [], [])
        queue(db, tmp, "fast", fast)
    finally:
        db.close()
    started = time.monotonic()
    run = subprocess.Popen([sys.executable, "-m", "statusctl", "--db", str(path), "stack", "run", "--json"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            arrivals = [float(x) for x in log.read_text().split()]
            if len(arrivals) >= fast:
                return max(arrivals) - started
            if time.monotonic() - started > GUARD_S:
                raise RuntimeError(f"the fast store got {len(arrivals)} of {fast} records in {GUARD_S:g} s")
            time.sleep(0.01)
    finally:
        for _ in range(2):  # the second signal cancels the sends still in flight
            if run.poll() is None:
                run.send_signal(signal.SIGTERM)
                time.sleep(0.3)
        if run.poll() is None:
            run.kill()
        run.wait()
        for r in receivers:
            r.terminate()
            r.wait()


def main() -> None:
    print(f"fairness bench: python {sys.version.split()[0]}, {os.cpu_count()} cpus; "
          "seconds from `stack run` to the fast store's last record")
    with tempfile.TemporaryDirectory(prefix="statusctl-fair-") as tmp_name:
        tmp = Path(tmp_name)
        for name, fast, other in (("slow", 10, (500.0, 200, "30")), ("hanging", 100, (25_000.0, 100, "10"))):
            alone = fast_store_finishes(tmp, fast, None)
            beside = fast_store_finishes(tmp, fast, other)
            print(f"  {name:8} {fast:3} fast records: beside the {name} store {beside:5.2f} s, alone {alone:5.2f} s, "
                  f"{beside - alone:+.2f} s ({beside / alone:.2f}x)")


if __name__ == "__main__":
    main()
