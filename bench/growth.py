"""Stack growth: the drain rate and `stack status --json` with 1,000, 1,000,000 and 100,000-held records.

Three stacks, built in one run, each draining into the same local receiver
(bench/receiver.py, another process, no added latency):

  small  1,000 records over 100 orders (10 each) of store `bench` (plus the records the
         drains take: it holds exactly 1,000 when the commands are timed);
  big    1,000,000 records over 100,000 orders of store `bench`;
  held   1,000 failed records of store `broken` holding 100 records each (101,000
         in all: a store whose mapping was wrong for a day) beside the records of
         store `bench` being drained.

For each it times a drain of 1,000 records of `bench` (`statusctl.delivery.controller.drain`,
concurrency 8) and the database's part of one controller turn (settle, claim, idle
check; without fsync, 300 turns) in three rounds taking the stacks in turn; then
`statusctl --db DB stack status --json`, `stack list --json` and `stack top --once`
as processes, 9 runs each, the stacks in turn, and `stack.status` in process; and
prints the medians' ratios against `small`. Goals (issue 12): drain big/small >= 1/1.5,
status big/small <= 1.5, drain held/small >= 1/1.5.

The first record is queued through the change engine; the stacks are copies of
it queued with `statusctl.storage.stack.queue` (what the change engine calls, with
the heads table and the counters) in batches of 50,000, so building a million
takes a minute rather than ten.

    python bench/growth.py [--big 1000000] [--drain 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from drain import SECRET, start_receiver  # noqa: E402

from statusctl.core import settings, stores  # noqa: E402
from statusctl.core.changes import ChangeSession  # noqa: E402
from statusctl.core.events import set_event  # noqa: E402
from statusctl.core.init import initialize  # noqa: E402
from statusctl.core.orders import import_orders  # noqa: E402
from statusctl.delivery.controller import drain  # noqa: E402
from statusctl.storage import stack
from statusctl.storage.db import Database  # noqa: E402

PER_ORDER = 10
BATCH = 50_000
TURNS = 300
SMALL = 1000


def template(tmp: Path, url: str) -> tuple[Path, str]:
    """A database with stores `bench` and `broken`, and the payload of one real record to copy."""
    path = tmp / "template.db"
    db = Database.open(path)
    initialize(db)
    settings.set_value(db, "UseStatusUpdates", "true")
    settings.set_value(db, "StackRetrySchedule", "0.01")
    for name in ("bench", "broken"):
        stores.add_store(db, name, "webhook", url, [f"secret={SECRET}"], [], [])
    csv = tmp / "one.csv"
    csv.write_text("order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity\n"
                   "T1,2026-11-20,Bench Customer,b@example.com,90210,SKU-1,Mug,1\n")
    import_orders(db, csv, "bench")
    set_event(db, "order-on-hold", fires=True, notify=True)
    with db.tx() as conn:
        session = ChangeSession(conn)
        session.load(["T1"])
        assert session.fire("T1", "order-on-hold", []).record
        session.flush()
        payload = str(conn.execute("SELECT payload FROM stack").fetchone()[0])
        conn.execute("DELETE FROM stack")
    db.close()
    return path, payload


def add_records(path: Path, payload: str, store: str, orders: int, per_order: int, *, first_order: int,
                state: str = "queued") -> None:
    """Queue `orders` × `per_order` copies of the template's record for `store`, interleaved by order
    (through `statusctl.storage.stack.queue`, as the change engine does); `state` failed fails each order's first."""
    db = Database.open(path)
    now = time.time() - 60
    rows: list[tuple[object, ...]] = []
    with db.tx() as conn:
        for _ in range(per_order):
            for o in range(first_order, first_order + orders):
                rows.append((f"su_{uuid.uuid4().hex[:20]}", o, f"G{o}", store, store, payload, now, now))
                if len(rows) >= BATCH:
                    stack.queue(conn, rows)
                    rows.clear()
        stack.queue(conn, rows)
        if state == "failed":
            conn.execute("UPDATE stack SET state = 'failed', attempts = 1, last_error = 'HTTP 422 (bench)' "
                         "WHERE seq IN (SELECT seq FROM stack_heads WHERE destination = ?)", (store,))
    db.close()


