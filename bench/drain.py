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

    python bench/drain.py [--records 5000] [--orders 1000] [--concurrency 8,32] [--latencies 0,50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from statusctl.core import actions, orders, settings, stores
from statusctl.core.init import initialize
from statusctl.delivery.controller import drain
from statusctl.storage.db import Database

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


def build_db(tmp: Path, url: str, records: int, n_orders: int) -> tuple[Path, int]:
    """A database with `records` queued records over `n_orders` orders (one item fired per record)."""
    path = tmp / f"drain-{time.monotonic_ns()}.db"
    db = Database.open(path)
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


def sample_body(path: Path) -> bytes:
    db = Database.open(path)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--latencies", default="0,50")
    parser.add_argument("--serial-sample", type=int, default=300)
    args = parser.parse_args()
    print(f"drain bench: {args.records} records over {args.orders} orders, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    levels = [int(x) for x in args.concurrency.split(",")]
    ok = True
    with tempfile.TemporaryDirectory(prefix="statusctl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for latency in (float(x) for x in args.latencies.split(",")):
            proc, url = start_receiver(tmp, latency)
            try:
                sample = None
                for concurrency in levels:
                    path, n = build_db(tmp, url, args.records, args.orders)
                    body = sample_body(path)
                    start = time.perf_counter()
                    report = drain(path, concurrency=concurrency)
                    ours = time.perf_counter() - start
                    assert report.sent == n and not report.problems, report.as_dict()
                    bare = asyncio.run(bare_httpx(url, body, n, concurrency))
                    if sample is None:
                        count = min(args.serial_sample, n)
                        sample = n / (one_at_a_time(url, body, count) * n / count)
                    ours_rate, bare_rate = n / ours, n / bare
                    r_bare, r_serial = ours_rate / bare_rate, ours_rate / sample
                    print(f"\nlatency {latency:g} ms, concurrency {concurrency} ({n} records, {len(body)}-byte bodies)")
                    print(f"  statusctl stack run     {ours_rate:8.0f} records/s  ({ours:.2f} s)")
                    print(f"  (a) bare httpx          {bare_rate:8.0f} requests/s ({bare:.2f} s)")
                    print(f"  (b) one at a time       {sample:8.0f} requests/s (from {min(args.serial_sample, n)} requests)")
                    judged = latency >= 50 and concurrency == max(levels)
                    print(f"  ratio vs (a): {r_bare:.2f}  (goal >= 0.80)   ratio vs (b): {r_serial:.1f}x"
                          + ("  (goal >= 10x)" if judged else ""))
                    ok = ok and r_bare >= 0.8 and (not judged or r_serial >= 10)
            finally:
                proc.terminate()
                proc.wait()
    print("\nall goals met" if ok else "\nsome goals NOT met")


if __name__ == "__main__":
    main()
