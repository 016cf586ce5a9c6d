"""Bulk apply against its floor: plain sqlite3 doing the same writes, measured in the same run.

    python bench/apply.py [--orders 20000] [--items 5] [--no-cli]

Builds a database in a temporary directory through the project's own import
path (an orders CSV generated here, `import_orders`), with UseStatusUpdates
true and a webhook store, then writes an apply CSV that ships every item once,
one row per item, each row with its own tracking number: every row fires
item-shipped and order-partially-shipped or order-shipped; each order gets
one record carrying its five rows (five packages). The 100,000-row apply is timed on fresh copies of that database:

- core: `statusctl.core.actions.apply_file` (reading, validating, applying);
- cli: `statusctl --db COPY apply FILE` as a subprocess (start-up included;
  the console script, with compiled bytecode as installed);
- floor: plain sqlite3 on another copy, one `BEGIN IMMEDIATE` transaction,
  executemany of the same item updates, order label updates, label_history
  rows and stack rows (taken from the core run's result, so same columns and
  same payload sizes), then COMMIT, with statusctl's own pragmas.

The ratio is floor seconds / core seconds: 1.0 would mean the domain logic
costs nothing over the bare writes. Goal: ratio >= 0.3 and the core apply of
100,000 rows under 5 s. CPU seconds are printed too (and their ratio): on a
machine shared with other work they move less than wall time does.
"""

from __future__ import annotations

import argparse
import base64
import csv
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from statusctl.core.actions import apply_file
from statusctl.core.init import ensure_initialized
from statusctl.core.orders import import_orders
from statusctl.core.settings import set_value
from statusctl.core.stores import add_store
from statusctl.storage.db import Database

STORE = "bench-hook"


def write_orders(path: Path, orders: int, items: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order_number", "order_date", "customer_name", "customer_email", "ship_postal_code",
                    "sku", "name", "quantity", "cart_order_id", "cart_line_id"])
        for o in range(orders):
            number = f"B{o + 100000}"
            for i in range(items):
                w.writerow([number, "2026-11-20", f"Customer {o}", f"c{o}@example.com", f"{10000 + o % 90000}",
                            f"SKU-{i + 1}", f"Product number {i + 1}", 1 + i % 2, f"co{o}", f"cl{o}-{i}"])


