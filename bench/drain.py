"""Drain throughput: statusctl's controller against a bare httpx client and the original's model.

5,000 records over 1,000 orders go to a local receiver (another process), at
0 ms and at 50 ms of added latency per request. In the same run, on the same
receiver, it measures:
  (a) a bare httpx.AsyncClient sending 5,000 requests of the same size with the same concurrency;
  (b) the original's model: one request at a time (a sample, extrapolated to a rate).
Goals: statusctl >= 0.8 x (a) at both latencies, and >= 10 x (b) at 50 ms.
It runs at concurrency 8 (the default StackConcurrency) and 32: one at a time
against eight in flight can never be more than 8x apart, so the 10x goal is
judged at `stack run --concurrency 32`.

On PostgreSQL too (`--backends sqlite,postgresql`, the default where PostgreSQL
can be had: a throwaway cluster, bench/pgrun.py), the same drains run on a
database built the same way, beside each SQLite one: goal >= 0.8 x SQLite's rate
with one controller. At 50 ms (and above) `--controllers` (3) controllers, each a
process of its own at the first concurrency level, drain one database together,
started at one moment once all are connected: goal on PostgreSQL >= 2 x one
controller's rate (SQLite's figure is shown beside it). The output says what a
commit waits for on each side (the test cluster runs without fsync).

    python bench/drain.py [--records 5000] [--orders 1000] [--concurrency 8,32] [--latencies 0,50]
                          [--backends sqlite,postgresql] [--controllers 3] [--pg-durable]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

import pgrun  # noqa: E402

from statusctl.core import actions, orders, settings, stores  # noqa: E402
from statusctl.core.init import initialize  # noqa: E402
from statusctl.delivery.controller import Controller, drain  # noqa: E402
from statusctl.storage.backends import Target, open_database  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"bench-secret-bench-secret-32b!!!").decode()


def start_receiver(tmp: Path, latency_ms: float, arrivals: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / f"port-{latency_ms}-{time.monotonic_ns()}"
    extra = [str(arrivals)] if arrivals else []
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("receiver.py")), str(port_file),
                             str(latency_ms), *extra])
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            return proc, f"http://127.0.0.1:{port_file.read_text()}/hook"
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("the receiver did not start")


def build_db(tmp: Path, url: str, records: int, n_orders: int, pg: pgrun.PgBench | None = None) -> tuple[Target, int]:
    """A database with `records` queued records over `n_orders` orders (one item fired per record).

    With `pg`, a new database on its cluster, built the same way (through the core).
    """
    path: Target = pg.new("drain") if pg else tmp / f"drain-{time.monotonic_ns()}.db"
    db = open_database(path, create=True)
    initialize(db)
    settings.set_value(db, "UseStatusUpdates", "true")
    stores.add_store(db, "bench", "webhook", url, [f"secret={SECRET}"], [], [])
    per_order = max(1, records // n_orders)
    csv_path = tmp / "orders.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["order_number", "order_date", "customer_name", "customer_email", "ship_postal_code", "sku", "name", "quantity"])
        for o in range(n_orders):
            for i in range(per_order):
                w.writerow([f"B{o}", "2026-11-20", "Bench Customer", "b@example.com", "90210", f"SKU{i}", "Thing", 1])
    orders.import_orders(db, csv_path, "bench")
    apply_path = tmp / "apply.csv"
    with apply_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["action", "order", "sku", "quantity", "tracking", "carrier"])
        for i in range(per_order):  # interleave orders so each order's records are spread through the queue
            for o in range(n_orders):
                w.writerow(["ship", f"B{o}", f"SKU{i}", 1, f"TRK{o}X{i}", "UPS"])
    summary = actions.apply_file(db, apply_path)
    db.close()
    return path, summary.records


def sample_body(path: Target) -> bytes:
    db = open_database(path)
    row = db.one("SELECT payload FROM stack LIMIT 1")
    db.close()
    assert row is not None
    return str(row["payload"]).encode()


async def bare_httpx(url: str, body: bytes, n: int, concurrency: int) -> float:
    """(a): the same number of requests with the same concurrency, no database at all."""
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one(i: int) -> None:
            async with sem:
                r = await client.post(url, content=body, headers={"content-type": "application/json", "webhook-id": f"b{i}"})
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - start


def one_at_a_time(url: str, body: bytes, n: int) -> float:
    """(b): the original's model, a blocking client sending one record after the other."""
    with httpx.Client() as client:
        start = time.perf_counter()
        for i in range(n):
            client.post(url, content=body, headers={"content-type": "application/json", "webhook-id": f"s{i}"}).raise_for_status()
        return time.perf_counter() - start