def build(tmp: Path, base: tuple[Path, str], name: str, big: int, drain_n: int) -> Path:
    path = tmp / f"{name}.db"
    shutil.copy(base[0], path)
    payload = base[1]
    started = time.perf_counter()
    if name == "small":
        add_records(path, payload, "bench", drain_n // PER_ORDER, PER_ORDER, first_order=1000)
    elif name == "big":
        add_records(path, payload, "bench", big // PER_ORDER, PER_ORDER, first_order=1000)
    else:
        add_records(path, payload, "broken", 1000, 101, first_order=2_000_000, state="failed")
        add_records(path, payload, "bench", drain_n // PER_ORDER, PER_ORDER, first_order=1000)
    db = Database.open(path)
    try:
        # Building wrote the whole stack through the WAL: fold it into the file now, so that the drain
        # measured next does not pay for the build's checkpoint.
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    size = path.stat().st_size / 1e6
    print(f"  built {name}: {count(path):,} records ({size:,.0f} MB) in {time.perf_counter() - started:.1f} s")
    return path


def count(path: Path) -> int:
    db = Database.open(path)
    try:
        return int(db.one("SELECT COUNT(*) AS n FROM stack")["n"])  # type: ignore[index]
    finally:
        db.close()


def command_seconds(path: Path, *args: str, runs: int = 5) -> float:
    """Median wall time of `statusctl --db PATH ARGS` as a process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "statusctl", "--db", str(path), *args],
                             capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        if "--json" in args:
            json.loads(out.stdout)
    return statistics.median(times)


COMMANDS = {"status": ("stack", "status", "--json"), "list": ("stack", "list", "--json"), "top": ("stack", "top", "--once")}


def commands_seconds(paths: dict[str, Path], runs: int) -> dict[str, dict[str, float]]:
    """Median time of each command on each stack, the stacks taken in turn run after run (drift falls on all)."""
    times: dict[str, dict[str, list[float]]] = {n: {c: [] for c in COMMANDS} for n in paths}
    for _ in range(runs):
        for command, args in COMMANDS.items():
            for name, path in paths.items():
                times[name][command].append(command_seconds(path, *args, runs=1))
    return {n: {c: statistics.median(v) for c, v in per.items()} for n, per in times.items()}


def status_core_ms(path: Path, runs: int = 21) -> float:
    """`statusctl.storage.stack.status` itself, in process: the part of `stack status` that could grow."""
    db = Database.open(path)
    try:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            stack.status(db)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000
    finally:
        db.close()


def turn_ms(path: Path, turns: int = TURNS) -> float:
    """The database's part of one controller turn (settle one OK, claim up to 8, the idle check), in ms.

    Without fsync (`synchronous = OFF`), which would otherwise be most of it: the
    part that could grow with the stack. Median of `turns` turns; drains `turns` records.
    """
    db = Database.open(path)
    db.conn.execute("PRAGMA synchronous = OFF")
    held: list[stack.Claimed] = []
    times = []
    try:
        for _ in range(turns):
            start = time.perf_counter()
            now = time.time()
            with db.tx() as conn:
                if held:
                    stack.settle(conn, [stack.Outcome(held.pop(0), "ok", status=200)], "bench-turns", now=now,
                                 max_attempts=8, schedule=(1.0,))
                held += stack.claim(conn, "bench-turns", 8 - len(held), 120.0, now=now, stores=["bench"])
            with db.reading() as conn:
                stack.soonest_due(conn, now=now, stores=["bench"])
            times.append(time.perf_counter() - start)
        with db.tx() as conn:
            stack.release(conn, "bench-turns", [c.seq for c in held])
    finally:
        db.close()
    return statistics.median(times) * 1000


def drain_rate(path: Path, n: int) -> float:
    start = time.perf_counter()
    report = drain(path, concurrency=8, limit=n, stores=["bench"])
    took = time.perf_counter() - start
    assert report.sent == n, report.as_dict()
    return n / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--drain", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of drains (medians are compared)")
    parser.add_argument("--runs", type=int, default=9, help="runs of each command on each stack, interleaved")
    args = parser.parse_args()
    print(f"growth bench: python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    results: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="statusctl-growth-") as tmp_name:
        tmp = Path(tmp_name)
        proc, url = start_receiver(tmp, 0)
        try:
            base = template(tmp, url)
            names = ("small", "big", "held")
            need = (args.drain + TURNS) * args.repeat + SMALL  # the small stack ends with SMALL records
            paths = {name: build(tmp, base, name, args.big, need) for name in names}
            command_seconds(paths["small"], *COMMANDS["status"], runs=1)  # a warm-up: bytecode compiled once
            # Round after round, each stack in turn: a busy spell of the machine falls on all three alike.
            measured: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
            for _ in range(args.repeat):
                for name in names:
                    rate, turn = drain_rate(paths[name], args.drain), turn_ms(paths[name])
                    measured[name].append((rate, turn))
                    print(f"  {name:5}  drain {rate:7.0f} records/s   database part of a turn {turn:5.2f} ms")
            commands = commands_seconds(paths, args.runs)
            print()
            for name in names:
                core = status_core_ms(paths[name])
                c = commands[name]
                results[name] = (statistics.median(m[0] for m in measured[name]), c["status"],
                                 statistics.median(m[1] for m in measured[name]))
                print(f"  {name:5}  stack status --json {c['status'] * 1000:4.0f} ms (of which stack.status {core:5.2f} ms)"
                      f"   stack list --json {c['list'] * 1000:4.0f} ms   stack top --once {c['top'] * 1000:4.0f} ms")
            print("\n  medians: " + ", ".join(f"{n} {r:.0f}/s, status {s * 1000:.0f} ms, turn {t:.2f} ms"
                                             for n, (r, s, t) in results.items()))
        finally:
            proc.terminate()
            proc.wait()
    (small_rate, small_status, small_turn), (big_rate, big_status, big_turn), (held_rate, held_status, held_turn) = (
        results["small"], results["big"], results["held"])
    checks = [
        ("drain, big / small", big_rate / small_rate, big_rate / small_rate >= 1 / 1.5, ">= 0.67"),
        ("drain, held / small", held_rate / small_rate, held_rate / small_rate >= 1 / 1.5, ">= 0.67"),
        ("status, big / small", big_status / small_status, big_status / small_status <= 1.5, "<= 1.5"),
        ("status, held / small", held_status / small_status, held_status / small_status <= 1.5, "<= 1.5"),
        ("turn, big / small", big_turn / small_turn, big_turn / small_turn <= 1.5, "<= 1.5"),
        ("turn, held / small", held_turn / small_turn, held_turn / small_turn <= 1.5, "<= 1.5"),
    ]
    print()
    for what, ratio, ok, goal in checks:
        print(f"  {what:22} {ratio:5.2f}  (goal {goal}) {'ok' if ok else 'NOT MET'}")
    print("\nall goals met" if all(c[2] for c in checks) else "\nsome goals NOT met")


if __name__ == "__main__":
    main()