def write_apply(path: Path, orders: int, items: int) -> int:
    """Each row ships all of one item (quantity 1 + i % 2) in its own package."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["action", "event", "order", "sku", "quantity", "tracking", "carrier", "note"])
        for o in range(orders):
            for i in range(items):
                w.writerow(["ship", "", f"B{o + 100000}", f"SKU-{i + 1}", 1 + i % 2,
                            f"1Z{o:08d}{i:02d}X", "UPS", ""])
                rows += 1
    return rows


def build_base(work: Path, orders: int, items: int) -> tuple[Path, float]:
    base = work / "base.db"
    db = Database.open(base)
    ensure_initialized(db)
    set_value(db, "UseStatusUpdates", "true")
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    add_store(db, STORE, "webhook", "http://127.0.0.1:9/hook", [f"secret={secret}"], [], [])
    orders_csv = work / "orders.csv"
    write_orders(orders_csv, orders, items)
    started = time.perf_counter()
    import_orders(db, orders_csv, STORE)
    took = time.perf_counter() - started
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return base, took


def fresh_copy(base: Path, name: str) -> Path:
    target = base.with_name(name)
    shutil.copyfile(base, target)
    return target


def run_core(base: Path, apply_csv: Path) -> tuple[float, float, Path]:
    """Wall and CPU seconds of apply_file on a fresh copy; the copy is kept for the floor."""
    path = fresh_copy(base, "core.db")
    db = Database.open(path)
    started, cpu = time.perf_counter(), time.process_time()
    summary = apply_file(db, apply_csv)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    print(f"  core summary: rows={summary.rows} orders={summary.orders} labels changed={summary.labels_changed} "
          f"records={summary.records}")
    return took, cpu, path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(base: Path, apply_csv: Path) -> tuple[float, float]:
    path = fresh_copy(base, "cli.db")
    script = Path(sys.executable).with_name("statusctl")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "statusctl"]
    # Compiled bytecode, as installed: a pycache of our own (PYTHONDONTWRITEBYTECODE may be set).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(base.with_name("pycache"))
    # Warm-up (it compiles what the apply imports): the first 50 rows on another copy.
    small = apply_csv.with_name("apply-small.csv")
    small.write_text("".join(apply_csv.read_text(encoding="utf-8").splitlines(keepends=True)[:51]), encoding="utf-8")
    subprocess.run([*cli, "--db", str(fresh_copy(base, "warm.db")), "apply", str(small)],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([*cli, "--db", str(path), "apply", str(apply_csv)], check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started, _children_cpu() - cpu


def floor_writes(applied: Path, base: Path) -> dict[str, list[tuple[object, ...]]]:
    """The rows the apply wrote, read back from its database, as parameters for plain executemany."""
    conn = sqlite3.connect(applied)
    old_items = {r[0]: r[1] for r in sqlite3.connect(base).execute("SELECT id, label FROM items")}
    writes = {
        "items": [(label, shipped, cancelled, iid) for iid, label, shipped, cancelled
                  in conn.execute("SELECT id, label, shipped, cancelled FROM items")
                  if label != old_items.get(iid)],
        # One UPDATE per order label change (the apply may fold several changes of one order into one).
        "orders": [(to, oid) for oid, to in
                   conn.execute("SELECT order_id, to_label FROM label_history WHERE item_id IS NULL AND event != 'order-imported'")],
        "history": list(conn.execute(
            "SELECT at, order_id, item_id, event, from_label, to_label FROM label_history WHERE event != 'order-imported'")),
        "stack": list(conn.execute(
            "SELECT uid, order_id, order_number, store, destination, payload, queued, next_attempt FROM stack")),
    }
    conn.close()
    return writes


def run_floor(base: Path, writes: dict[str, list[tuple[object, ...]]]) -> tuple[float, float]:
    path = fresh_copy(base, "floor.db")
    db = Database.open(path)  # the same pragmas: WAL, synchronous FULL, foreign keys
    c = db.conn
    started, cpu = time.perf_counter(), time.process_time()
    c.execute("BEGIN IMMEDIATE")
    c.executemany("UPDATE items SET label = ?, shipped = ?, cancelled = ? WHERE id = ?", writes["items"])
    c.executemany("UPDATE orders SET label = ? WHERE id = ?", writes["orders"])
    c.executemany("INSERT INTO label_history (at, order_id, item_id, event, from_label, to_label) VALUES (?, ?, ?, ?, ?, ?)",
                  writes["history"])
    c.executemany("INSERT INTO stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", writes["stack"])
    c.execute("COMMIT")
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    return took, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--no-cli", action="store_true", help="skip the apply through the CLI subprocess")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="statusctl-bench-") as tmp:
        work = Path(tmp)
        base, import_s = build_base(work, args.orders, args.items)
        apply_csv = work / "apply.csv"
        rows = write_apply(apply_csv, args.orders, args.items)
        print(f"{args.orders} orders x {args.items} items imported in {import_s:.2f} s; apply of {rows} ship rows")
        core_s, core_cpu, applied = run_core(base, apply_csv)
        writes = floor_writes(applied, base)
        floor_s, floor_cpu = run_floor(base, writes)
        print(f"  floor writes: items={len(writes['items'])} orders={len(writes['orders'])} "
              f"history={len(writes['history'])} stack={len(writes['stack'])}")
        print(f"core apply : {core_s:6.2f} s  {rows / core_s:9,.0f} rows/s  (cpu {core_cpu:5.2f} s)")
        if not args.no_cli:
            cli_s, cli_cpu = run_cli(base, apply_csv)
            print(f"cli apply  : {cli_s:6.2f} s  {rows / cli_s:9,.0f} rows/s  (cpu {cli_cpu:5.2f} s; "
                  "subprocess, start-up included)")
        print(f"floor      : {floor_s:6.2f} s  {rows / floor_s:9,.0f} rows/s  (cpu {floor_cpu:5.2f} s; "
              "plain sqlite3 executemany, one transaction)")
        ratio = floor_s / core_s
        verdict = "ok" if ratio >= 0.3 and core_s < 5 else "BELOW GOAL"
        print(f"ratio floor/core: {ratio:.2f}  (cpu {floor_cpu / core_cpu:.2f}; goal >= 0.30 and core < 5 s: {verdict})")
        print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (on {os.cpu_count()} cpus)")


if __name__ == "__main__":
    main()