def _controller_process(target: Target, concurrency: int, ready: Any, go: Any, results: Any) -> None:
    """One controller of several: connected first, then waiting for the common start, then draining.

    It always answers on `results`: (records sent, problems?, when it ended), or the error
    that ended it, so that the bench never waits for a controller that is gone.
    """
    try:
        controller = Controller(target, concurrency=concurrency)
        ready.put(os.getpid())
        go.wait()
        report = asyncio.run(controller.run())
        results.put((report.sent, report.problems, time.monotonic()))
    except BaseException as exc:
        ready.put(os.getpid())
        results.put(f"{type(exc).__name__}: {exc}")
        raise


def together(target: Target, controllers: int, concurrency: int) -> tuple[float, int]:
    """Seconds for `controllers` controller processes to drain `target` together, and what they sent.

    The clock starts when all are connected (start-up is not what is measured) and
    stops when the last one ends.
    """
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_controller_process, args=(target, concurrency, ready, go, results))
             for _ in range(controllers)]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        start = time.monotonic()
        go.set()
        ends = [results.get(timeout=600) for _ in procs]
        failed = [e for e in ends if isinstance(e, str)]
        if failed:
            raise RuntimeError(f"a controller failed: {failed[0]}")
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    assert not any(problems for _, problems, _ in ends), ends
    return max(end for _, _, end in ends) - start, sum(sent for sent, _, _ in ends)


def drain_once(tmp: Path, url: str, args: argparse.Namespace, concurrency: int,
               pg: pgrun.PgBench | None) -> tuple[float, int, bytes]:
    """One controller draining a fresh database in this process: seconds, records, a record's body."""
    path, n = build_db(tmp, url, args.records, args.orders, pg)
    body = sample_body(path)
    start = time.perf_counter()
    report = drain(path, concurrency=concurrency)
    took = time.perf_counter() - start
    assert report.sent == n and not report.problems, report.as_dict()
    if pg:
        pg.drop(str(path))
    return took, n, body


