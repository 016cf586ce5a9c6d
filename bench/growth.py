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

On PostgreSQL too (`--backends sqlite,postgresql`, the default where PostgreSQL
can be had: a throwaway cluster, bench/pgrun.py): the same three stacks, each a
copy of a template built the same way, the same figures and goals. There the
copies of the record go in by COPY (a million through the change engine's
statement would take minutes), and the heads and the counters are made from the
rows copied in two set statements, as `stack.queue` does; then VACUUM ANALYZE and
a CHECKPOINT, as SQLite's build folds its WAL into the file. The output says
what a commit waits for on each side (the test cluster runs without fsync).

    python bench/growth.py [--big 1000000] [--drain 1000] [--backends sqlite,postgresql] [--pg-durable]
"""

from __future__ import annotations

import argparse
import functools
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
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pgrun  # noqa: E402
from drain import SECRET, start_receiver  # noqa: E402

from statusctl.core import settings, stores  # noqa: E402
from statusctl.core.changes import ChangeSession  # noqa: E402
from statusctl.core.events import set_event  # noqa: E402
from statusctl.core.init import initialize  # noqa: E402
from statusctl.core.orders import import_orders  # noqa: E402
from statusctl.delivery.controller import drain  # noqa: E402
from statusctl.storage import dialect, stack  # noqa: E402
from statusctl.storage.backends import Target, open_database  # noqa: E402
from statusctl.storage.db import Database  # noqa: E402

PER_ORDER = 10
BATCH = 50_000
TURNS = 300
SMALL = 1000


def template(tmp: Path, url: str, pg: pgrun.PgBench | None = None) -> tuple[Target, str]:
    """A database with stores `bench` and `broken`, and the payload of one real record to copy (on `pg`: there)."""
    path: Target = pg.new("growthtpl") if pg else tmp / "template.db"
    db = open_database(path, create=True)
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


_PG_COPY = "COPY stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt) FROM STDIN"
# The heads and the counter of the rows copied in (seq above the highest before: the bench is the only writer).
_PG_HEADS = (
    "INSERT INTO stack_heads (order_id, seq, destination, state, next_attempt, lease_until, queued, records) "
    "SELECT s.order_id, s.seq, s.destination, s.state, s.next_attempt, s.lease_until, s.queued, n.records "
    "FROM (SELECT order_id, MIN(seq) AS first, COUNT(*) AS records FROM stack WHERE seq > %s GROUP BY order_id) AS n "
    "JOIN stack s ON s.seq = n.first "
    "ON CONFLICT (order_id) DO UPDATE SET records = stack_heads.records + excluded.records"
)
_PG_COUNTS = (
    "INSERT INTO stack_counts (destination, records) SELECT destination, COUNT(*) FROM stack WHERE seq > %s "
    "GROUP BY destination ON CONFLICT (destination) DO UPDATE SET records = stack_counts.records + excluded.records"
)


def add_records_pg(pg: pgrun.PgBench, url: str, payload: str, store: str, orders: int, per_order: int, *,
                   first_order: int, state: str = "queued") -> None:
    """`add_records` on PostgreSQL: the same rows in the same order, by COPY, then the heads and the counter."""
    now = time.time() - 60
    with pg.connect(url) as conn:
        before = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM stack").fetchone()[0]
        with conn.cursor().copy(_PG_COPY) as copy:
            for _ in range(per_order):
                for o in range(first_order, first_order + orders):
                    copy.write_row((f"su_{uuid.uuid4().hex[:20]}", o, f"G{o}", store, store, payload, now, now))
        conn.execute(_PG_HEADS, (before,))
        conn.execute(_PG_COUNTS, (before,))
        if state == "failed":
            conn.execute("UPDATE stack SET state = 'failed', attempts = 1, last_error = 'HTTP 422 (bench)' "
                         "WHERE seq IN (SELECT seq FROM stack_heads WHERE destination = %s)", (store,))


def build(tmp: Path, base: tuple[Target, str], name: str, big: int, drain_n: int,
          pg: pgrun.PgBench | None = None) -> Target:
    path: Target = pg.copy(str(base[0]), name) if pg else tmp / f"{name}.db"
    if not pg:
        shutil.copy(base[0], path)
    payload = base[1]
    started = time.perf_counter()
    queue: Any = functools.partial(add_records_pg, pg) if pg else add_records
    if name == "small":
        queue(path, payload, "bench", drain_n // PER_ORDER, PER_ORDER, first_order=1000)
    elif name == "big":
        queue(path, payload, "bench", big // PER_ORDER, PER_ORDER, first_order=1000)
    else:
        queue(path, payload, "broken", 1000, 101, first_order=2_000_000, state="failed")
        queue(path, payload, "bench", drain_n // PER_ORDER, PER_ORDER, first_order=1000)
    size = settle_build(path, pg) / 1e6
    print(f"  built {name}: {count(path):,} records ({size:,.0f} MB) in {time.perf_counter() - started:.1f} s")
    return path


def settle_build(path: Target, pg: pgrun.PgBench | None) -> int:
    """Put the freshly built database in the state a long-running one is in; its size in bytes."""
    if pg:
        # Fresh statistics for the planner and the visibility map set (what autovacuum would do some
        # time later, in the middle of a measurement), and the dirty pages written out.
        with pg.connect(str(path)) as conn:
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE)")
            conn.execute("CHECKPOINT")
            return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    db = Database.open(Path(path))
    try:
        # Building wrote the whole stack through the WAL: fold it into the file now, so that the drain
        # measured next does not pay for the build's checkpoint.
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return Path(path).stat().st_size


def count(path: Target) -> int:
    db = open_database(path)
    try:
        return int(db.one("SELECT COUNT(*) AS n FROM stack")["n"])  # type: ignore[index]
    finally:
        db.close()


def command_seconds(path: Target, *args: str, runs: int = 5) -> float:
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


def commands_seconds(paths: dict[str, Target], runs: int) -> dict[str, dict[str, float]]:
    """Median time of each command on each stack, the stacks taken in turn run after run (drift falls on all)."""
    times: dict[str, dict[str, list[float]]] = {n: {c: [] for c in COMMANDS} for n in paths}
    for _ in range(runs):
        for command, args in COMMANDS.items():
            for name, path in paths.items():
                times[name][command].append(command_seconds(path, *args, runs=1))
    return {n: {c: statistics.median(v) for c, v in per.items()} for n, per in times.items()}


def status_core_ms(path: Target, runs: int = 21) -> float:
    """`statusctl.storage.stack.status` itself, in process: the part of `stack status` that could grow."""
    db = open_database(path)
    try:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            stack.status(db)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000
    finally:
        db.close()


def turn_ms(path: Target, turns: int = TURNS) -> float:
    """The database's part of one controller turn (settle one OK, claim up to 8, the idle check), in ms.

    Without fsync (`synchronous = OFF`; on PostgreSQL the cluster's fsync=off), which would
    otherwise be most of it: the part that could grow with the stack. The turn begins as the
    controller's does (`stack.begin_turn`: PostgreSQL's destination locks, the database's
    clock). Median of `turns` turns; drains `turns` records.
    """
    db = open_database(path)
    if db.dialect == dialect.SQLITE:
        db.conn.execute("PRAGMA synchronous = OFF")
    held: list[stack.Claimed] = []
    times = []
    try:
        for _ in range(turns):
            start = time.perf_counter()
            with db.tx() as conn:
                turn = stack.begin_turn(conn, ["bench"] if held else [], claiming=True, stores=["bench"])
                now = turn.now
                if held:
                    stack.settle(conn, [stack.Outcome(held.pop(0), "ok", status=200)], "bench-turns", now=now,
                                 max_attempts=8, schedule=(1.0,))
                held += stack.claim(conn, "bench-turns", 8 - len(held), 120.0, now=now, stores=["bench"], turn=turn)
            with db.reading() as conn:
                stack.soonest_due(conn, now=dialect.now(conn), stores=["bench"])
            times.append(time.perf_counter() - start)
        with db.tx() as conn:
            stack.release(conn, "bench-turns", held)
    finally:
        db.close()
    return statistics.median(times) * 1000


def drain_rate(path: Target, n: int) -> float:
    start = time.perf_counter()
    report = drain(path, concurrency=8, limit=n, stores=["bench"])
    took = time.perf_counter() - start
    assert report.sent == n, report.as_dict()
    return n / took


def one_backend(tmp: Path, url: str, args: argparse.Namespace,
                pg: pgrun.PgBench | None) -> dict[str, tuple[float, float, float]]:
    """The three stacks built and measured on one backend: per stack, (drain rate, status seconds, turn ms)."""
    results: dict[str, tuple[float, float, float]] = {}
    base = template(tmp, url, pg)
    names = ("small", "big", "held")
    need = (args.drain + TURNS) * args.repeat + SMALL  # the small stack ends with SMALL records
    paths = {name: build(tmp, base, name, args.big, need, pg) for name in names}
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
    if pg:
        for path in paths.values():
            pg.drop(str(path))
    return results


def verdict(results: dict[str, tuple[float, float, float]]) -> bool:
    """Print the big/small and held/small ratios against their goals; all met?"""
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
    return all(c[2] for c in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--drain", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of drains (medians are compared)")
    parser.add_argument("--runs", type=int, default=9, help="runs of each command on each stack, interleaved")
    pgrun.add_arguments(parser)
    args = parser.parse_args()
    wanted = pgrun.backends(args)
    print(f"growth bench: python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    ok = True
    by_backend: dict[str, dict[str, tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="statusctl-growth-") as tmp_name, \
            pgrun.started(wanted, durable=args.pg_durable) as pg:
        tmp = Path(tmp_name)
        proc, url = start_receiver(tmp, 0)
        try:
            for name in wanted:
                if name == pgrun.POSTGRESQL:
                    assert pg is not None
                    print(f"\nPostgreSQL ({pg.durability()})")
                by_backend[name] = one_backend(tmp, url, args, pg if name == pgrun.POSTGRESQL else None)
                ok = verdict(by_backend[name]) and ok
        finally:
            proc.terminate()
            proc.wait()
    if len(by_backend) == 2:
        sq, pq = by_backend[pgrun.SQLITE], by_backend[pgrun.POSTGRESQL]
        print("\n  PostgreSQL against SQLite: " + ", ".join(
            f"{n} drain {pq[n][0] / sq[n][0]:.2f}x, status {pq[n][1] / sq[n][1]:.2f}x, turn {pq[n][2] / sq[n][2]:.2f}x"
            for n in sq))
    print("\nall goals met" if ok else "\nsome goals NOT met")


if __name__ == "__main__":
    main()