def one_level(tmp: Path, url: str, args: argparse.Namespace, latency: float, concurrency: int,
              backends: dict[str, pgrun.PgBench | None], judged: bool, sample: float | None) -> tuple[bool, float, dict[str, float]]:
    """Every backend's drain at one latency and concurrency, and the yardsticks; (goals met, (b)'s rate, rates)."""
    runs = {name: drain_once(tmp, url, args, concurrency, pg) for name, pg in backends.items()}
    n, body = next(iter(runs.values()))[1:]
    bare = asyncio.run(bare_httpx(url, body, n, concurrency))
    if sample is None:
        count = min(args.serial_sample, n)
        sample = n / (one_at_a_time(url, body, count) * n / count)
    rates = {name: n / took for name, (took, _, _) in runs.items()}
    bare_rate = n / bare
    ok = True
    print(f"\nlatency {latency:g} ms, concurrency {concurrency} ({n} records, {len(body)}-byte bodies)")
    if pgrun.SQLITE in runs:
        ours, ours_rate = runs[pgrun.SQLITE][0], rates[pgrun.SQLITE]
        r_bare, r_serial = ours_rate / bare_rate, ours_rate / sample
        print(f"  statusctl stack run     {ours_rate:8.0f} records/s  ({ours:.2f} s)")
    print(f"  (a) bare httpx          {bare_rate:8.0f} requests/s ({bare:.2f} s)")
    print(f"  (b) one at a time       {sample:8.0f} requests/s (from {min(args.serial_sample, n)} requests)")
    if pgrun.SQLITE in runs:
        print(f"  ratio vs (a): {r_bare:.2f}  (goal >= 0.80)   ratio vs (b): {r_serial:.1f}x"
              + ("  (goal >= 10x)" if judged else ""))
        ok = r_bare >= 0.8 and (not judged or r_serial >= 10)
    if pgrun.POSTGRESQL in runs:
        pg_s, pg_rate = runs[pgrun.POSTGRESQL][0], rates[pgrun.POSTGRESQL]
        line = f"  on PostgreSQL           {pg_rate:8.0f} records/s  ({pg_s:.2f} s)   vs (a): {pg_rate / bare_rate:.2f}"
        if pgrun.SQLITE in runs:
            ratio = pg_rate / rates[pgrun.SQLITE]
            line += f"   PostgreSQL / SQLite: {ratio:.2f}  (goal >= 0.80: {'ok' if ratio >= 0.8 else 'NOT MET'})"
            ok = ok and ratio >= 0.8
        print(line)
    return ok, sample, rates


def several(tmp: Path, url: str, args: argparse.Namespace, latency: float, concurrency: int,
            backends: dict[str, pgrun.PgBench | None], alone: dict[str, float]) -> bool:
    """`--controllers` controllers draining one database together against one alone; the goal is PostgreSQL's."""
    print(f"\nlatency {latency:g} ms, {args.controllers} controllers together, concurrency {concurrency} each")
    ok = True
    for name, pg in backends.items():
        path, n = build_db(tmp, url, args.records, args.orders, pg)
        took, sent = together(path, args.controllers, concurrency)
        assert sent == n, (sent, n)
        if pg:
            pg.drop(str(path))
        rate = n / took
        ratio = rate / alone[name]
        goal = f"  (goal >= 2.0: {'ok' if ratio >= 2 else 'NOT MET'})" if name == pgrun.POSTGRESQL else ""
        print(f"  {name:10}  {rate:8.0f} records/s  ({took:.2f} s)   {ratio:.2f}x one controller "
              f"({alone[name]:.0f} records/s){goal}")
        ok = ok and (name != pgrun.POSTGRESQL or ratio >= 2)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--latencies", default="0,50")
    parser.add_argument("--serial-sample", type=int, default=300)
    parser.add_argument("--controllers", type=int, default=3, help="controllers together at 50 ms and above (1: none)")
    pgrun.add_arguments(parser)
    args = parser.parse_args()
    wanted = pgrun.backends(args)
    print(f"drain bench: {args.records} records over {args.orders} orders, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    levels = [int(x) for x in args.concurrency.split(",")]
    ok = True
    with tempfile.TemporaryDirectory(prefix="statusctl-bench-") as tmp_name, \
            pgrun.started(wanted, durable=args.pg_durable) as pg:
        tmp = Path(tmp_name)
        backends = {name: (pg if name == pgrun.POSTGRESQL else None) for name in wanted}
        if pg:
            print(pg.durability())
        for latency in (float(x) for x in args.latencies.split(",")):
            proc, url = start_receiver(tmp, latency)
            try:
                sample = None
                alone: dict[str, float] = {}
                for concurrency in levels:
                    judged = latency >= 50 and concurrency == max(levels)
                    met, sample, rates = one_level(tmp, url, args, latency, concurrency, backends, judged, sample)
                    ok = ok and met
                    alone = alone or rates
                if latency >= 50 and args.controllers > 1:
                    ok = several(tmp, url, args, latency, levels[0], backends, alone) and ok
            finally:
                proc.terminate()
                proc.wait()
    print("\nall goals met" if ok else "\nsome goals NOT met")


if __name__ == "__main__":
    main()
